"""fovea.classify.trained: version folders, the active version, rollback, pruning, delete."""

from __future__ import annotations

import fcntl
import shutil
import threading
import time
from pathlib import Path

import pytest

from fovea.classify.trained import INDEX_FILE, TrainedRepository
from fovea.common.errors import FailedPrecondition, NotFound
from fovea.contracts.tensors import check_config
from fovea.contracts.trained_classifier import CONTRACT
from fovea.serving.base import read_config


def test_versions_rollback_prune_and_delete(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path, max_versions=3)
    first, version, dropped = repo.add_version("bins", b"onnx-1", ["glass", "paper"], validation_accuracy=0.9)
    assert (first.active, version, dropped) == (0, 1, [])  # written inactive: not served yet
    with pytest.raises(NotFound):
        repo.get("bins")
    assert repo.classifiers() == []
    assert repo.set_active("bins", 1).active == 1
    folder = tmp_path / "classifier_bins"
    assert (folder / "1" / "model.onnx").read_bytes() == b"onnx-1"
    assert (folder / "1" / "labels.txt").read_text() == "glass\npaper\n"
    assert "fovea.serving.trained_classifier" in (folder / "1" / "model.py").read_text()
    check_config(CONTRACT, read_config(folder / "config.pbtxt"))  # the config matches the served contract
    assert 'name: "classifier_bins"' in (folder / "config.pbtxt").read_text()

    second, version, _ = repo.add_version("bins", b"onnx-2", ["glass", "metal", "paper"])
    assert second.active == 1 and version == 2  # the active one stays until the new one is served
    second = repo.set_active("bins", 2)
    assert second.active == 2 and second.version().labels == ["glass", "metal", "paper"]
    assert repo.set_active("bins").active == 1  # rollback: the version before the active one
    with pytest.raises(FailedPrecondition, match="no version before 1"):
        repo.set_active("bins")
    assert repo.set_active("bins", 2).active == 2
    with pytest.raises(NotFound, match="no version 7; versions: 1, 2"):
        repo.set_active("bins", 7)

    repo.add_version("bins", b"onnx-3", ["a", "b"])
    repo.set_active("bins", 3)
    fourth, version, dropped = repo.add_version("bins", b"onnx-4", ["a", "b"])
    assert (fourth.active, version, dropped) == (3, 4, [1])
    repo.set_active("bins", 4)
    assert sorted(p.name for p in folder.iterdir() if p.name.isdigit()) == ["2", "3", "4"]
    assert [c.name for c in repo.classifiers()] == ["bins"]
    assert repo.get("bins").version(3).version == 3

    assert repo.delete("bins") == 3
    assert not folder.exists() and repo.classifiers() == []
    with pytest.raises(NotFound, match="no trained classifier 'bins'"):
        repo.get("bins")
    with pytest.raises(NotFound):
        repo.set_active("bins")
    assert not folder.exists()  # a refused rollback leaves nothing behind


def test_a_folder_without_index_is_not_listed(tmp_path: Path) -> None:
    (tmp_path / "classifier_half").mkdir()
    (tmp_path / "nanodet_user").mkdir()
    assert TrainedRepository(tmp_path).classifiers() == []
    assert INDEX_FILE == "fovea-classifier.json"


def test_discard_a_version_triton_would_not_load(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path)
    repo.add_version("bins", b"1", ["a", "b"])
    repo.set_active("bins", 1)
    repo.add_version("bins", b"2", ["a", "b"])
    left = repo.discard_version("bins", 2)
    assert left is not None and left.active == 1 and [v.version for v in left.versions] == [1]
    assert not (tmp_path / "classifier_bins" / "2").exists()
    assert repo.discard_version("bins", 1) is None
    assert not (tmp_path / "classifier_bins").exists()


def test_pruning_never_drops_the_active_version(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path, max_versions=2)
    repo.add_version("bins", b"x", ["a", "b"])
    repo.add_version("bins", b"x", ["a", "b"])
    repo.set_active("bins", 1)  # rolled back to the oldest
    # 3 versions, 2 kept: the oldest inactive one (2) goes, not the active 1 nor the new 3
    classifier, version, dropped = repo.add_version("bins", b"x", ["a", "b"])
    assert (classifier.active, version, dropped) == (1, 3, [2])
    assert [v.version for v in classifier.versions] == [1, 3]


def test_a_folder_fovea_did_not_write_is_refused_and_kept(tmp_path: Path) -> None:
    imported = tmp_path / "classifier_bins"  # e.g. `fovea models import-onnx --name classifier_bins`
    (imported / "1").mkdir(parents=True)
    (imported / "config.pbtxt").write_text('name: "classifier_bins"\n')
    (imported / "1" / "model.onnx").write_bytes(b"theirs")
    repo = TrainedRepository(tmp_path)
    with pytest.raises(FailedPrecondition, match="Fovea did not train"):
        repo.check_trainable("bins")
    with pytest.raises(FailedPrecondition, match="Fovea did not train"):
        repo.add_version("bins", b"ours", ["a", "b"])
    with pytest.raises(NotFound):
        repo.discard_version("bins", 1)
    with pytest.raises(NotFound):
        repo.delete("bins")
    assert (imported / "config.pbtxt").read_text() == 'name: "classifier_bins"\n'
    assert (imported / "1" / "model.onnx").read_bytes() == b"theirs"
    assert sorted(p.name for p in imported.iterdir()) == ["1", "config.pbtxt"]
    repo.check_trainable("other")  # no folder: fine


def test_discard_removes_only_what_fovea_wrote(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path)
    repo.add_version("bins", b"1", ["a", "b"])
    folder = tmp_path / "classifier_bins"
    (folder / "notes.txt").write_text("someone's file")
    assert repo.discard_version("bins", 1) is None
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # the folder stays: not empty
    with pytest.raises(NotFound):  # nothing Fovea wrote is left there
        repo.discard_version("bins", 1)


def test_a_job_adds_one_version(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path)
    job = "0123456789abcdef0123456789abcdef"
    _, first, _ = repo.add_version("bins", b"1", ["a", "b"], job_id=job)
    _, again, dropped = repo.add_version("bins", b"1 again", ["a", "b"], job_id=job)  # the job ran again
    assert (first, again, dropped) == (1, 1, [])
    assert sorted(p.name for p in (tmp_path / "classifier_bins").iterdir() if p.name.isdigit()) == ["1"]
    assert (tmp_path / "classifier_bins" / "1" / "model.onnx").read_bytes() == b"1"
    _, other, _ = repo.add_version("bins", b"2", ["a", "b"], job_id="f" * 32)
    assert other == 2


def test_the_lock_outlives_a_delete(tmp_path: Path) -> None:
    """A writer waiting on the lock while the classifier is deleted locks the same file afterwards: the lock
    is beside the folder (a file, which Triton ignores), never inside it, never deleted."""
    repo = TrainedRepository(tmp_path)
    repo.add_version("bins", b"1", ["a", "b"])
    lock = repo.lock_path("bins")
    assert lock.parent == tmp_path and lock.is_file() and lock.name.startswith(".")
    inode = lock.stat().st_ino
    repo.set_active("bins", 1)
    repo.delete("bins")
    assert not (tmp_path / "classifier_bins").exists() and lock.stat().st_ino == inode
    repo.add_version("bins", b"1", ["a", "b"])
    assert lock.stat().st_ino == inode  # the same lock, not a second one
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["classifier_bins"]  # no folder for Triton


def test_concurrent_delete_and_add_share_one_lock(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path)
    repo.add_version("bins", b"1", ["a", "b"])
    repo.set_active("bins", 1)
    with open(repo.lock_path("bins"), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another writer holds the lock
        done: list[object] = []
        writer = threading.Thread(target=lambda: done.append(repo.add_version("bins", b"2", ["a", "b"])))
        writer.start()
        time.sleep(0.2)
        assert not done  # waiting on the lock
        shutil.rmtree(tmp_path / "classifier_bins")  # the holder deletes the classifier
        fcntl.flock(held, fcntl.LOCK_UN)
    writer.join(5)
    assert done, "the waiting writer finished"
    # it woke under the same lock and wrote a fresh classifier, in a folder that exists
    assert (tmp_path / "classifier_bins" / "1" / "model.onnx").read_bytes() == b"2"
    assert (tmp_path / "classifier_bins" / INDEX_FILE).is_file()
