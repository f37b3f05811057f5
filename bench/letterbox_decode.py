"""How small a detector's photo is decoded, and what that saves (issue 23): JPEGs decoded at 1/2..1/8 scale
(libjpeg's DCT scaling, Pillow's ``draft``) when the reduced image still holds what the letterbox keeps.

Two rules, timed on the same photos (sample photos resized with Pillow to the sizes phones and cameras
write, JPEG quality 90), decode and letterbox together, the rules taking turns:

- ``both sides``: the reduced image keeps the network's whole input on both sides (416x416), the rule
  before 2026-12-08;
- ``letterbox``: it keeps the size the letterbox resizes the photo to (416x312 for 4:3), the rule now
  (``fovea.detection.pipeline.decode``).

    .venv/bin/python bench/letterbox_decode.py [--runs 30]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _timing import take_turns, timed_block  # noqa: E402

from fovea.common.images import ImageLimits, MinSize, decode_image_reduced  # noqa: E402
from fovea.contracts.detector import DetectorSpec  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.detection.core.preprocess import letterbox, resized_size  # noqa: E402

PHOTOS = (("dog", (4032, 3024)), ("horses", (1600, 1200)), ("dog", (1024, 768)), ("person", (640, 424)))
"""(sample photo, size it is resized to): a phone's 12 MP, a 2 MP camera, a 1024 px export, COCO's size."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    spec = DetectorSpec.model_validate(
        {
            "name": "probe",
            "family": "yolov8",
            "input_size": (416, 416),
            "labels": ["a"],
            "input_name": "INPUT",
            "output_names": ["OUTPUT0"],
            "input_format": "uint8_nhwc",
        }
    )
    rules: dict[str, MinSize] = {
        "both sides": spec.input_size,
        "letterbox": lambda size: resized_size(size[0], size[1], spec),
    }
    limits = ImageLimits()
    print(f"decode + letterbox to {spec.input_size}, p50 ms of {args.runs} runs per rule, taking turns")
    print(
        "| photo | bytes | "
        + " | ".join(f"{r}: decoded at" for r in rules)
        + " | "
        + " | ".join(rules)
        + " |"
    )
    print("|---" * (2 + 2 * len(rules)) + "|")
    for name, size in PHOTOS:
        buf = io.BytesIO()
        Image.open(sample(name)).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(
            buf, "JPEG", quality=90
        )
        data = buf.getvalue()
        decoded_at = {
            rule: "x".join(map(str, decode_image_reduced(data, limits, m).picture.size))
            for rule, m in rules.items()
        }
        sides = {
            rule: timed_block(lambda _i, m=m, d=data: prepare(d, limits, m, spec))
            for rule, m in rules.items()
        }
        times = take_turns(sides, args.runs, block=1)
        print(
            f"| {name} {size[0]}x{size[1]} | {len(data)} | "
            + " | ".join(decoded_at[r] for r in rules)
            + " | "
            + " | ".join(f"{statistics.median(times[r]):.2f}" for r in rules)
            + " |"
        )


def prepare(data: bytes, limits: ImageLimits, min_size: MinSize, spec: DetectorSpec) -> None:
    decoded = decode_image_reduced(data, limits, min_size)
    letterbox(decoded.picture, spec, decoded.original_size)


if __name__ == "__main__":
    main()
