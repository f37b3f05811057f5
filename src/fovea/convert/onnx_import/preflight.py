"""Before asking Triton to load an imported model: its config parsed and one trial batch run here."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def model_config_json(config_text: str) -> str:
    """``config.pbtxt`` text -> the JSON Triton hands a python model (parsed with Triton's own proto)."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    try:
        config = text_format.Parse(config_text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"config.pbtxt does not parse: {exc}") from None
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def is_imported(model_dir: Path) -> bool:
    """Whether ``model_dir`` was written by :func:`import_onnx` (its ``model.py`` serves
    :mod:`fovea.serving.onnx_detector`)."""
    model_py = model_dir / "1" / "model.py"
    return model_py.is_file() and "fovea.serving.onnx_detector" in model_py.read_text(encoding="utf-8")


def preflight(model_dir: Path) -> str:
    """Do here what Triton's ``initialize`` will do for an imported model, and one trial batch on CPU, so
    a broken model is refused before Triton tries it (a failed load keeps Triton not-ready until restart).

    Returns:
        a one-line description of the served model.

    Raises:
        ValueError: the config, the ONNX file or the trial run fails.
    """
    from fovea.serving.onnx_detector import load_served

    config = model_config_json((model_dir / "config.pbtxt").read_text("utf-8"))
    try:
        contract, served = load_served(model_dir / "1", config, "CPU", 0)
        (image,) = contract.inputs
        (result,) = served.execute([{image.name: np.zeros((1, *image.dims), np.uint8)}])
    except FileNotFoundError:
        raise ValueError(f"{model_dir / '1'} lacks its weights: import the model again") from None
    except Exception as exc:  # onnxruntime's own exception types
        raise ValueError(f"{model_dir.name} does not run: {exc}") from None
    if isinstance(result, Exception):
        raise ValueError(f"{model_dir.name} does not run: {result}")
    return served.describe()
