"""The gallery index against the float64 brute force, through adds, removals and near ties."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.faces.recognition.core.matching import GalleryIndex, Match, is_match, reference_search


class Mirror:
    """The index and a plain dict of what it should hold, changed together."""

    def __init__(self, dim: int = 16) -> None:
        self.index = GalleryIndex(dim, capacity=4)  # small capacity: growth is exercised
        self.templates: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, template_id: str, identity_id: str, vector: np.ndarray) -> None:
        self.index.add(template_id, identity_id, vector)
        self.templates.setdefault(template_id, (identity_id, vector.astype(np.float32)))

    def remove_template(self, template_id: str) -> bool:
        self.templates.pop(template_id, None)
        return self.index.remove_template(template_id)

    def remove_identity(self, identity_id: str) -> int:
        for t in [t for t, (i, _) in self.templates.items() if i == identity_id]:
            del self.templates[t]
        return self.index.remove_identity(identity_id)

    def reference(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        owners = [i for i, _ in self.templates.values()]
        rows = np.array([v for _, v in self.templates.values()])
        return reference_search(rows, owners, queries, k)


def build(rng: np.random.Generator, identities: int, per_identity: int, dim: int = 16) -> Mirror:
    mirror = Mirror(dim)
    for i in range(identities):
        for t in range(per_identity):
            mirror.add(f"t{i}-{t}", f"id{i:03d}", rng.normal(size=dim))
    return mirror


def assert_same(ours: list[list[Match]], ref: list[list[Match]]) -> None:
    assert [[m.identity_id for m in q] for q in ours] == [[m.identity_id for m in q] for q in ref]
    np.testing.assert_allclose(
        [m.distance for q in ours for m in q], [m.distance for q in ref for m in q], rtol=1e-12
    )


@pytest.mark.parametrize(
    ("identities", "per_identity", "k"), [(1, 1, 1), (50, 1, 5), (40, 3, 10), (7, 2, 50)]
)
def test_search_equals_brute_force(identities: int, per_identity: int, k: int) -> None:
    rng = np.random.default_rng(identities * 100 + k)
    mirror = build(rng, identities, per_identity)
    queries = rng.normal(size=(6, 16))
    assert_same(mirror.index.search(queries, k), mirror.reference(queries, k))
    assert all(len(q) == min(k, identities) for q in mirror.index.search(queries, k))


def test_search_stays_exact_after_removals() -> None:
    rng = np.random.default_rng(1)
    mirror = build(rng, 30, 3)
    index = mirror.index
    assert mirror.remove_template("t3-0") and not mirror.remove_template("t3-0")
    assert mirror.remove_identity("id005") == 3 and mirror.remove_identity("id005") == 0
    for t in range(3):  # the last template of id007 takes the identity with it
        mirror.remove_template(f"t7-{t}")
    assert "id007" not in index and "id005" not in index and index.identity_count == 28
    assert len(index) == 90 - 1 - 3 - 3
    mirror.add("new", "fresh", rng.normal(size=16))  # reuses a freed identity code
    assert index.templates_of("fresh") == ["new"]
    queries = rng.normal(size=(4, 16))
    assert_same(index.search(queries, 8), mirror.reference(queries, 8))
    assert_same(index.search(queries, 100), mirror.reference(queries, 100))


def test_near_ties_are_resolved_exactly() -> None:
    """Candidates whose float32 approximations tie or invert are re-ranked in float64."""
    rng = np.random.default_rng(2)
    base = rng.normal(size=128) * 10  # large norms make the float32 error of |e|^2 - 2e.q + |q|^2 large
    index = GalleryIndex(128)
    rows, owners = [], []
    for i in range(200):
        vector = base + rng.normal(size=128) * 1e-3
        index.add(f"t{i}", f"id{i:03d}", vector)
        rows.append(vector.astype(np.float32))
        owners.append(f"id{i:03d}")
    query = base + rng.normal(size=128) * 1e-3
    assert_same(index.search(query, 5), reference_search(np.array(rows), owners, query[None], 5))


def test_identity_distances_take_the_nearest_template() -> None:
    index = GalleryIndex(2)
    index.add("a", "alice", np.array([0.0, 0.0]))
    index.add("b", "alice", np.array([3.0, 4.0]))
    index.add("c", "bob", np.array([1.0, 0.0]))
    # query (3, 0): 3 from a, 4 from b -> 3; bob: 2
    np.testing.assert_allclose(index.identity_distances("alice", np.array([[3.0, 0.0]])), [3.0])
    np.testing.assert_allclose(index.identity_distances("bob", np.array([3.0, 0.0])), [2.0])
    assert index.identity_distances("alice", np.zeros((0, 2))).shape == (0,)
    with pytest.raises(KeyError):
        index.identity_distances("carol", np.zeros((1, 2)))
    assert index.search(np.array([3.0, 0.0]), 2) == [[Match("bob", 2.0), Match("alice", 3.0)]]


def test_add_is_idempotent_and_checks_input() -> None:
    index = GalleryIndex(3)
    assert index.add("t", "alice", np.ones(3)) is True
    assert index.add("t", "alice", np.zeros(3)) is False  # replaying a change changes nothing
    np.testing.assert_allclose(index.identity_distances("alice", np.ones((1, 3))), [0.0])
    with pytest.raises(ValueError):
        index.add("u", "alice", np.ones(4))
    with pytest.raises(ValueError):
        index.add("u", "alice", np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError):
        index.search(np.ones((1, 4)), 1)
    with pytest.raises(ValueError):
        index.search(np.ones(3), 0)


def test_empty_inputs_give_empty_outputs() -> None:
    index = GalleryIndex(4)
    assert index.search(np.ones((2, 4)), 3) == [[], []]
    index.add("t", "x", np.ones(4))
    assert index.search(np.zeros((0, 4)), 3) == []


def test_is_match_is_strict() -> None:
    assert is_match(0.59, 0.6) and not is_match(0.6, 0.6)
