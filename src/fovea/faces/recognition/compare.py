"""Photos against a claimed identity: the steps ``Verify`` and ``VerifyAccess`` share.

Check the ids, take the gallery as this replica holds it (refusing one of another embedding model), find the
faces in every photo, embed the largest face of each in one Triton call, and measure its distance to the
identity's templates. Whether the identity is enrolled is looked at last, after the photos were processed,
so a caller who may not learn who is enrolled cannot tell it from the time an answer takes either.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fovea.common.errors import InvalidArgument
from fovea.contracts.face_detector import DetectedFaces
from fovea.faces.recognition.core.records import check_gallery_id, check_identity_id
from fovea.faces.recognition.pipeline import FacePipeline, Photo
from fovea.faces.recognition.store import GalleryInfo
from fovea.faces.recognition.sync import GallerySync


@dataclass(frozen=True)
class ComparedPhoto:
    photo: Photo | None
    """The decoded photo; None when the bytes are not a usable image (see ``problem``)."""
    problem: str | None
    """Why the photo is unusable (an ``InvalidArgument`` message: bad bytes, extreme aspect ratio)."""
    face: DetectedFaces | None
    """The photo's largest face (one row); None when it has none."""
    distance: float | None
    """L2 distance of that face to the identity's nearest template; None without a face, ``inf`` when the
    identity is not enrolled."""

    @property
    def image(self) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB at 1/``reduction`` of the photo's size (made on first use); None when the
        bytes are not a usable image."""
        return None if self.photo is None else self.photo.image

    @property
    def reduction(self) -> int:
        """``image`` shows the photo at 1/reduction of its size; ``face`` is in the full photo's pixels."""
        return 1 if self.photo is None else self.photo.reduction


@dataclass(frozen=True)
class Comparison:
    gallery: GalleryInfo
    photos: list[ComparedPhoto]
    embeddings: np.ndarray
    """(F, 128) float32: the largest face of each photo that has one, in photo order."""
    enrolled: bool
    """The identity has templates in this replica's index (it may have been deleted meanwhile)."""


class Comparer:
    def __init__(self, pipeline: FacePipeline, sync: GallerySync) -> None:
        self.pipeline = pipeline
        self.sync = sync

    async def compare(
        self, gallery_id: str, identity_id: str, photos: Sequence[bytes], pixels: bool = False
    ) -> Comparison:
        """``InvalidArgument`` for bad ids, ``NotFound`` for an unknown gallery, ``FailedPrecondition`` for
        a gallery of another embedding model, ``UpstreamUnavailable`` for Triton or Redis; a bad photo is
        not an error here but a ``problem`` of that photo.

        ``pixels``: the caller reads every photo's pixels (``ComparedPhoto.image``: a door's checks); they are
        made once the chips are cut, in a worker thread, and the decoded Pillow images let go, so that a
        burst is held once and not twice."""
        try:
            check_gallery_id(gallery_id)
            check_identity_id(identity_id)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        cached = self.sync.gallery(gallery_id)
        self.pipeline.check_comparable(cached.info)
        found = await asyncio.gather(*(self._photo(p) for p in photos))
        largest = [p.faces.take([0]) if isinstance(p, Photo) and len(p.faces) else None for p in found]
        embeddings = await self.pipeline.embed(
            [
                p.source(f)
                for p, f in zip(found, largest, strict=True)
                if isinstance(p, Photo) and f is not None
            ]
        )
        if pixels:
            found = await asyncio.to_thread(_as_arrays, found)
        enrolled = identity_id in cached.index
        distances: list[float] = [math.inf] * len(embeddings)
        if enrolled:
            try:
                distances = cached.index.identity_distances(identity_id, embeddings).tolist()
            except KeyError:  # deleted while the photos were processed
                enrolled = False
        by_face = iter(distances)
        compared = []
        for photo, face in zip(found, largest, strict=True):
            if isinstance(photo, str):
                compared.append(ComparedPhoto(None, photo, None, None))
            else:
                distance = next(by_face) if face is not None else None
                compared.append(ComparedPhoto(photo, None, face, distance))
        return Comparison(cached.info, compared, embeddings, enrolled)

    async def _photo(self, data: bytes) -> Photo | str:
        """The photo's faces, or why it is unusable; dependency failures propagate."""
        try:
            return await self.pipeline.find_faces(data)
        except InvalidArgument as exc:
            return str(exc)


def _as_arrays(found: Sequence[Photo | str]) -> list[Photo | str]:
    """Each photo with its pixels as an array in place of the decoded Pillow image."""
    return [p if isinstance(p, str) else Photo(p.image, p.faces, p.reduction) for p in found]


__all__ = ["ComparedPhoto", "Comparer", "Comparison"]
