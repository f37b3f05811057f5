"""The faces request path around Triton: decode -> downsize -> ``face_detector`` -> faces in original pixels
-> align chips -> ``face_embedder`` (all chips of a request in one call). CPU work runs in worker threads.

Large JPEGs are decoded at 1/2, 1/4 or 1/8 of their size when every face the detector can find keeps at
least the chip's pixels there (:func:`faces_min_size`); faces are still reported in the full photo's pixels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image
from tritonclient.utils import InferenceServerException

from fovea.common.errors import FailedPrecondition, InvalidArgument, UpstreamUnavailable
from fovea.common.images import ImageLimits, as_picture, decode_image_reduced, image_size, limits_from
from fovea.common.triton import TritonClient, translate
from fovea.contracts.face_detector import (
    DEFAULT_MIN_FACE_SIZE,
    DETECTOR_INPUT,
    DETECTOR_OUTPUTS,
    MIN_IMAGE_SIDE,
    DetectedFaces,
    detection_size,
    unpack_detections,
)
from fovea.contracts.face_embedder import EMBEDDER_INPUT, EMBEDDER_OUTPUT, EmbedderInfo
from fovea.contracts.face_mesh import MESH_INPUT, MESH_OUTPUTS
from fovea.contracts.tensors import model_parameters
from fovea.faces.config import FaceDetectorKind, FacesSettings
from fovea.faces.recognition.core.align import MTCNN_TEMPLATE, RETINAFACE_TEMPLATE, align_faces
from fovea.faces.recognition.core.faces import confident_by_area, reduce, rescale, unreduce_matrix
from fovea.faces.recognition.core.mesh import crop_face, crop_matrix, mesh_to_image
from fovea.faces.recognition.core.quality import assess_quality
from fovea.faces.recognition.store import GalleryInfo

log = logging.getLogger(__name__)

# Where each detector's five points land in dlib's chip (fovea.faces.recognition.core.align): the chips, and
# so the templates stored from them, are comparable whichever detector found the face.
DETECTOR_TEMPLATES: dict[FaceDetectorKind, np.ndarray] = {
    FaceDetectorKind.MTCNN: MTCNN_TEMPLATE,
    FaceDetectorKind.RETINAFACE: RETINAFACE_TEMPLATE,
}


class FacesTriton(TritonClient):
    """The shared Triton client plus reading a model's config parameters."""

    async def model_parameters(self, model: str) -> dict[str, str]:
        try:
            config = await self._client.get_model_config(
                model, as_json=True, client_timeout=5.0, headers=self._headers
            )
        except InferenceServerException as exc:
            raise translate(exc, self.url, model) from exc
        return model_parameters(config.get("config", {}))


CHIP_FACE_PX = 100
"""Pixels across a face in the embedder's chip: dlib's ``get_face_chip`` (150 pixels, padding 0.25) maps its
face template onto 150 / 1.5 = 100 of them."""


@dataclass(frozen=True)
class Photo:
    """A decoded photo and its faces (score >= the minimum, largest first, original pixels)."""

    picture: Image.Image | np.ndarray
    """The photo at 1/``reduction`` of its size: the Pillow RGB image as decoded, or (H, W, 3) uint8 RGB."""
    faces: DetectedFaces
    reduction: int = 1
    """1, 2, 4 or 8 (:func:`faces_min_size`); ``faces`` are in the full photo's pixels either way."""

    @cached_property
    def image(self) -> np.ndarray:
        """``picture`` as (H, W, 3) uint8 RGB, made on first use: a Verify never needs every pixel (its chip
        is cut from the picture), and the array is a copy of all of them (a 1434x2333 photo: 5-9 ms)."""
        return np.asarray(self.picture, np.uint8)

    def source(self, faces: DetectedFaces) -> tuple[Image.Image | np.ndarray, DetectedFaces]:
        """``picture`` and ``faces`` (some of this photo's, in its full pixels) in its pixels: what
        alignment crops from."""
        return self.picture, reduce(faces, self.reduction)


def faces_min_size(detect_side: int, min_face: float) -> Callable[[tuple[int, int]], tuple[int, int] | None]:
    """What a photo must keep when it is decoded for the faces pipeline, as a function of its full size (for
    :func:`fovea.common.images.decode_image_reduced`): a JPEG is decoded at 1/2, 1/4 or 1/8 of its size
    when even the smallest face the detector can find in it (``min_face`` pixels of the ``detect_side`` copy)
    still spans :data:`CHIP_FACE_PX` pixels there, so that no chip is cut from fewer pixels than it shows.
    With the served settings (288, 20) that is a photo of 2,880 pixels or more on its longer side: a 12 MP
    phone photo is decoded at half size, in a fraction of the time (bench/README.md)."""

    def min_size(size: tuple[int, int]) -> tuple[int, int] | None:
        width, height = size
        if detect_side <= 0:
            return None
        smallest = min_face * max(1.0, max(width, height) / detect_side)
        k = 8
        while k > 1 and smallest / k < CHIP_FACE_PX:
            k //= 2
        return None if k == 1 else (width // k, height // k)

    return min_size


def downsize(
    image: np.ndarray | Image.Image, max_side: int, original_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, float, float]:
    """(H, W, 3) uint8, or a Pillow RGB image -> the image (H', W', 3) uint8 with its longer side <= max_side,
    and the x and y scales applied.
    ``InvalidArgument`` when the shorter side would end below the detector's minimum (an extreme aspect
    ratio, e.g. 16 x 12000): the message says what to change, with the photo's ``original_size`` when
    ``image`` is a reduced decode of it.
    """
    width, height = image_size(image)
    new_w, new_h = detection_size(width, height, max_side)
    if min(new_w, new_h) < MIN_IMAGE_SIDE:
        shown_w, shown_h = original_size or (width, height)
        raise InvalidArgument(
            f"the photo is {shown_w}x{shown_h} pixels, too narrow to look for faces in: scaled to {max_side} "
            f"pixels on its longer side for detection, its shorter side is {min(new_w, new_h)} and the face "
            f"detector needs at least {MIN_IMAGE_SIDE}; crop it so its longer side is at most "
            f"{max_side // MIN_IMAGE_SIDE} times its shorter side"
        )
    if (new_w, new_h) == (width, height):
        return np.asarray(image, np.uint8), 1.0, 1.0
    # Box-reduced by an integer factor first, bilinear over the last 1.5-3x: an area average all the same, in
    # less time than a bilinear filter over the whole factor (a 626x1200 photo to 320: 4.3 -> 2.7 ms, a
    # 970x2204 one 7.3 -> 4.0); the sample probes' distances moved by 0.007 at most, the landmarks' jitter on
    # warped prints did not move (bench/README.md, "Pinned workers").
    resized = as_picture(image).resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=1.5)
    return np.asarray(resized), new_w / width, new_h / height


def detection_side(max_side: int, detector_params: Mapping[str, str]) -> int:
    """The longer side a photo is downsized to before detection: ``max_side`` (the service's setting), or the
    face_detector's ``DETECT_SIDE`` when that is smaller, since the model would shrink the photo to it anyway
    (sending more only moves pixels: 3 MB for a 1024 px photo against 0.25 MB at 288)."""
    side = int(detector_params.get("DETECT_SIDE", "0") or 0)
    return min(max_side, side) if side > 0 else max_side


class FacePipeline:
    def __init__(self, settings: FacesSettings, triton: FacesTriton) -> None:
        self.settings = settings
        self.triton = triton
        self.limits = limits_from(settings)
        self._info: EmbedderInfo | None = None
        self.detect_side = settings.detect_max_side  # refined from the detector's config by ready()
        self.min_face = DEFAULT_MIN_FACE_SIZE  # the same

    # ------------------------------------------------------------------------------------------ models
    @property
    def embedder(self) -> EmbedderInfo:
        """Version and default threshold of the embedding model (read from Triton by :meth:`ready`)."""
        if self._info is None:
            raise UpstreamUnavailable(
                f"the embedding model {self.settings.embedder_model!r} has not been seen ready in Triton yet"
            )
        return self._info

    def check_comparable(self, gallery: GalleryInfo) -> str:
        """The current embedding model's version; ``FailedPrecondition`` when the gallery's templates come
        from another version (distances across versions mean nothing)."""
        current = self.embedder.version
        if gallery.embedding_model != current:
            raise FailedPrecondition(
                f"gallery {gallery.gallery_id} holds templates of model {gallery.embedding_model} and the service "
                f"embeds with {current}: comparing across model versions is refused; enroll into a new gallery"
            )
        return current

    async def ready(self) -> bool:
        """Both models ready in Triton; refreshes what is known of the embedding model."""
        models = (self.settings.detector_model, self.settings.embedder_model)
        if not all(await asyncio.gather(*(self.triton.is_model_ready(m) for m in models))):
            return False
        info = EmbedderInfo.from_parameters(await self.triton.model_parameters(self.settings.embedder_model))
        detector = await self.triton.model_parameters(self.settings.detector_model)
        self.detect_side = detection_side(self.settings.detect_max_side, detector)
        self.min_face = float(detector.get("MIN_FACE_SIZE") or DEFAULT_MIN_FACE_SIZE)
        if self._info is not None and info != self._info:
            log.warning("embedding model changed in Triton: %s -> %s", self._info, info)
        self._info = info
        return True

    # ------------------------------------------------------------------------------------------ photos
    async def find_faces(self, data: bytes) -> Photo:
        """Decode (``InvalidImage`` on bad bytes) and detect; faces below the minimum score are dropped."""
        image, reduction, (small, sx, sy) = await asyncio.to_thread(
            decode_for_faces, data, self.limits, self.detect_side, self.min_face
        )
        outputs = await self.triton.infer(
            self.settings.detector_model,
            {DETECTOR_INPUT: small[None]},
            DETECTOR_OUTPUTS,
            timeout_s=self.settings.triton_timeout_s,
        )
        faces = unpack_detections(outputs)[0]
        return Photo(
            image, confident_by_area(rescale(faces, sx, sy), self.settings.min_face_score), reduction
        )

    async def find_faces_many(self, photos: Sequence[bytes]) -> list[Photo]:
        return list(await asyncio.gather(*(self.find_faces(p) for p in photos)))

    async def align(self, faces: Sequence[tuple[Image.Image | np.ndarray, DetectedFaces]]) -> np.ndarray:
        """(image, faces in that image's pixels) pairs (``Photo.source``) -> (F, 150, 150, 3) uint8 chips of
        every face, in order."""
        return await asyncio.to_thread(align_all, faces, DETECTOR_TEMPLATES[self.settings.detector])

    async def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(F, 150, 150, 3) uint8 chips -> (F, 128) float32 embeddings, in one Triton call."""
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        outputs = await self.triton.infer(
            self.settings.embedder_model,
            {EMBEDDER_INPUT: chips},
            [EMBEDDER_OUTPUT],
            timeout_s=self.settings.triton_timeout_s,
        )
        return np.asarray(outputs[EMBEDDER_OUTPUT], np.float32)

    async def embed(self, faces: Sequence[tuple[Image.Image | np.ndarray, DetectedFaces]]) -> np.ndarray:
        """(image, faces in that image's pixels) pairs -> (F, 128) float32 embeddings of every face, in
        order."""
        return await self.embed_chips(await self.align(faces))

    async def meshes(
        self,
        images: Sequence[np.ndarray],
        faces: Sequence[DetectedFaces | None],
        reductions: Sequence[int] | None = None,
    ) -> list[np.ndarray | None]:
        """Per frame the face mesh (468,3) of its first face, or None (no face, or a mesh whose face score is
        below ``mesh_min_face_score``); every crop in one Triton call. ``faces`` and the meshes are in the
        full frames' pixels; ``reductions[i]``: ``images[i]`` shows frame i at 1/reduction of its size."""
        crops, matrices, rows = await asyncio.to_thread(mesh_crops, images, faces, reductions)
        out: list[np.ndarray | None] = [None] * len(faces)
        if not rows:
            return out
        outputs = await self.triton.infer(
            self.settings.mesh_model,
            {MESH_INPUT: crops},
            list(MESH_OUTPUTS),
            timeout_s=self.settings.triton_timeout_s,
        )
        mesh, score = np.asarray(outputs["MESH"]), np.asarray(outputs["FACE_SCORE"]).reshape(-1)
        for j, i in enumerate(rows):
            if score[j] >= self.settings.mesh_min_face_score:
                out[i] = mesh_to_image(mesh[j], matrices[j])
        return out

    def check_quality(self, faces: DetectedFaces, chips: np.ndarray, what: str) -> None:
        """``InvalidArgument`` when a face is too small or too blurry to enroll."""
        for quality in assess_quality(
            faces.landmarks,
            chips,
            min_inter_ocular=self.settings.min_inter_ocular_px,
            min_blur=self.settings.min_sharpness,
        ):
            if quality.too_small:
                raise InvalidArgument(
                    f"the face in {what} is too small: its eyes are {quality.inter_ocular:.0f} pixels apart, "
                    f"at least {self.settings.min_inter_ocular_px:.0f} are needed"
                )
            if quality.too_blurry:
                raise InvalidArgument(
                    f"the face in {what} is too blurry: sharpness {quality.blur:.1f}, "
                    f"at least {self.settings.min_sharpness:.1f} is needed"
                )


def decode_for_faces(
    data: bytes, limits: ImageLimits, detect_side: int, min_face: float
) -> tuple[Image.Image, int, tuple[np.ndarray, float, float]]:
    """The photo as the faces pipeline uses it (one thread hop for all): the decoded RGB image (reduced as
    :func:`faces_min_size` allows), that reduction, and the detector's copy with the scales that map faces
    found in it back to the full photo's pixels (for :func:`rescale`). ``InvalidImage`` on bad bytes."""
    decoded = decode_image_reduced(data, limits, faces_min_size(detect_side, min_face))
    k = decoded.reduction
    small, sx, sy = downsize(decoded.picture, detect_side, decoded.original_size)
    return decoded.picture, k, (small, sx / k, sy / k)


def mesh_crops(
    images: Sequence[np.ndarray],
    faces: Sequence[DetectedFaces | None],
    reductions: Sequence[int] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """The face mesh crops (N,192,192,3) of the frames that have a face, their crop matrices and frame
    indices (:mod:`fovea.faces.recognition.core.mesh`). ``faces`` are in the full frames' pixels, ``images[i]`` shows
    frame i at 1/``reductions[i]`` of its size (default 1); the matrices map crop pixels to full pixels."""
    crops, matrices, rows = [], [], []
    k = list(reductions) if reductions is not None else [1] * len(images)
    for i, (image, face, r) in enumerate(zip(images, faces, k, strict=True)):
        if face is None or len(face) == 0:
            continue
        shown = reduce(face, r)
        try:
            m = crop_matrix(shown.boxes[0], shown.landmarks[0])
        except ValueError:
            continue
        crops.append(crop_face(image, m))
        matrices.append(unreduce_matrix(m, r))
        rows.append(i)
    stacked = np.stack(crops) if crops else np.zeros((0, 192, 192, 3), np.uint8)
    return stacked, matrices, rows


def align_all(
    faces: Sequence[tuple[Image.Image | np.ndarray, DetectedFaces]], template: np.ndarray = MTCNN_TEMPLATE
) -> np.ndarray:
    """Every face's chip, aligned on ``template`` (the landmarks' detector's: :data:`DETECTOR_TEMPLATES`)."""
    chips = [align_faces(image, f.landmarks, template=template) for image, f in faces if len(f)]
    return np.concatenate(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)


__all__ = [
    "CHIP_FACE_PX",
    "DETECTOR_TEMPLATES",
    "FacePipeline",
    "FacesTriton",
    "Photo",
    "decode_for_faces",
    "detection_side",
    "downsize",
    "faces_min_size",
]
