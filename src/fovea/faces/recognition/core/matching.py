"""Exact nearest-identity search over one gallery's templates, held as an in-memory float32 matrix.

A gallery is a set of templates (one embedding each), each belonging to one identity. The distance between a
query and an identity is the smallest L2 distance to any of that identity's templates. :meth:`GalleryIndex.search`
returns the k nearest identities exactly - the same identities and distances as the float64 brute force
:func:`reference_search` - while doing the bulk of the work as one float32 matrix product:

1. approximate squared distances for every row: ``|e|^2 - 2 e.q + |q|^2`` in float32 (one GEMM);
2. the m rows with the smallest approximations become candidates; their distances are recomputed exactly
   (float64, ``|e - q|``) and reduced to identities;
3. a row outside the candidates has an approximation >= the largest candidate approximation A, so its exact
   squared distance is >= A - tol, where tol bounds the float32 error (see ``_tolerance``). When A - tol is
   above the k-th identity's exact squared distance no outside row can change the answer; otherwise m grows.

Rows are kept dense: removing a template moves the last row into its place. The index takes a lock around
every read and write, so searches may run in worker threads while changes are applied.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# |fl(e.q) - e.q| <= d * u * |e||q| with u = 2**-24 for float32; 2|e||q| <= |e|^2 + |q|^2, so the error of
# the approximation is below (2d + 3) u (max|e|^2 + |q|^2) ~ 1.5e-5 (...) for d = 128: 1e-4 leaves a margin.
_RELATIVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Match:
    identity_id: str
    distance: float


class GalleryIndex:
    """Templates of one gallery: add, remove (by template or identity), distances, exact k-NN identities."""

    def __init__(self, dim: int = 128, capacity: int = 64) -> None:
        if dim <= 0 or capacity <= 0:
            raise ValueError(f"dim and capacity must be > 0, got {dim}, {capacity}")
        self.dim = dim
        self._lock = threading.RLock()
        self._emb = np.zeros((capacity, dim), np.float32)
        self._sq = np.zeros(capacity, np.float32)
        self._owner = np.zeros(capacity, np.int64)  # identity code of each row
        self._tid: list[str] = []  # template id of each row
        self._row: dict[str, int] = {}  # template id -> row
        self._code: dict[str, int] = {}  # identity id -> code
        self._name: list[str | None] = []  # code -> identity id (None = free)
        self._free: list[int] = []
        self._templates: dict[str, set[str]] = {}  # identity id -> template ids

    # ------------------------------------------------------------------------------------------ size
    def __len__(self) -> int:
        return len(self._tid)

    @property
    def identity_count(self) -> int:
        return len(self._templates)

    def __contains__(self, identity_id: object) -> bool:
        return identity_id in self._templates

    def templates_of(self, identity_id: str) -> list[str]:
        with self._lock:
            return sorted(self._templates.get(identity_id, ()))

    def has_template(self, template_id: str) -> bool:
        return template_id in self._row

    # ------------------------------------------------------------------------------------------ writes
    def add(self, template_id: str, identity_id: str, embedding: np.ndarray) -> bool:
        """Add one template; False (and no change) when ``template_id`` is already present."""
        return self.add_many([(template_id, identity_id, embedding)]) == 1

    def add_many(self, items: Iterable[tuple[str, str, np.ndarray]]) -> int:
        """Add (template id, identity id, embedding) triples, skipping template ids already present (so
        replaying a change changes nothing); returns how many were new. Rows are written in one block."""
        with self._lock:
            tids: list[str] = []
            owners: list[str] = []
            vectors: list[np.ndarray] = []
            seen: set[str] = set()
            for template_id, identity_id, embedding in items:
                if template_id in self._row or template_id in seen:
                    continue
                seen.add(template_id)
                tids.append(template_id)
                owners.append(identity_id)
                vectors.append(np.asarray(embedding, dtype=np.float32).reshape(-1))
            if not tids:
                return 0
            if any(v.shape != (self.dim,) for v in vectors):
                bad = next(v.shape for v in vectors if v.shape != (self.dim,))
                raise ValueError(f"expected embeddings of length {self.dim}, got shape {bad}")
            block = np.stack(vectors)
            if not np.all(np.isfinite(block)):
                raise ValueError("embeddings must be finite")
            n, end = len(self._tid), len(self._tid) + len(tids)
            if end > len(self._emb):
                self._grow(max(end, 2 * len(self._emb)))
            wide = block.astype(np.float64)
            self._emb[n:end] = block
            self._sq[n:end] = np.einsum("ij,ij->i", wide, wide)
            self._owner[n:end] = [self._code_for(i) for i in owners]
            self._tid.extend(tids)
            for row, (template_id, identity_id) in enumerate(zip(tids, owners, strict=True), start=n):
                self._row[template_id] = row
                self._templates[identity_id].add(template_id)
            return len(tids)

    def _code_for(self, identity_id: str) -> int:
        """The identity's code, allocated (reusing a freed one) when it is new."""
        code = self._code.get(identity_id)
        if code is None:
            code = self._free.pop() if self._free else len(self._name)
            if code == len(self._name):
                self._name.append(identity_id)
            else:
                self._name[code] = identity_id
            self._code[identity_id] = code
            self._templates[identity_id] = set()
        return code

    def remove_template(self, template_id: str) -> bool:
        """Remove one template; False when it is not present. An identity left with none disappears."""
        with self._lock:
            row = self._row.pop(template_id, None)
            if row is None:
                return False
            code = int(self._owner[row])
            identity_id = str(self._name[code])
            last = len(self._tid) - 1
            if row != last:  # move the last row into the hole
                self._emb[row] = self._emb[last]
                self._sq[row] = self._sq[last]
                self._owner[row] = self._owner[last]
                moved = self._tid[last]
                self._tid[row] = moved
                self._row[moved] = row
            self._tid.pop()
            owned = self._templates[identity_id]
            owned.discard(template_id)
            if not owned:
                del self._templates[identity_id]
                del self._code[identity_id]
                self._name[code] = None
                self._free.append(code)
            return True

    def remove_identity(self, identity_id: str) -> int:
        """Remove every template of an identity; returns how many there were."""
        with self._lock:
            templates = list(self._templates.get(identity_id, ()))
            for template_id in templates:
                self.remove_template(template_id)
            return len(templates)

    def _grow(self, capacity: int) -> None:
        for name in ("_emb", "_sq", "_owner"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    # ------------------------------------------------------------------------------------------ reads
    def identity_distances(self, identity_id: str, queries: np.ndarray) -> np.ndarray:
        """(Q, dim) queries -> (Q,) float64 smallest L2 distance to the identity's templates.

        Raises ``KeyError`` when the identity has no template in the index.
        """
        q = _queries(queries, self.dim)
        with self._lock:
            rows = [self._row[t] for t in self._templates[identity_id]]
            templates = self._emb[rows].astype(np.float64)
        d = np.linalg.norm(q[:, None, :] - templates[None, :, :], axis=2)
        return d.min(axis=1)

    def search(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        """(Q, dim) queries -> for each, the k nearest identities (fewer when the gallery has fewer),
        nearest first, ties by identity id. Exact (see the module docstring)."""
        q = _queries(queries, self.dim)
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        with self._lock:
            n = len(self._tid)
            if n == 0 or len(q) == 0:
                return [[] for _ in range(len(q))]
            emb, sq, owner = self._emb[:n], self._sq[:n], self._owner[:n]
            q32 = q.astype(np.float32)
            q_sq = np.einsum("ij,ij->i", q, q)
            approx = sq[:, None] - 2.0 * (emb @ q32.T) + q_sq.astype(np.float32)[None, :]  # (n, Q)
            tolerance = _RELATIVE_TOLERANCE * (float(sq.max()) + q_sq)
            return [
                self._exact_top_k(emb, owner, approx[:, j], q[j], k, float(tolerance[j]))
                for j in range(len(q))
            ]

    def _exact_top_k(
        self,
        emb: np.ndarray,
        owner: np.ndarray,
        approx: np.ndarray,
        query: np.ndarray,
        k: int,
        tolerance: float,
    ) -> list[Match]:
        n = len(approx)
        k = min(k, len(self._templates))
        m = min(n, 4 * k + 32)
        while True:
            rows = np.argpartition(approx, m - 1)[:m] if m < n else np.arange(n)
            exact = np.sum((emb[rows].astype(np.float64) - query) ** 2, axis=1)
            best: dict[int, float] = {}
            for code, d2 in zip(owner[rows].tolist(), exact.tolist(), strict=True):
                if d2 < best.get(code, np.inf):
                    best[code] = d2
            ranked = sorted(best.items(), key=lambda item: (item[1], self._name[item[0]]))[:k]
            if m == n or (len(ranked) == k and float(approx[rows].max()) - tolerance > ranked[-1][1]):
                return [Match(str(self._name[c]), float(np.sqrt(d2))) for c, d2 in ranked]
            m = min(n, 4 * m)


def _queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float64)
    if q.ndim == 1:
        q = q[None]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"expected queries of shape (Q, {dim}), got {np.shape(queries)}")
    if not np.all(np.isfinite(q)):
        raise ValueError("queries must be finite")
    return q


def reference_search(
    embeddings: np.ndarray, identities: list[str], queries: np.ndarray, k: int
) -> list[list[Match]]:
    """The obviously-correct brute force: float64 distance to every template, min per identity, sort.

    embeddings (n, dim), identities: the identity id of each row; queries (Q, dim).
    """
    e = np.asarray(embeddings, dtype=np.float64)
    out = []
    for q in np.asarray(queries, dtype=np.float64).reshape(-1, e.shape[1]):
        d = np.sqrt(((e - q) ** 2).sum(axis=1))
        best: dict[str, float] = {}
        for identity, dist in zip(identities, d.tolist(), strict=True):
            best[identity] = min(dist, best.get(identity, np.inf))
        ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))[:k]
        out.append([Match(i, float(v)) for i, v in ranked])
    return out


def is_match(distance: float, threshold: float) -> bool:
    """Same person when the distance is strictly below the threshold."""
    return distance < threshold


__all__ = ["GalleryIndex", "Match", "is_match", "reference_search"]
