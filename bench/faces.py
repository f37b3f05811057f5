"""Faces benchmark, all in one run on a private stack, the platform against the fastest in-process pipeline
of the same models (``fovea.faces.tools.inprocess.InProcessFaces``: decode, downsize, MTCNN, align, dlib ResNet in
onnxruntime, with the faces service's own pre/post code) at concurrency 1 and 8:

1. Verify: distance to an enrolled identity (in-process: the same work against the reference embedding);
   Identify on a 1k-identity gallery (in-process: embedding + the same exact search in memory); Enroll of one
   photo (in-process: embedding + quality checks + adding to an in-memory index).
3. Identify over galleries of 1k, 100k and 1M synthetic identities (random 128-D vectors with the spread of
   dlib embeddings, bulk-imported into Redis and loaded by the faces service): gateway latency; then our exact
   search (``GalleryIndex.search``) vs a plain numpy brute force over the same matrix, with recall@10 of both
   the in-process search and the gateway's candidates against the brute force (must be 1.0).
4. Verify of 12 MP phone photos (``fovea.convert.samples.phone_photo``), decoded at half size: in-process
   with the full decode of before, in-process as now, and through the gateway (``--phone N`` requests a row).

    .venv/bin/python bench/faces.py [--requests 32] [--concurrency 1,8] [--sizes 1000,100000,1000000] [--phone 12]
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
from _timing import HEADER, Figures, measure, versus  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.images import decode_image  # noqa: E402
from fovea.common.paths import project_root  # noqa: E402
from fovea.convert.samples import phone_photo, sample
from fovea.faces.config import FacesSettings  # noqa: E402
from fovea.faces.recognition.core.matching import GalleryIndex
from fovea.faces.recognition.core.quality import assess_quality
from fovea.faces.recognition.core.records import TemplateRecord
from fovea.faces.recognition.pipeline import FacePipeline, FacesTriton, align_all
from fovea.faces.recognition.store import FaceStore
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.stack.config import StackSettings  # noqa: E402

PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
K = 10


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
    triton = FacesTriton(settings.triton_grpc_url, token=settings.internal_token_file.read_bytes().strip())
    pipeline = FacePipeline(FacesSettings(), triton)
    try:
        await pipeline.ready()  # reads the detector's DETECT_SIDE, as the service does
        photo = await pipeline.find_faces(data)
        return (await pipeline.embed([photo.source(photo.faces.take([0]))]))[0]
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per row (the best is kept)")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated concurrencies")
    parser.add_argument("--sizes", default="1000,100000,1000000", help="identify scaling table ('' = skip)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--phone", type=int, default=12, help="requests per row of the 12 MP Verify rows (0 = skip them)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    torch.set_num_threads(1)  # alignment is numpy; as the faces service runs
    print(f"torch {torch.__version__}, cuda={torch.cuda.is_available()}, device {args.device}")
    local = InProcessFaces(project_root() / "model_repository")
    reference = local.embedding(sample("obama").read_bytes())
    probes = [sample(n).read_bytes() for n in PROBES]
    enroll_photos = [sample(n).read_bytes() for n in ("obama", *PROBES)]
    rows: list[Figures] = []
    lines: list[str] = []
    with private_stack() as (settings, key):
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        gallery = f"bench-verify-{uuid.uuid4().hex[:6]}"
        client.create_gallery(gallery)
        client.enroll(gallery, "obama", [sample("obama").read_bytes()])
        distances = (
            [round(local.verify(p, reference), 3) for p in probes],
            [round(client.verify(gallery, "obama", p).distance, 3) for p in probes],
        )
        print(f"verify distances in-process {distances[0]} / gateway {distances[1]}", flush=True)
        r, line = versus(
            "Verify",
            lambda i: local.verify(probes[i % 5], reference),
            lambda i: client.verify(gallery, "obama", probes[i % 5]),
            args.requests,
            concurrencies,
            args.rounds,
        )
        rows, lines = rows + r, lines + line

        # Identify over 1k synthetic identities plus obama; the in-process side searches the same matrix.
        matrix = synthetic(1000, seed=1)
        ids = [f"syn-{i:07d}" for i in range(1000)]
        index = GalleryIndex(128, capacity=1001)
        index.add_many((ids[i], ids[i], matrix[i]) for i in range(1000))
        index.add_many([("obama", "obama", reference)])
        redis_url = json.loads((settings.data / "stack.json").read_text())["redis_url"]
        before = templates_count(settings.faces_metrics_port)
        asyncio.run(bulk_import(redis_url, gallery, ids, matrix))
        while templates_count(settings.faces_metrics_port) < before + 1000:
            time.sleep(0.2)
        r, line = versus(
            "Identify (1k)",
            lambda i: index.search(local.embedding(probes[i % 5]), 1),
            lambda i: client.identify(gallery, probes[i % 5], top_k=1),
            args.requests,
            concurrencies,
            args.rounds,
        )
        rows, lines = rows + r, lines + line

        enrolled = GalleryIndex(128, capacity=args.requests * 4 * len(concurrencies) + 64)

        def enroll_in_process(i: int) -> None:
            photo = local.find_faces(enroll_photos[i % 6])
            chips = align_all([photo.source(photo.faces.take([0]))])
            assess_quality(photo.faces.take([0]).landmarks, chips, min_inter_ocular=20.0, min_blur=1.0)
            name = uuid.uuid4().hex[:8]
            [out] = local.embedder.execute([{"CHIP": chips}])
            assert isinstance(out, dict)
            enrolled.add_many([(name, name, out["EMBEDDING"][0])])

        r, line = versus(
            "Enroll (1 photo)",
            enroll_in_process,
            lambda i: client.enroll(gallery, f"person-{uuid.uuid4().hex[:8]}", [enroll_photos[i % 6]]),
            args.requests,
            concurrencies,
            args.rounds,
        )
        rows, lines = rows + r, lines + line

        if args.phone:
            # 12 MP phone photos (the sample portraits pasted on a 4032x3024 textured canvas): decoded at half
            # size since this change, against the full decode they had before, in process; and the gateway.
            phones = [phone_photo(n, 1.0, seed=j) for j, n in enumerate(PROBES)]

            def full_decode(i: int) -> float:
                photo = local.detect(decode_image(phones[i % 5], local.limits))
                return float(np.linalg.norm(local.embed(photo) - reference))

            print(
                "phone photos, verify distances: reduced "
                f"{[round(local.verify(p, reference), 3) for p in phones]}, full decode "
                f"{[round(full_decode(i), 3) for i in range(5)]}, gateway "
                f"{[round(client.verify(gallery, 'obama', p).distance, 3) for p in phones]}",
                flush=True,
            )
            before = measure("Verify 12 MP: in-process, full decode (before)", full_decode, args.phone, 1)
            print(before.row(), flush=True)
            r, line = versus(
                "Verify 12 MP",
                lambda i: local.verify(phones[i % 5], reference),
                lambda i: client.verify(gallery, "obama", phones[i % 5]),
                args.phone,
                [1],
                args.rounds,
            )
            rows, lines = rows + [before] + r, lines + line
        client.delete_gallery(gallery)
        print(HEADER)
        for row in rows:
            print(row.row())
        print()
        for line in lines:
            print(line)
        print()
        if sizes:
            probe = sample("obama2").read_bytes()
            query = asyncio.run(service_embedding(settings, probe)).astype(np.float32)
            print(IDENTIFY_HEADER, flush=True)
            for n in sizes:
                print(identify_row(settings, client, probe, query, n, args.requests), flush=True)
        client.close()


if __name__ == "__main__":
    main()
