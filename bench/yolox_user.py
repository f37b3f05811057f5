"""Issue 23's first two must-shows against a user's YOLOX-nano script: the same ONNX imported with
``fovea models import-onnx --family yolox`` and the default detector through the gateway, taking turns with
``bench/_user_yolox.py`` (YOLOX's own onnxruntime demo, in its own process, onnxruntime's defaults).

- ``imported YOLOX (user_yolox)``: gateway p50 at concurrency 1 / the script's p50 (bound 1.25), and
  throughput at concurrency 8 / the script's sequential rate (bound >= 1.0);
- ``nanodet_int8 (default)``: gateway p50 at concurrency 1 / the script's p50 (bound 2.0; its boxes are
  counted by ``fovea detect-eval``, not here).

Without ``--onnx`` the model is ``bench/_yolox_nano.py``: YOLOX-nano's layer plan with seeded random
weights (a timing stand-in: its scores sit near 1e-4, so neither side keeps a box). With ``--onnx`` a real
YOLOX export (``tools/export_onnx.py`` of Megvii's YOLOX, 416x416, raw outputs ``(1, 3549, 85)``, BGR
pixels 0-255 without normalisation) replaces it, and both sides must find the same classes.

    .venv/bin/python bench/yolox_user.py [--onnx yolox_nano.onnx] [--requests 48] [--user-rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _yolox_nano import export  # noqa: E402
from detection import against_user, import_detector, settings_environment, user_script  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402

MODELS = {"imported YOLOX (user_yolox)": "user_yolox", "nanodet_int8 (default)": "nanodet_int8"}


YOLOX_FLAGS = ["--family", "yolox", "--bgr", "--scale", "1"]
"""``import-onnx`` flags of a YOLOX export (BGR pixels 0-255, no normalisation; boxes decoded by the service)."""


def import_yolox(env: dict[str, str], onnx: Path, name: str = "user_yolox") -> None:
    """``fovea models import-onnx`` a YOLOX export into the stack whose environment ``env`` is, and load it."""
    import_detector(env, onnx, name, flags=YOLOX_FLAGS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--onnx", type=Path, help="a real YOLOX export (default: the random-weight stand-in)")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--user-rounds", type=int, default=3)
    args = parser.parse_args()
    with private_stack() as (settings, key), tempfile.TemporaryDirectory() as tmp:
        onnx = args.onnx or export(Path(tmp) / "yolox_nano.onnx")
        print(f"model: {onnx}" + ("" if args.onnx else " (bench/_yolox_nano.py, random weights)"), flush=True)
        import_yolox(settings_environment(settings), onnx)
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        script = user_script(onnx, "_user_yolox.py")
        against_user(
            client, script, args.requests, args.user_rounds, models=MODELS, what="bench/_user_yolox.py"
        )
        client.close()


if __name__ == "__main__":
    main()
