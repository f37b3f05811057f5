"""Verify against what a user runs instead (issue 23): ``bench/_user_faces.py``, the user's own RetinaFace +
embedder script in its own process with onnxruntime's defaults, one photo at a time, on the same ONNX files
the platform serves (``face_retinaface``, ``face_embedder``).

A private stack (its faces service with the detector of ``FOVEA_FACES_DETECTOR``, RetinaFace by default;
run once more with ``FOVEA_FACES_DETECTOR=mtcnn`` for the other row), a gallery with obama enrolled from
obama.jpg; per round the script on the five probes (four of obama, biden), then Verify through the gateway on
the same probes at concurrency 1 and 8. Ratios per round: gateway p50 at concurrency 1 / the script's p50,
gateway throughput at concurrency 8 / the script's sequential rate; the run's figure is their median.
Both sides' decisions (distance < 0.6) are compared probe by probe.

    FOVEA_FACES_DETECTOR=retinaface .venv/bin/python bench/verify_user.py [--requests 48] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import measure  # noqa: E402

from fovea.common.paths import project_root  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.faces.config import FacesSettings  # noqa: E402

ENROLLED = "obama"
PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
THRESHOLD = 0.6


def user_script(requests: int) -> dict[str, Any]:
    repository = project_root() / "model_repository"
    command = [
        sys.executable,
        str(Path(__file__).parent / "_user_faces.py"),
        str(repository / "face_retinaface" / "1" / "retinaface_mnet025.onnx"),
        str(repository / "face_embedder" / "1" / "dlib_resnet.onnx"),
        str(sample(ENROLLED)),
        *[str(sample(p)) for p in PROBES],
        "--requests",
        str(requests),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    detector = FacesSettings().detector.value
    probes = [sample(p).read_bytes() for p in PROBES]
    with private_stack() as (settings, key):
        from fovea.client import FoveaClient

        with FoveaClient(f"127.0.0.1:{settings.gateway_port}", key, 60.0) as client:
            gallery = f"bench-verify-{uuid.uuid4().hex[:6]}"
            client.create_gallery(gallery)
            client.enroll(gallery, ENROLLED, [sample(ENROLLED).read_bytes()])
            served = [client.verify(gallery, ENROLLED, p) for p in probes]
            print(f"faces service detector: {detector}")
            print(
                "gateway distances: "
                + ", ".join(f"{n} {v.distance:.3f}" for n, v in zip(PROBES, served, strict=True))
            )

            def call(i: int) -> object:
                return client.verify(gallery, ENROLLED, probes[i % len(probes)])

            latency, rate = [], []
            for k in range(args.rounds):
                user = user_script(args.requests)
                if k == 0:
                    print(
                        "script distances: "
                        + ", ".join(f"{n} {d:.3f}" for n, d in zip(PROBES, user["distances"], strict=True))
                    )
                    same = [v.distance < THRESHOLD for v in served] == [
                        d < THRESHOLD for d in user["distances"]
                    ]
                    print(f"same decisions on every probe: {same}")
                one = measure("Verify c1", call, args.requests, 1)
                eight = measure("Verify c8", call, args.requests, 8)
                latency.append(one.p50_ms / user["p50_ms"])
                rate.append(eight.per_s / user["per_s"])
                print(
                    f"round {k + 1}: script p50 {user['p50_ms']:.1f} ms, {user['per_s']:.1f}/s; gateway c1 p50 "
                    f"{one.p50_ms:.1f} ms, c8 {eight.per_s:.1f}/s; ratios {latency[-1]:.2f} / {rate[-1]:.2f}",
                    flush=True,
                )
            client.delete_gallery(gallery)
    print(
        f"{detector}: Verify gateway c1 p50 / script p50 {statistics.median(latency):.2f} "
        f"({min(latency):.2f}-{max(latency):.2f}); gateway c8 rate / script's sequential rate "
        f"{statistics.median(rate):.2f} ({min(rate):.2f}-{max(rate):.2f}); medians of {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
