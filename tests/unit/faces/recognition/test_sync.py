"""Replaying the change stream: changes are idempotent and a gallery's old uid never touches its successor,
so changes already visible in a freshly loaded snapshot can be applied again safely."""

from __future__ import annotations

import numpy as np
import pytest

from fovea.common.errors import NotFound, UpstreamUnavailable
from fovea.faces.recognition.core.records import TemplateRecord
from fovea.faces.recognition.store import Change, FaceStore, GalleryInfo
from fovea.faces.recognition.sync import GallerySync


def gallery(uid: str) -> GalleryInfo:
    return GalleryInfo("office", uid, 0.6, "m1", {}, 0)


class TemplatesInMemory(FaceStore):
    """Redis stand-in for the one read ``_apply`` makes: the records of the templates a change names."""

    def __init__(self) -> None:
        super().__init__("redis://127.0.0.1:1/0")  # never connected
        self.records: dict[tuple[str, str], TemplateRecord] = {}  # (gallery uid, template id) -> record

    async def fetch_templates(self, gallery: GalleryInfo, template_ids: list[str]) -> list[TemplateRecord]:
        return [self.records[gallery.uid, t] for t in template_ids if (gallery.uid, t) in self.records]


STORE = TemplatesInMemory()


def add(seq: int, uid: str, identity: str, *template_ids: str) -> Change:
    for t in template_ids:
        STORE.records[uid, t] = TemplateRecord(t, identity, "m1", 0, np.full(128, seq, np.float32))
    return Change(
        f"{seq}-0", seq, "add", "office", uid, identity_id=identity, template_ids=list(template_ids)
    )


@pytest.fixture
async def sync() -> GallerySync:
    STORE.records.clear()
    s = GallerySync(STORE)
    s.in_sync = True
    return s


async def test_changes_apply_and_replay_idempotently(sync: GallerySync) -> None:
    changes = [
        Change("1-0", 1, "put_gallery", "office", "u1", gallery=gallery("u1")),
        add(2, "u1", "alice", "a1", "a2"),
        add(3, "u1", "bob", "b1"),
        Change("4-0", 4, "del_template", "office", "u1", identity_id="alice", template_id="a1"),
        Change("5-0", 5, "del_identity", "office", "u1", identity_id="bob"),
    ]
    for change in changes + changes:  # the second pass is a replay over the state it produced
        await sync._apply(change)
    index = sync.gallery("office").index
    assert index.templates_of("alice") == ["a2"] and "bob" not in index and len(index) == 1


async def test_an_old_uid_never_touches_a_new_gallery(sync: GallerySync) -> None:
    await sync._apply(Change("1-0", 1, "put_gallery", "office", "u1", gallery=gallery("u1")))
    await sync._apply(add(2, "u1", "alice", "a1"))
    await sync._apply(Change("3-0", 3, "del_gallery", "office", "u1"))
    with pytest.raises(NotFound):
        sync.gallery("office")
    await sync._apply(Change("4-0", 4, "put_gallery", "office", "u2", gallery=gallery("u2")))
    await sync._apply(add(5, "u2", "carol", "c1"))
    # Replaying the old gallery's changes (a snapshot taken after #5, then #1-#5 again):
    for change in [add(2, "u1", "alice", "a1"), Change("3-0", 3, "del_gallery", "office", "u1")]:
        await sync._apply(change)
    cached = sync.gallery("office")
    assert (
        cached.info.uid == "u2"
        and cached.index.templates_of("carol") == ["c1"]
        and "alice" not in cached.index
    )


async def test_out_of_sync_refuses_searches(sync: GallerySync) -> None:
    await sync._apply(Change("1-0", 1, "put_gallery", "office", "u1", gallery=gallery("u1")))
    sync._lost("Connection refused")
    with pytest.raises(UpstreamUnavailable, match="not in sync with Redis.*Connection refused"):
        sync.gallery("office")


async def test_an_add_whose_template_was_deleted_since_adds_nothing(sync: GallerySync) -> None:
    await sync._apply(Change("1-0", 1, "put_gallery", "office", "u1", gallery=gallery("u1")))
    change = add(2, "u1", "alice", "a1", "a2")
    del STORE.records["u1", "a1"]  # deleted in Redis before this replica read change #2
    await sync._apply(change)
    assert sync.gallery("office").index.templates_of("alice") == ["a2"]
