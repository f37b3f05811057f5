"""A labelled folder (``folder/<class name>/<image>``) read into a training set for
:meth:`fovea.client.FoveaClient.train_classifier` (``fovea classifiers train``). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


@dataclass
class LabelledFolder:
    """What a labelled folder holds: ``(class name, path)`` of each image, and what was left out, with why
    (hidden entries are left out without a word)."""

    pairs: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class TrainingSet:
    """A labelled folder read: ``(class name, encoded image)`` pairs, each image's source (its path under the
    folder, which the service names in its messages) and what was left out, with why."""

    images: list[tuple[str, bytes]]
    sources: list[str]
    skipped: list[tuple[Path, str]]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def scan_labelled_folder(folder: Path) -> LabelledFolder:
    """``folder/<class name>/<image>``, classes and files sorted; files that are not JPEG/PNG/WebP by their
    suffix, files outside a class folder and folders inside one are left out (and listed as such).

    Raises:
        ValueError: no class folder holds an image.
    """
    found = LabelledFolder()
    for entry in sorted(filter(_visible, Path(folder).iterdir())):
        if not entry.is_dir():
            found.skipped.append((entry, "not in a class folder (folder/<class name>/<image>)"))
            continue
        for path in sorted(filter(_visible, entry.iterdir())):
            if path.is_dir():
                found.skipped.append((path, "a folder inside a class folder (not read)"))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                found.skipped.append((path, f"not {', '.join(sorted(IMAGE_SUFFIXES))} by its name"))
            else:
                found.pairs.append((entry.name, path))
    if not found.pairs:
        raise ValueError(f"{folder} has no class folders with images: expected {folder}/<class name>/*.jpg")
    return found


def read_labelled_folder(folder: Path) -> list[tuple[str, Path]]:
    """The ``(class name, path)`` pairs of :func:`scan_labelled_folder`.

    Raises:
        ValueError: no class folder holds an image.
    """
    return scan_labelled_folder(folder).pairs


def read_training_folder(folder: Path) -> TrainingSet:
    """The images of :func:`scan_labelled_folder` read, with their sources and what was left out.

    Raises:
        ValueError: no class folder holds an image.
        OSError: an image cannot be read (the message names it).
    """
    scanned = scan_labelled_folder(folder)
    return TrainingSet(
        images=[(label, path.read_bytes()) for label, path in scanned.pairs],
        sources=[path.relative_to(folder).as_posix() for _, path in scanned.pairs],
        skipped=scanned.skipped,
    )


def read_training_set(folder: Path) -> list[tuple[str, bytes]]:
    """``(class name, encoded image)`` pairs of :func:`read_labelled_folder`, what ``train_classifier`` takes.

    Raises:
        ValueError: no class folder holds an image.
        OSError: an image cannot be read.
    """
    return read_training_folder(folder).images


__all__ = [
    "IMAGE_SUFFIXES",
    "LabelledFolder",
    "TrainingSet",
    "read_labelled_folder",
    "read_training_folder",
    "read_training_set",
    "scan_labelled_folder",
]
