"""MTCNN's build recipe: facenet-pytorch's weights (the three state dicts, without the package) into the torch port (``fovea.ports.mtcnn``), exported to ONNX and checked against the port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fovea.contracts.face_detector import ONNX_TENSORS
from fovea.convert.sources import atomic_write, cache_dir, extract_member, pypi_archive
from fovea.ports.mtcnn import ARTEFACT_FORMAT, MTCNN, NETS, normalise

PACKAGE_NAME = "facenet-pytorch"

PACKAGE_VERSION = "2.6.0"
SOURCE_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"  # the wheel, and so its three weight files

ONNX_TOLERANCE = 1e-4  # max abs difference allowed between the ONNX graphs and these modules


def fetch_mtcnn_weights() -> dict[str, Path]:
    """Download ``facenet-pytorch==2.6.0`` (cached) and return the extracted ``{pnet,rnet,onet}.pt`` paths."""
    archive = pypi_archive(PACKAGE_NAME, PACKAGE_VERSION)
    folder = cache_dir() / "sources" / f"{PACKAGE_NAME}-{PACKAGE_VERSION}"
    return {
        name: extract_member(archive, f"facenet_pytorch/data/{name}.pt", folder / f"{name}.pt")
        for name in NETS
    }


def convert_mtcnn(out_path: Path) -> Path:
    """Write one artefact ``{"format", "state_dict"}`` holding the three networks (prefixed pnet./rnet./onet.)."""
    artefact: dict[str, Any] = {"format": ARTEFACT_FORMAT, "state_dict": facenet_mtcnn().state_dict()}
    with atomic_write(out_path) as tmp:
        torch.save(artefact, tmp)
    return Path(out_path)


def facenet_mtcnn() -> MTCNN:
    """The three networks with facenet-pytorch's weights (fetched and cached)."""
    model = MTCNN()
    for name, path in fetch_mtcnn_weights().items():
        state = torch.load(path, map_location="cpu", weights_only=True)
        getattr(model, name).load_state_dict(state, strict=True)
    return model.eval()


class _OnnxNets(nn.Module):
    """The three networks as one module with three inputs, raw pixels in (what the ONNX file holds)."""

    def __init__(self, model: MTCNN) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, image: torch.Tensor, crops24: torch.Tensor, crops48: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return (
            *self.model.pnet(normalise(image)),
            *self.model.rnet(normalise(crops24)),
            *self.model.onet(normalise(crops48)),
        )


def export_mtcnn_onnx(model: MTCNN, out_path: Path) -> Path:
    """Write P-Net, R-Net and O-Net as one ONNX file (tensor names: :data:`ONNX_TENSORS`)."""
    inputs = [ONNX_TENSORS[n][0] for n in NETS]
    outputs = [o for n in NETS for o in ONNX_TENSORS[n][1]]
    dynamic: dict[str, dict[int, str]] = {}
    for net, (inp, outs) in ONNX_TENSORS.items():  # each net its own batch size
        for name in (inp, *outs):
            dynamic[name] = {0: f"{net}_n"}
    dynamic["PNET_IMAGE"].update({2: "h", 3: "w"})
    for name in ONNX_TENSORS["pnet"][1]:
        dynamic[name].update({2: "h_out", 3: "w_out"})
    example = (torch.zeros(1, 3, 40, 30), torch.zeros(2, 3, 24, 24), torch.zeros(2, 3, 48, 48))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        _OnnxNets(model.cpu().eval()),
        example,
        str(out_path),
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    return out_path


def check_mtcnn_onnx(model: MTCNN, path: Path, seed: int = 0) -> float:
    """Largest abs difference between the ONNX file's nets and ``model``'s on random pixels (two image
    sizes, a batch of crops each); raises ``ValueError`` above :data:`ONNX_TOLERANCE`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for h, w in ((57, 83), (120, 64)):
        feeds = {
            "PNET_IMAGE": rng.uniform(0, 255, (2, 3, h, w)).astype(np.float32),
            "RNET_CROPS": rng.uniform(0, 255, (5, 3, 24, 24)).astype(np.float32),
            "ONET_CROPS": rng.uniform(0, 255, (3, 3, 48, 48)).astype(np.float32),
        }
        got = session.run(None, feeds)
        with torch.inference_mode():
            want = _OnnxNets(model.cpu().eval())(*(torch.from_numpy(v) for v in feeds.values()))
        for g, e in zip(got, want, strict=True):
            worst = max(worst, float(np.abs(g - e.numpy()).max()))
    if worst > ONNX_TOLERANCE:
        raise ValueError(f"{path}: ONNX MTCNN differs from the torch port by {worst:.2e} > {ONNX_TOLERANCE}")
    return worst


def convert_mtcnn_onnx(out_path: Path) -> Path:
    """facenet-pytorch's weights -> one ONNX file with the three networks, checked against the torch port."""
    model = facenet_mtcnn()
    with atomic_write(out_path) as tmp:
        export_mtcnn_onnx(model, tmp)
        check_mtcnn_onnx(model, tmp)
    return Path(out_path)


def port_artefact() -> Path:
    """:func:`convert_mtcnn`'s artefact in the build cache, converted from the pinned wheel when missing."""
    path = cache_dir() / "models" / f"mtcnn-{PACKAGE_NAME}-{PACKAGE_VERSION}.pt"
    return path if path.exists() else convert_mtcnn(path)
