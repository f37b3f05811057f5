"""fovea.classify.trained: version folders, the active version, rollback, pruning, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from fovea.classify.trained import INDEX_FILE, TrainedRepository
from fovea.common.errors import FailedPrecondition, NotFound
from fovea.serving.base import check_config, read_config
from fovea.serving.trained_classifier import CONTRACT


def test_versions_rollback_prune_and_delete(tmp_path: Path) -> None:
    repo = TrainedRepository(tmp_path, max_versions=3)
    first, dropped = repo.add_version("bins", b"onnx-1", ["glass", "paper"], validation_accuracy=0.9)
    assert (first.active, dropped) == (1, [])
    folder = tmp_path / "classifier_bins"
    assert (folder / "1" / "model.onnx").read_bytes() == b"onnx-1"
    assert (folder / "1" / "labels.txt").read_text() == "glass\npaper\n"
    assert "fovea.serving.trained_classifier" in (folder / "1" / "model.py").read_text()
    check_config(CONTRACT, read_config(folder / "config.pbtxt"))  # the config matches the served contract
    assert 'name: "classifier_bins"' in (folder / "config.pbtxt").read_text()

    second, _ = repo.add_version("bins", b"onnx-2", ["glass", "metal", "paper"])
    assert second.active == 2 and second.version().labels == ["glass", "metal", "paper"]
    assert repo.set_active("bins").active == 1  # rollback: the version before the active one
    with pytest.raises(FailedPrecondition, match="no version before 1"):
        repo.set_active("bins")
    assert repo.set_active("bins", 2).active == 2
    with pytest.raises(NotFound, match="no version 7; versions: 1, 2"):
        repo.set_active("bins", 7)

    repo.add_version("bins", b"onnx-3", ["a", "b"])
    fourth, dropped = repo.add_version("bins", b"onnx-4", ["a", "b"])
    assert (fourth.active, dropped) == (4, [1])
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
    repo.add_version("bins", b"2", ["a", "b"])
    left = repo.discard_version("bins", 2)
    assert left is not None and left.active == 1 and [v.version for v in left.versions] == [1]
    assert not (tmp_path / "classifier_bins" / "2").exists()
    assert repo.discard_version("bins", 1) is None
    assert not (tmp_path / "classifier_bins").exists()
