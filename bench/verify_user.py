"""Verify against what a user runs instead (issue 23): ``bench/_user_faces.py``, the user's own RetinaFace +
embedder script in its own process with onnxruntime's defaults, one photo at a time, on the same ONNX files
the platform serves (``face_retinaface``, ``face_embedder``).

A private stack (its faces service with the detector of ``FOVEA_FACES_DETECTOR``, RetinaFace by default;
run once more with ``FOVEA_FACES_DETECTOR=mtcnn`` for the other row), a gallery with obama enrolled from
obama.jpg; per round the script and Verify through the gateway take turns in blocks of ``--block`` requests
on the five probes (four of obama, biden), one at a time, the script timing its own calls; then Verify at
concurrency 8. Turns of a few hundred milliseconds, so that both sides see the same minute of a machine
whose speed drifts by +-20% (one side's 48 requests after the other's made the ratio of one round move by as
much). Ratios per round: gateway p50 at concurrency 1 / the script's p50, gateway throughput at concurrency
8 / the script's sequential rate (its requests / the sum of their times); the run's figure is their median.
Both sides' decisions (distance < 0.6) are compared probe by probe.

    FOVEA_FACES_DETECTOR=retinaface .venv/bin/python bench/verify_user.py [--requests 48] [--rounds 3] [--block 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import measure  # noqa: E402

from fovea.common.paths import project_root  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.faces.config import FacesSettings  # noqa: E402

ENROLLED = "obama"
PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
THRESHOLD = 0.6
WARMUP = 3


class UserScript:
    """``bench/_user_faces.py --serve`` in its own process: its distances, then blocks timed on request."""

    def __init__(self) -> None:
        repository = project_root() / "model_repository"
        command = [
            sys.executable,
            str(Path(__file__).parent / "_user_faces.py"),
            str(repository / "face_retinaface" / "1" / "retinaface_mnet025.onnx"),
            str(repository / "face_embedder" / "1" / "dlib_resnet.onnx"),
            str(sample(ENROLLED)),
            *[str(sample(p)) for p in PROBES],
            "--serve",
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.distances: list[float] = json.loads(self._readline())["distances"]

    def _readline(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the user's script ended (exit code {self._process.wait()})")
        return line

    def block(self, first: int, count: int) -> list[float]:
        """Latencies in ms of requests first..first+count-1, timed by the script."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"{first} {count}\n")
        self._process.stdin.flush()
        latencies: list[float] = json.loads(self._readline())
        return latencies

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--block", type=int, default=8, help="requests per turn of each side at concurrency 1"
    )
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

            def timed(first: int, count: int) -> list[float]:
                latencies = []
                for i in range(first, first + count):
                    start = time.perf_counter()
                    call(i)
                    latencies.append((time.perf_counter() - start) * 1e3)
                return latencies

            script = UserScript()
            print(
                "script distances: "
                + ", ".join(f"{n} {d:.3f}" for n, d in zip(PROBES, script.distances, strict=True))
            )
            same = [v.distance < THRESHOLD for v in served] == [d < THRESHOLD for d in script.distances]
            print(f"same decisions on every probe: {same}")
            script.block(0, WARMUP)
            timed(0, WARMUP)
            latency, rate = [], []
            for k in range(args.rounds):
                mine: list[float] = []
                theirs: list[float] = []
                for first in range(0, args.requests, args.block):
                    count = min(args.block, args.requests - first)
                    if (first // args.block) % 2 == 0:  # who goes first alternates too
                        theirs += script.block(first, count)
                        mine += timed(first, count)
                    else:
                        mine += timed(first, count)
                        theirs += script.block(first, count)
                eight = measure("Verify c8", call, args.requests, 8)
                user_p50, user_rate = statistics.median(theirs), len(theirs) / (sum(theirs) / 1e3)
                latency.append(statistics.median(mine) / user_p50)
                rate.append(eight.per_s / user_rate)
                print(
                    f"round {k + 1}: script p50 {user_p50:.1f} ms, {user_rate:.1f}/s; gateway c1 p50 "
                    f"{statistics.median(mine):.1f} ms, c8 {eight.per_s:.1f}/s; ratios {latency[-1]:.2f} / "
                    f"{rate[-1]:.2f}",
                    flush=True,
                )
            script.close()
            client.delete_gallery(gallery)
    print(
        f"{detector}: Verify gateway c1 p50 / script p50 {statistics.median(latency):.2f} "
        f"({min(latency):.2f}-{max(latency):.2f}); gateway c8 rate / script's sequential rate "
        f"{statistics.median(rate):.2f} ({min(rate):.2f}-{max(rate):.2f}); medians of {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
