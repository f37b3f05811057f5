"""``fovea faces eval DIR``: verification accuracy of the deployed faces service on a folder of photos.

The folder holds one sub-folder per identity with its photos (``DIR/<identity>/<photo>.jpg``). Through the
gateway, each photo is enrolled as its own identity in a temporary gallery (its largest face), then each photo
is identified against that gallery with ``top_k`` = every photo, which gives the distance of every pair from
the real service. Galleries hold at most ``chunk`` photos (the service's top_k limit); the temporary galleries
are deleted afterwards. The metrics come from ``core.evaluation`` (scikit-learn's ROC functions).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fovea.client import FoveaClient, FoveaClientError
from fovea.faces.tools.core.accuracy import RocReport, pair_distances, rates_at, roc_report

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def list_photos(folder: Path) -> list[tuple[str, Path]]:
    """(identity, photo) for every photo of ``folder/<identity>/``, sorted."""
    photos = [
        (sub.name, photo)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir())
        for photo in sorted(sub.iterdir())
        if photo.suffix.lower() in PHOTO_SUFFIXES
    ]
    if len({identity for identity, _ in photos}) < 2:
        raise ValueError(
            f"{folder} needs at least two identity folders with photos (DIR/<identity>/<photo>.jpg)"
        )
    return photos


@dataclass
class EvalReport:
    folder: str
    identities: int
    photos: int
    skipped: dict[str, str]  # photo -> why (no face, several faces...)
    threshold: float  # the service's default gallery threshold
    tar_at_threshold: float
    far_at_threshold: float
    roc: RocReport
    target_far: float
    embedding_model: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        points = {f"{p.far:g}": p for p in self.roc.operating_points}
        target = points[f"{self.target_far:g}"]
        return {
            "folder": self.folder,
            "embedding_model": self.embedding_model,
            "identities": self.identities,
            "photos": self.photos,
            "skipped": self.skipped,
            "genuine_pairs": self.roc.genuine_pairs,
            "impostor_pairs": self.roc.impostor_pairs,
            "roc_auc": round(self.roc.roc_auc, 6),
            "eer": round(self.roc.eer, 6),
            "eer_threshold": round(self.roc.eer_threshold, 4),
            "tar_at_far": {k: round(p.tar, 6) for k, p in points.items()},
            "target_far": self.target_far,
            "threshold_for_target_far": round(target.threshold, 4),
            "far_resolution": self.roc.far_resolution,
            "default_threshold": self.threshold,
            "tar_at_default_threshold": round(self.tar_at_threshold, 6),
            "far_at_default_threshold": round(self.far_at_threshold, 6),
            "notes": self.notes,
        }

    def as_text(self) -> str:
        d = self.as_dict()
        lines = [
            f"{self.folder}: {self.identities} identities, {self.photos} photos "
            f"({len(self.skipped)} skipped), {d['genuine_pairs']} genuine / {d['impostor_pairs']} impostor pairs",
            f"  ROC-AUC {d['roc_auc']:.4f}   EER {d['eer']:.4f} (threshold {d['eer_threshold']:.3f})",
            *(f"  TAR @ FAR {k}: {v:.4f}" for k, v in d["tar_at_far"].items()),
            f"  threshold for FAR {self.target_far:g}: {d['threshold_for_target_far']:.4f}",
            f"  at the default threshold {self.threshold:.2f}: TAR {self.tar_at_threshold:.4f}, "
            f"FAR {self.far_at_threshold:.4f}",
            *(f"  note: {n}" for n in self.notes),
            *(f"  skipped {photo}: {why}" for photo, why in self.skipped.items()),
        ]
        return "\n".join(lines)


def evaluate_folder(
    client: FoveaClient,
    folder: Path,
    *,
    fars: Sequence[float] = (1e-2, 1e-3),
    target_far: float = 1e-3,
    chunk: int = 1000,
    workers: int = 4,
) -> EvalReport:
    photos = list_photos(folder)
    data = [p.read_bytes() for _, p in photos]
    run = uuid.uuid4().hex[:8]
    galleries: list[str] = []
    skipped: dict[str, str] = {}
    try:
        # 1. every photo enrolled as its own identity "<index>", `chunk` photos per gallery
        members: dict[int, str] = {}  # photo index -> its gallery
        for start in range(0, len(photos), chunk):
            gallery = f"eval-{run}-{start // chunk}"
            info = client.create_gallery(gallery, metadata={"purpose": "fovea faces eval"})
            galleries.append(gallery)
            for i in range(start, min(start + chunk, len(photos))):
                members[i] = gallery

        def enroll(i: int) -> str | None:
            try:
                client.enroll(members[i], str(i), [data[i]], face_index=0)
            except FoveaClientError as exc:
                if exc.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
                    return exc.message
                raise
            return None

        with ThreadPoolExecutor(workers) as pool:
            for i, why in enumerate(pool.map(enroll, range(len(photos)))):
                if why is not None:
                    skipped[str(photos[i][1].relative_to(folder))] = why
        kept = [i for i in range(len(photos)) if str(photos[i][1].relative_to(folder)) not in skipped]

        # 2. each kept photo against every gallery: the distances to all enrolled photos
        distances = np.full((len(photos), len(photos)), np.nan)

        def identify(i: int) -> None:
            for gallery in galleries:
                found = client.identify(gallery, data[i], top_k=chunk)
                if found:  # faces come largest first, as enrolled
                    for c in found[0].candidates:
                        distances[i, int(c.identity)] = c.distance

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(identify, kept))
    finally:
        for gallery in galleries:
            with contextlib.suppress(FoveaClientError):
                client.delete_gallery(gallery)
    sub = distances[np.ix_(kept, kept)]
    if np.isnan(sub).any():
        raise RuntimeError(
            "the service did not return every pair's distance (a photo's largest face differs?)"
        )
    labels = [photos[i][0] for i in kept]
    genuine, impostor = pair_distances(sub, labels)
    all_fars = tuple(dict.fromkeys([*fars, target_far]))
    roc = roc_report(genuine, impostor, all_fars)
    tar, far = rates_at(genuine, impostor, info.threshold)
    notes = [
        f"FAR {f:g} is below the resolution of {roc.impostor_pairs} impostor pairs (1/{roc.impostor_pairs}): "
        "its TAR is the TAR at FAR 0"
        for f in all_fars
        if f < roc.far_resolution
    ]
    return EvalReport(
        folder=str(folder),
        identities=len(set(labels)),
        photos=len(photos),
        skipped=skipped,
        threshold=info.threshold,
        tar_at_threshold=tar,
        far_at_threshold=far,
        roc=roc,
        target_far=target_far,
        embedding_model=info.embedding_model,
        notes=notes,
    )


__all__ = ["EvalReport", "evaluate_folder", "list_photos"]
