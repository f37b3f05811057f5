"""Trained classifiers on disk: a Triton model repository folder per classifier, a folder per version.

``<repository>/classifier_<name>/``::

    config.pbtxt            fovea.contracts.trained_classifier.config_text: version_policy all
    fovea-classifier.json   {"name", "active", "versions": [{"version", "labels", "created", ...}]}
    1/ model.onnx labels.txt model.py
    2/ ...

The repository is the stack's user model repository (``<data dir>/user-models``), which Triton serves beside
``model_repository/`` and which is writable where the platform repository is not (compose, Kubernetes: a
volume shared by Triton, the classify service and its worker). Writers (a training job adding a version, the
service rolling back or deleting) take an exclusive ``flock`` on ``<repository>/.classifier_<name>.lock``: a
file beside the model folders, never deleted (so a writer waiting while another deletes the classifier wakes
on the same lock, not in a removed folder), and a file, not a folder, because Triton takes every folder of a
repository for a model. Files are written to a temporary and renamed, a version folder is complete before it
gets its number (Triton ignores folders whose name is not a number), so Triton never sees half a version.

A ``classifier_<name>`` folder is Fovea's only when it holds ``fovea-classifier.json``: training refuses a
folder without it (an ``import-onnx`` model of that name), and Fovea removes only what it wrote.

A new version is written inactive (:meth:`TrainedRepository.add_version`); the job makes it active
(:meth:`TrainedRepository.set_active`) once Triton serves it. A job adds one version at most: its id is kept
with the version, and adding again for the same job returns that version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fovea.classify.core.training import check_name
from fovea.common.errors import FailedPrecondition, NotFound
from fovea.contracts.classifier import LABELS_FILE
from fovea.contracts.trained_classifier import INDEX_FILE, MODEL_PREFIX, MODEL_PY, config_text, model_name


@dataclass(frozen=True)
class VersionInfo:
    version: int
    labels: list[str]
    created: float
    validation_accuracy: float = float("nan")
    job_id: str = ""
    train_images: int = 0


@dataclass(frozen=True)
class TrainedClassifier:
    name: str
    active: int
    versions: list[VersionInfo] = field(default_factory=list)

    @property
    def model(self) -> str:
        return model_name(self.name)

    def version(self, number: int = 0) -> VersionInfo:
        """Version ``number`` (0 = the active one).

        Raises:
            NotFound: naming the versions there are.
        """
        wanted = number or self.active
        for info in self.versions:
            if info.version == wanted:
                return info
        raise NotFound(
            f"classifier {self.name!r} has no version {wanted}; versions: "
            f"{', '.join(str(v.version) for v in self.versions)}"
        )


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class TrainedRepository:
    """The trained classifiers in ``root`` (a Triton model repository folder, created when missing)."""

    def __init__(self, root: Path, max_versions: int = 5) -> None:
        self.root = Path(root)
        self.max_versions = max_versions

    def folder(self, name: str) -> Path:
        return self.root / model_name(check_name(name))

    def lock_path(self, name: str) -> Path:
        """The classifier's lock file: beside its folder, never deleted (a file: Triton ignores it)."""
        return self.root / f".{model_name(check_name(name))}.lock"

    def check_trainable(self, name: str) -> None:
        """Raises ``FailedPrecondition`` when ``classifier_<name>`` exists and is not Fovea's (no index)."""
        folder = self.folder(name)
        if folder.exists() and not (folder / INDEX_FILE).is_file():
            raise FailedPrecondition(
                f"the user model repository holds a model {folder.name!r} that Fovea did not train (no "
                f"{INDEX_FILE}; e.g. one imported with `fovea models import-onnx`): choose another name "
                "for the classifier, or remove that model first"
            )

    @contextmanager
    def _locked(self, name: str, create: bool = False) -> Iterator[Path]:
        folder = self.folder(name)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path(name), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if create:
                    self.check_trainable(name)
                    if not folder.is_dir():
                        folder.mkdir()
                        self._save(folder, TrainedClassifier(name, 0, []))  # Fovea's from the start
                elif not (folder / INDEX_FILE).is_file():
                    raise NotFound(f"no trained classifier {name!r}: `fovea classifiers list` shows them")
                yield folder
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _read(folder: Path) -> TrainedClassifier | None:
        try:
            raw = json.loads((folder / INDEX_FILE).read_text())
        except (OSError, ValueError):
            return None
        versions = [VersionInfo(**v) for v in raw.get("versions", [])]
        return TrainedClassifier(raw["name"], int(raw["active"]), sorted(versions, key=lambda v: v.version))

    @staticmethod
    def _save(folder: Path, classifier: TrainedClassifier) -> None:
        record: dict[str, Any] = {
            "name": classifier.name,
            "active": classifier.active,
            "versions": [asdict(v) for v in classifier.versions],
        }
        _write(folder / INDEX_FILE, (json.dumps(record, indent=1) + "\n").encode())

    def classifiers(self) -> list[TrainedClassifier]:
        """Every trained classifier, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(self.root.iterdir()):
            if not folder.name.startswith(MODEL_PREFIX) or not folder.is_dir():
                continue
            classifier = self._read(folder)
            if classifier is not None and classifier.active:  # none active yet: its first version deploying
                found.append(classifier)
        return found

    def get(self, name: str) -> TrainedClassifier:
        """Raises ``NotFound`` when ``name`` was never trained (or was deleted, or its first version is not
        deployed yet)."""
        classifier = self._read(self.folder(name))
        if classifier is None or not classifier.versions or not classifier.active:
            raise NotFound(f"no trained classifier {name!r}: `fovea classifiers list` shows them")
        return classifier

    def add_version(
        self, name: str, onnx_bytes: bytes, labels: list[str], *, job_id: str = "", **info: Any
    ) -> tuple[TrainedClassifier, int, list[int]]:
        """Write the next version (its folder complete before it is numbered), inactive, and drop the oldest
        versions beyond ``max_versions`` (never the active one). Returns the classifier, the new version and
        the dropped versions; the caller asks Triton to (re)load the model, then :meth:`set_active`.

        A version already added for ``job_id`` (a job that ran again) is returned as it is: nothing written.

        Raises:
            FailedPrecondition: ``classifier_<name>`` is a model Fovea did not write.
        """
        with self._locked(name, create=True) as folder:
            current = self._read(folder) or TrainedClassifier(name, 0, [])
            versions = list(current.versions)
            if job_id and (done := [v.version for v in versions if v.job_id == job_id]):
                return current, done[0], []
            number = max([v.version for v in versions] + [_highest_folder(folder)]) + 1
            staging = folder / f".staging-{number}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            (staging / "model.onnx").write_bytes(onnx_bytes)
            (staging / LABELS_FILE).write_text("\n".join(labels) + "\n")
            (staging / "model.py").write_text(MODEL_PY)
            os.replace(staging, folder / str(number))
            _write(folder / "config.pbtxt", config_text(model_name(name)).encode())
            versions.append(VersionInfo(number, list(labels), time.time(), job_id=job_id, **info))
            spare = [v.version for v in versions if v.version not in (current.active, number)]
            dropped = spare[: max(0, len(versions) - self.max_versions)]
            for old in dropped:
                shutil.rmtree(folder / str(old), ignore_errors=True)
            classifier = TrainedClassifier(
                name, current.active, [v for v in versions if v.version not in dropped]
            )
            self._save(folder, classifier)
            return classifier, number, dropped

    def discard_version(self, name: str, version: int) -> TrainedClassifier | None:
        """Remove ``version`` (one Triton would not load) and nothing else Fovea did not write; when it was the
        active one the newest remaining version becomes active. Returns the classifier, or None when no version
        is left (its folder is removed once empty)."""
        with self._locked(name) as folder:
            current = self._read(folder) or TrainedClassifier(name, 0, [])
            if version not in {v.version for v in current.versions}:
                return current if current.versions else None
            kept = [v for v in current.versions if v.version != version]
            shutil.rmtree(folder / str(version), ignore_errors=True)
            if not kept:
                for written in ("config.pbtxt", INDEX_FILE):
                    (folder / written).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when nothing else is there
                return None
            active = current.active if current.active != version else kept[-1].version
            classifier = TrainedClassifier(name, active, kept)
            self._save(folder, classifier)
            return classifier

    def set_active(self, name: str, version: int = 0) -> TrainedClassifier:
        """Make ``version`` (0 = the one before the active one) the default.

        Raises:
            NotFound: no such classifier or version. FailedPrecondition: no version before the active one.
        """
        with self._locked(name) as folder:
            current = self._read(folder)
            if current is None or not current.versions:
                raise NotFound(f"no trained classifier {name!r}: `fovea classifiers list` shows them")
            if version == 0 and not current.active:
                raise FailedPrecondition(f"classifier {name!r} has no active version to roll back from")
            if version == 0:
                older = [v.version for v in current.versions if v.version < current.active]
                if not older:
                    raise FailedPrecondition(
                        f"classifier {name!r} has no version before {current.active}; name one with --to"
                    )
                version = older[-1]
            current.version(version)  # NotFound naming the versions
            classifier = TrainedClassifier(name, version, current.versions)
            self._save(folder, classifier)
            return classifier

    def delete(self, name: str) -> int:
        """Remove every version; returns how many there were. Raises ``NotFound``."""
        with self._locked(name) as folder:
            classifier = self._read(folder)
            shutil.rmtree(folder)
        return len(classifier.versions) if classifier else 0


def _highest_folder(folder: Path) -> int:
    numbers = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(numbers, default=0)


__all__ = [
    "INDEX_FILE",
    "MODEL_PREFIX",
    "TrainedClassifier",
    "TrainedRepository",
    "VersionInfo",
    "model_name",
]
