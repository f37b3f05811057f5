"""Faces benchmark, all in one run on a private stack:

1. Verify latency: the two models called in-process (torch: decode, downsize, MTCNN, align, dlib ResNet,
   distance) vs the full gateway path (gateway -> faces service -> Triton face_detector + face_embedder).
2. Enrollment throughput through the gateway (one photo per Enroll).
3. Identify over galleries of 1k, 100k and 1M synthetic identities (random 128-D vectors with the spread of
   dlib embeddings, bulk-imported into Redis and loaded by the faces service): gateway latency; then our exact
   search (``GalleryIndex.search``) vs a plain numpy brute force over the same matrix, with recall@10 of both
   the in-process search and the gateway's candidates against the brute force (must be 1.0).

    .venv/bin/python bench/faces.py [--requests 32] [--sizes 1000,100000,1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import HEADER, Figures, measure  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.images import ImageLimits, decode_image  # noqa: E402
from fovea.faces.config import FacesSettings  # noqa: E402
from fovea.faces.core.align import align_faces  # noqa: E402
from fovea.faces.core.matching import GalleryIndex  # noqa: E402
from fovea.faces.core.records import TemplateRecord  # noqa: E402
from fovea.faces.pipeline import FacePipeline, FacesTriton, downsize  # noqa: E402
from fovea.faces.store import FaceStore  # noqa: E402
from fovea.models.dlib_resnet import embed_chips, load_dlib_resnet  # noqa: E402
from fovea.models.mtcnn import detect_faces, load_mtcnn  # noqa: E402
from fovea.models.samples import sample  # noqa: E402
from fovea.stack.config import REPO_ROOT, StackSettings  # noqa: E402

PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
K = 10


class InProcess:
    """The same work as one Verify, with the models loaded here (no gRPC, no Triton)."""

    def __init__(self) -> None:
        repo = REPO_ROOT / "model_repository"
        self.mtcnn = load_mtcnn(repo / "face_detector/1/mtcnn.pt")
        self.resnet = load_dlib_resnet(repo / "face_embedder/1/dlib_resnet.pt")
        self.settings = FacesSettings()
        self.reference = self.embed(sample("obama").read_bytes())

    def embed(self, data: bytes) -> np.ndarray:
        image = decode_image(data, ImageLimits())
        small, sx, sy = downsize(image, self.settings.detect_max_side)
        found = [f for f in detect_faces(self.mtcnn, small) if f.score >= self.settings.min_face_score]
        face = max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        marks = (face.landmarks[None] + 0.5) / np.array([sx, sy]) - 0.5
        return embed_chips(self.resnet, align_faces(image, marks))[0]

    def verify(self, data: bytes) -> float:
        return float(np.linalg.norm(self.embed(data) - self.reference))


def templates_count(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        match = re.search(r"^fovea_faces_templates_count (\S+)$", resp.read().decode(), re.MULTILINE)
    return float(match.group(1)) if match else -1.0


def synthetic(n: int, seed: int) -> np.ndarray:
    """(n, 128) float32 vectors spread like dlib embeddings (norm about 1.4)."""
    return np.random.default_rng(seed).normal(0, 1.4 / np.sqrt(128), (n, 128)).astype(np.float32)


def brute_force(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain numpy search: every distance, then the k smallest (one template per identity)."""
    d = np.linalg.norm(matrix - query, axis=1)
    top = np.argpartition(d, k)[:k]
    top = top[np.argsort(d[top])]
    return top, d[top]


def median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


async def service_embedding(settings: StackSettings, data: bytes) -> np.ndarray:
    """The query embedding exactly as the service computes it (its own pipeline code, through Triton)."""
    triton = FacesTriton(settings.triton_grpc_url)
    pipeline = FacePipeline(FacesSettings(), triton)
    try:
        photo = await pipeline.find_faces(data)
        return (await pipeline.embed([(photo.image, photo.faces.take([0]))]))[0]
    finally:
        await triton.close()


IDENTIFY_HEADER = (
    "| identities | bulk import s | service load s | gateway Identify p50 / p95 ms | our search ms "
    "| numpy brute force ms | brute / ours | recall@10 ours | recall@10 gateway |\n|---|---|---|---|---|---|---|---|---|"
)


async def bulk_import(redis_url: str, gallery: str, ids: list[str], matrix: np.ndarray) -> None:
    store = FaceStore(redis_url)
    try:
        info = await store.get_gallery(gallery)
        now = int(time.time() * 1000)
        records = (
            TemplateRecord(uuid.uuid4().hex, ids[i], info.embedding_model, now, matrix[i])
            for i in range(len(ids))
        )
        await store.bulk_enroll(info, records)
    finally:
        await store.close()


async def purge(redis_url: str) -> None:
    """Remove deleted galleries' keys now (the stack's Redis may be a shared one)."""
    store = FaceStore(redis_url)
    try:
        await store.purge_deleted()
    finally:
        await store.close()


def identify_row(
    settings: StackSettings, client: FoveaClient, probe: bytes, query: np.ndarray, n: int, requests: int
) -> str:
    redis_url = json.loads((settings.data / "stack.json").read_text())["redis_url"]  # the stack's Redis
    gallery = f"bench-{n}-{uuid.uuid4().hex[:6]}"
    client.create_gallery(gallery)
    matrix = synthetic(n, seed=n)
    ids = [f"syn-{i:07d}" for i in range(n)]
    before = templates_count(settings.faces_metrics_port)
    start = time.perf_counter()
    asyncio.run(bulk_import(redis_url, gallery, ids, matrix))
    imported = time.perf_counter() - start
    while templates_count(settings.faces_metrics_port) < before + n:
        time.sleep(0.2)
    loaded = time.perf_counter() - start - imported

    gateway = measure(f"Identify {n}", lambda i: client.identify(gallery, probe, top_k=K), requests, 1)
    found = client.identify(gallery, probe, top_k=K)[0]
    truth = {ids[i] for i in brute_force(matrix, query, K)[0]}
    recall_gateway = len({c.identity for c in found.candidates} & truth) / K

    index = GalleryIndex(128, capacity=n)
    index.add_many((ids[i], ids[i], matrix[i]) for i in range(n))
    queries = np.concatenate([query[None], synthetic(20, seed=7)])
    recalls = []
    for q in queries:
        ours = {m.identity_id for m in index.search(q, K)[0]}
        recalls.append(len(ours & {ids[i] for i in brute_force(matrix, q, K)[0]}) / K)
    repeat = 20 if n <= 100_000 else 5
    ours_ms = median_ms(lambda: index.search(queries[1], K), repeat)
    brute_ms = median_ms(lambda: brute_force(matrix, queries[1], K), repeat)
    client.delete_gallery(gallery)
    asyncio.run(purge(redis_url))
    return (
        f"| {n:,} | {imported:.1f} | {loaded:.1f} | {gateway.p50_ms:.1f} / {gateway.p95_ms:.1f} | {ours_ms:.2f} | "
        f"{brute_ms:.2f} | {brute_ms / ours_ms:.1f} | {min(recalls):.2f} | {recall_gateway:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}")
    local = InProcess()
    probes = [sample(n).read_bytes() for n in PROBES]
    rows: list[Figures] = []
    with private_stack() as (settings, key):
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        gallery = f"bench-verify-{uuid.uuid4().hex[:6]}"
        client.create_gallery(gallery)
        client.enroll(gallery, "obama", [sample("obama").read_bytes()])
        for concurrency in (1, 4):
            a = measure(
                "a: models in-process (torch)",
                lambda i: local.verify(probes[i % 5]),
                args.requests,
                concurrency,
            )
            b = measure(
                "b: gateway Verify",
                lambda i: client.verify(gallery, "obama", probes[i % 5]),
                args.requests,
                concurrency,
            )
            rows += [a, b]
            print(f"concurrency {concurrency}: verify p50 b/a {b.p50_ms / a.p50_ms:.2f}", flush=True)
        enroll_photos = [sample(n).read_bytes() for n in ("obama", *PROBES)]
        for concurrency in (1, 4):
            rows.append(
                measure(
                    "c: gateway Enroll (1 photo)",
                    lambda i: client.enroll(
                        gallery, f"person-{uuid.uuid4().hex[:8]}", [enroll_photos[i % 6]]
                    ),
                    args.requests,
                    concurrency,
                )
            )
        client.delete_gallery(gallery)
        print(HEADER)
        for row in rows:
            print(row.row())
        print()
        probe = sample("obama2").read_bytes()
        query = asyncio.run(service_embedding(settings, probe)).astype(np.float32)
        print(IDENTIFY_HEADER, flush=True)
        for n in sizes:
            print(identify_row(settings, client, probe, query, n, args.requests), flush=True)
        client.close()


if __name__ == "__main__":
    main()
