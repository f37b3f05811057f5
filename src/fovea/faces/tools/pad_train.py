"""``fovea faces pad-train NAME DIR``: a passive presentation-attack check trained on a site's own bursts.

DIR has the layout ``pad-eval`` reads (``bona_fide/<seq>/*.jpg``, ``attack/[<species>/]<seq>/*.jpg``).
Each sequence's frames (at most ``frames_per_burst``, sampled evenly, fewer when the set would pass the
training job's image limit) go through the face detector in this process; the largest face's face and
context cuts (:mod:`fovea.faces.tools.pad_passive`) are sent through the gateway as one ``TrainClassifier``
job with the ``pad`` recipe, each burst one group (so the classify service splits by burst, never frames of
one burst on both sides). The result is ``classifier_<NAME>``, with versions and rollback like any trained
classifier; a door names it ``passive_check: trained:NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fovea.client import FoveaClient
from fovea.contracts.pad_classifier import ATTACK, BONA_FIDE, RECIPE
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_eval import _even, find_sequences
from fovea.faces.tools.pad_passive import BurstCrops, burst_crops, training_images

MAX_IMAGES = 1000  # the classify service's FOVEA_CLASSIFY_MAX_TRAINING_IMAGES default


@dataclass(frozen=True)
class PadMaterial:
    """What a pad-train job is sent: (label, JPEG) pairs, their groups, and what was left out."""

    images: list[tuple[str, bytes]]
    groups: list[str]
    bursts: dict[str, int]  # per kind
    no_face: list[str]  # sequences without any face (failures to acquire: not trained on)


def collect(
    root: Path, faces: InProcessFaces, frames_per_burst: int = 8, max_images: int = MAX_IMAGES
) -> PadMaterial:
    """The crops of every sequence under ``root`` (``ValueError`` for a bad layout)."""
    bona, attacks = find_sequences(root)
    sequences = [*bona, *(s for v in attacks.values() for s in v)]
    per_burst = max(1, min(frames_per_burst, max_images // (2 * len(sequences))))
    bursts: dict[str, tuple[str, BurstCrops]] = {}
    no_face = []
    for seq in sequences:
        found = burst_crops(faces, _even(seq.frames, per_burst))
        if not len(found.cuts):
            no_face.append(seq.name)
            continue
        bursts[seq.name] = (BONA_FIDE if seq.species == BONA_FIDE else ATTACK, found)
    images, groups = training_images(bursts)
    counts = {k: sum(kind == k for kind, _ in bursts.values()) for k in (BONA_FIDE, ATTACK)}
    return PadMaterial(images, groups, counts, no_face)


def train(
    client: FoveaClient,
    name: str,
    material: PadMaterial,
    *,
    seed: int = 0,
    epochs: int = 0,
    wait: bool = False,
    on_update: Callable[[Any], None] | None = None,
) -> Any:
    """Queue the ``pad`` job (and follow it to its end with ``wait``); returns the client's TrainingJob;
    client errors propagate."""
    job = client.train_classifier(
        name, material.images, groups=material.groups, recipe=RECIPE, seed=seed, epochs=epochs
    )
    if wait:
        for update in client.watch_training_job(job.job_id):
            job = update
            if on_update is not None:
                on_update(job)
    return job


__all__ = ["PadMaterial", "collect", "train"]
