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
        [--embedder served|mobilefacenet]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _mobilefacenet import export  # noqa: E402
from _stack import private_stack  # noqa: E402
from _timing import WARMUP, ServedScript, measure, per_s, take_turns, timed_block  # noqa: E402

from fovea.common.paths import project_root  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.faces.config import FacesSettings  # noqa: E402

ENROLLED = "obama"
PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
THRESHOLD = 0.6


def user_script(embedder: Path | None = None) -> ServedScript:
    """``bench/_user_faces.py --serve`` on the served ONNX files (or another ``embedder``), in its own
    process."""
    repository = project_root() / "model_repository"
    return ServedScript(
        [
            sys.executable,
            str(Path(__file__).parent / "_user_faces.py"),
            str(repository / "face_retinaface" / "1" / "retinaface_mnet025.onnx"),
            str(embedder or repository / "face_embedder" / "1" / "dlib_resnet.onnx"),
            str(sample(ENROLLED)),
            *[str(sample(p)) for p in PROBES],
            "--serve",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--block", type=int, default=8, help="requests per turn of each side at concurrency 1"
    )
    parser.add_argument(
        "--embedder",
        choices=("served", "mobilefacenet"),
        default="served",
        help="the script's embedder: the served dlib ResNet, or a MobileFaceNet of random weights "
        "(bench/_mobilefacenet.py: times the held-out script's embedder class; decisions not compared)",
    )
    args = parser.parse_args()
    detector = FacesSettings().detector.value
    probes = [sample(p).read_bytes() for p in PROBES]
    with private_stack() as (settings, key), tempfile.TemporaryDirectory() as tmp:
        from fovea.client import FoveaClient

        embedder = None if args.embedder == "served" else export(Path(tmp) / "mobilefacenet.onnx")

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

            script = user_script(embedder)
            distances = script.ready["distances"]
            print(
                "script distances: "
                + ", ".join(f"{n} {d:.3f}" for n, d in zip(PROBES, distances, strict=True))
            )
            if embedder is None:
                same = [v.distance < THRESHOLD for v in served] == [d < THRESHOLD for d in distances]
                print(f"same decisions on every probe: {same}")
            else:
                print("the script's embedder has random weights: its decisions are not compared")
            sides = {"script": script.block, "gateway": timed_block(call)}
            take_turns(sides, WARMUP, WARMUP)
            latency, rate = [], []
            for k in range(args.rounds):
                turns = take_turns(sides, args.requests, args.block)
                theirs, mine = turns["script"], turns["gateway"]
                eight = measure("Verify c8", call, args.requests, 8)
                user_p50, user_rate = statistics.median(theirs), per_s(theirs)
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
    against = "" if args.embedder == "served" else " (the script with MobileFaceNet's shape)"
    print(
        f"{detector}{against}: Verify gateway c1 p50 / script p50 {statistics.median(latency):.2f} "
        f"({min(latency):.2f}-{max(latency):.2f}); gateway c8 rate / script's sequential rate "
        f"{statistics.median(rate):.2f} ({min(rate):.2f}-{max(rate):.2f}); medians of {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
