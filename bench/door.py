"""Door decisions with the presentation-attack check on: VerifyAccess p50 for a 5-frame burst through the
gateway, at a door with `pad: require` and at a door without it (the difference is what the check costs:
face detection on every frame is needed either way), same run.

The burst is an attack the check must refuse: obama2.jpg printed 150 mm wide and tilted from -30 to +30
degrees over five frames, 350 mm from the camera (960x720 JPEG frames, `fovea.faces.tools.core.pad_synth`).

    .venv/bin/python bench/door.py [--requests 20]
"""

from __future__ import annotations

import argparse
import collections
import io
import itertools
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _timing import HEADER, WARMUP, measure  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.convert.samples import sample
from fovea.faces.tools.core.pad_render import photo_view
from fovea.faces.tools.core.pad_synth import rotation


def jpeg(frame: np.ndarray, note: str = "") -> bytes:
    """``frame`` as JPEG bytes; ``note`` in a comment segment (other bytes, the same pixels)."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90, comment=note.encode())
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with Image.open(sample("obama2")) as img:
        photo = img.convert("RGB")
    frames = [photo_view(photo, rotation(-30 + 15 * k, 10, 0), 350, (960, 720)) for k in range(5)]
    # A door that checks PAD refuses a frame it has seen before (a replay), also from an earlier run (the
    # ledger is in Redis): every call sends a burst of its own, the same pixels with a comment of this run and
    # call, encoded before timing.
    calls = 2 + 4 * (args.requests + WARMUP)  # the two shown first, then four rows
    run = uuid.uuid4().hex
    bursts = [[jpeg(frame, f"{run} {n}") for frame in frames] for n in range(calls)]
    fresh = itertools.count()
    with tempfile.TemporaryDirectory() as tmp:
        policies = Path(tmp) / "door-policies.json"
        policies.write_text(json.dumps({"doors": {"vault": {"pad": "require"}, "front": {}}}))
        os.environ["FOVEA_FACES_DOOR_POLICIES_FILE"] = str(policies)
        with private_stack() as (settings, key):
            client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
            gallery = f"staff-{uuid.uuid4().hex[:6]}"  # the bench stack's Redis may be a shared one
            client.create_gallery(gallery)
            client.enroll(gallery, "obama", [sample("obama").read_bytes()])
            for door in ("vault", "front"):
                result = client.verify_access(door, gallery, "obama", bursts[next(fresh)])
                print(f"{door}: {result.decision} - {result.reason} - {result.pad}")
            reasons: dict[str, collections.Counter[str]] = {}

            def access(door: str) -> None:
                result = client.verify_access(door, gallery, "obama", bursts[next(fresh)])
                reasons.setdefault(door, collections.Counter())[result.reason.split(":")[0]] += 1

            rows = [
                measure(
                    f"VerifyAccess, 5 frames, door {door}",
                    lambda i, d=door: access(d),
                    args.requests,
                    1,
                    WARMUP,
                )
                for door in ("vault", "front", "vault", "front")
            ]
            for door, seen in reasons.items():  # what was timed: the decision's kind, as often as it came
                print(f"{door}: " + ", ".join(f"{kind} x{n}" for kind, n in seen.most_common()))
            client.delete_gallery(gallery)
            client.close()
    print(HEADER)
    for row in rows:
        print(row.row())
    pad = min(rows[0].p50_ms, rows[2].p50_ms)
    plain = min(rows[1].p50_ms, rows[3].p50_ms)
    print(f"\nPAD on / off, p50: {pad:.1f} / {plain:.1f} ms ({pad - plain:+.1f} ms)")


if __name__ == "__main__":
    main()
