"""The passive check a site trains on its own captures, offline: the crops ``fovea faces pad-train`` sends
(through the gateway, to the classify service's ``pad`` recipe) and the in-process scorer ``fovea faces
pad-eval --passive NAME`` runs (the trained classifier's active version from the trained repository, in
onnxruntime, exactly as Triton serves it), and the door's decision in process.

Crops are cut as the door cuts them (:func:`fovea.faces.access.core.passive.crops`: face and context cut
round the largest face's box, ``CUT_SIZE`` px); training gets the cuts as JPEG (quality 95: what the
camera's own JPEG already left of moire survives it), the door and this scorer their centre squares.

The ``door`` row in process (:func:`in_process_door`) is the decision of a door with ``pad: require``,
``pad_undetermined: passive``, ``passive: require`` and the trained check: a burst with no usable face is a
*failure to acquire* (counted apart, as ISO/IEC 30107-3 does), faces that are not one person (``mixed_faces``:
embeddings as far apart as the match threshold) and a *flat* geometry answer are attacks, any other (live or
undetermined) is what the passive check says.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fovea.contracts.pad_classifier import (
    ATTACK,
    BONA_FIDE,
    CUT_SIZE,
    burst_logit,
    burst_score,
    crop_logits,
    label,
)
from fovea.contracts.trained_classifier import INDEX_FILE, model_name
from fovea.faces.access.core.pad import PadResult, PadVerdict
from fovea.faces.access.core.passive import centre, crops
from fovea.faces.recognition.core.faces import reduce
from fovea.faces.recognition.pipeline import Photo
from fovea.faces.tools.inprocess import InProcessFaces, run_model
from fovea.serving.base import read_config
from fovea.serving.triton_adapter import Served, load_served

FTA = "failure_to_acquire"  # the door row's third outcome: no usable face in the burst


@dataclass(frozen=True)
class BurstCrops:
    """One burst's cuts: (N, CUT_SIZE, CUT_SIZE, 3) uint8, their kinds (face / context), frame indices,
    and the frames' count."""

    cuts: np.ndarray
    kinds: list[str]
    frames: np.ndarray
    frame_count: int
    landmarks: list[np.ndarray | None]
    embeddings: np.ndarray | None = None  # (faces, 128) with ``embed``: the door's mixed-faces check


def burst_crops(
    faces: InProcessFaces, paths: Sequence[Path], embed: bool = False, photos: Sequence[Photo] | None = None
) -> BurstCrops:
    """Detect the largest face of each frame (the service's own code) and cut its crops; with ``embed``
    also each face's embedding. ``photos``: the frames already through ``faces.find_faces``."""
    images: list[np.ndarray] = []
    boxes: list[np.ndarray | None] = []
    landmarks: list[np.ndarray | None] = []
    embeddings: list[np.ndarray] = []
    if photos is None:
        photos = [faces.find_faces(path.read_bytes()) for path in paths]
    for photo in photos:
        images.append(photo.image)
        if len(photo.faces) == 0:
            boxes.append(None)
            landmarks.append(None)
            continue
        face = photo.faces.take([0])
        boxes.append(reduce(face, photo.reduction).boxes[0])
        landmarks.append(face.landmarks[0])
        if embed:
            embeddings.append(faces.embed(photo))
    cuts, kinds, frames = crops(images, boxes, CUT_SIZE)
    found = np.asarray(embeddings, np.float32).reshape(-1, 128) if embed else None
    return BurstCrops(cuts, kinds, frames, len(paths), landmarks, found)


def jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def training_images(bursts: dict[str, tuple[str, BurstCrops]]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """``{group: (bona_fide | attack, crops)}`` -> the (label, JPEG) pairs and groups a ``pad`` training job
    takes (``fovea.contracts.pad_classifier.label``)."""
    images: list[tuple[str, bytes]] = []
    groups: list[str] = []
    for group, (kind, burst) in bursts.items():
        if kind not in (BONA_FIDE, ATTACK):
            raise ValueError(f"unknown kind {kind!r}")
        for cut, crop_kind in zip(burst.cuts, burst.kinds, strict=True):
            images.append((label(kind, crop_kind), jpeg(cut)))
            groups.append(group)
    return images, groups


class PassiveScorer:
    """A trained passive check in this process: ``classifier_<name>``'s active version (or ``version``)
    from the trained repository, loaded as Triton loads it."""

    def __init__(self, repository: Path, name: str, version: int = 0) -> None:
        folder = Path(repository) / model_name(name)
        try:
            index = json.loads((folder / INDEX_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"no trained classifier {name!r} in {repository} (train it with `fovea faces pad-train`): {exc}"
            ) from exc
        self.name = name
        self.version = int(version or index["active"])
        self.model: Served = load_served(
            "fovea.serving.trained_classifier",
            folder / str(self.version),
            read_config(folder / "config.pbtxt"),
        )[1]

    def score(self, burst: BurstCrops) -> float:
        """The burst score in [0, 1] (bona fide >= 0.5; nan when no frame had a face)."""
        if not len(burst.cuts):
            return float("nan")
        batch = np.stack([centre(c) for c in burst.cuts])
        probabilities = run_model(self.model, {"IMAGE": batch})["PROBABILITIES"]
        return burst_score(burst_logit(crop_logits(probabilities, burst.kinds), burst.frames))


def in_process_door(
    pad: PadResult,
    passive_score: float,
    faces: int,
    threshold: float = 0.5,
    *,
    spread: float = 0.0,
    match_threshold: float = float("inf"),
) -> str:
    """The in-process door's outcome for one burst: ``FTA`` (no usable face), ``attack`` (the faces are not
    one person: their embeddings ``spread`` at least ``match_threshold`` apart, as the door's
    ``mixed_faces``; flat; or the passive check below ``threshold``) or ``bona_fide``."""
    if faces == 0 or not np.isfinite(passive_score):
        return FTA
    if spread >= match_threshold or pad.verdict is PadVerdict.ATTACK:
        return ATTACK
    return BONA_FIDE if passive_score >= threshold else ATTACK


__all__ = [
    "FTA",
    "BurstCrops",
    "PassiveScorer",
    "burst_crops",
    "in_process_door",
    "jpeg",
    "training_images",
]
