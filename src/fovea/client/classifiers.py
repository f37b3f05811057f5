"""A labelled folder (``folder/<class name>/<image>``) read into a training set for
:meth:`fovea.client.FoveaClient.train_classifier` (``fovea classifiers train``). Standard library only."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def read_labelled_folder(folder: Path) -> list[tuple[str, Path]]:
    """``folder/<class name>/<image>`` -> ``(class name, path)`` pairs, classes and files sorted; hidden
    entries and files that are not JPEG/PNG/WebP by their suffix are skipped.

    Raises:
        ValueError: no class folder holds an image.
    """
    pairs = []
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(sub.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
                pairs.append((sub.name, path))
    if not pairs:
        raise ValueError(f"{folder} has no class folders with images: expected {folder}/<class name>/*.jpg")
    return pairs


def read_training_set(folder: Path) -> list[tuple[str, bytes]]:
    """``(class name, encoded image)`` pairs of :func:`read_labelled_folder`, what ``train_classifier`` takes.

    Raises:
        ValueError: no class folder holds an image.
        OSError: an image cannot be read.
    """
    return [(label, path.read_bytes()) for label, path in read_labelled_folder(folder)]


__all__ = ["IMAGE_SUFFIXES", "read_labelled_folder", "read_training_set"]
