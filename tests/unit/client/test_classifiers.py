"""A labelled folder read into a training set: classes and files sorted, hidden entries and other files
skipped, a folder without class folders refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fovea.client.classifiers import read_labelled_folder, read_training_folder, read_training_set


def test_a_labelled_folder(tmp_path: Path) -> None:
    for name in ("dog/b.jpg", "dog/a.PNG", "cat/x.webp", "cat/notes.txt", "cat/.hidden.jpg", ".git/c.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "loose.jpg").write_bytes(b"")  # not in a class folder
    assert [(label, p.name) for label, p in read_labelled_folder(tmp_path)] == [
        ("cat", "x.webp"),
        ("dog", "a.PNG"),
        ("dog", "b.jpg"),
    ]
    assert read_training_set(tmp_path)[0] == ("cat", b"cat/x.webp")
    training = read_training_folder(tmp_path)
    assert training.sources == ["cat/x.webp", "dog/a.PNG", "dog/b.jpg"]
    # what is left out is said (issue 24: it was skipped without a word); hidden entries are not
    assert [(p.relative_to(tmp_path).as_posix(), why.split(" ")[0]) for p, why in training.skipped] == [
        ("cat/notes.txt", "not"),
        ("loose.jpg", "not"),
    ]


def test_no_class_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no class folders with images"):
        read_labelled_folder(tmp_path)
