"""Style jobs as data: states, the allowed transitions, parameter validation. No I/O."""

from __future__ import annotations

import math
from dataclasses import asdict
from enum import StrEnum
from typing import Any

from fovea.common.errors import InvalidArgument, clip
from fovea.contracts.styles import MIN_SIDE, GatysParams, fitted_size

MAX_WEIGHT = 1e6
"""Upper bound of alpha, beta and each style layer's lambda. The defaults are alpha 1, beta 1e3, lambda 0.2;
J_content and J_style reach ~1e8 at the largest sizes, so 1e6 keeps J(G) far inside float32 (3.4e38), where
alpha=1e38 overflows at the first iteration."""
MAX_LEARNING_RATE = 1e3
"""Upper bound of the optimiser's step (Adam's default is 10, in pixel units of a 0-255 image)."""
MIN_IMAGE_SIDE = 32
"""Smallest side of an image the style networks take, after fitting to max_side (multistyle's MIN_SIDE)."""


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class JobKind(StrEnum):
    FAST = "fast"  # feed-forward network, one of the named styles
    GATYS = "gatys"  # optimisation against a style image


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

# from -> allowed to. RUNNING -> RUNNING: a redelivered job (its worker was lost) is taken over;
# RUNNING -> QUEUED: waiting for a retry while Triton is unavailable.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {JobState.RUNNING, JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def sources_of(target: JobState) -> list[JobState]:
    """The states from which ``target`` may be entered."""
    return [s for s, allowed in TRANSITIONS.items() if target in allowed]


def gatys_params(
    *,
    iterations: int,
    max_side: int,
    alpha: float,
    beta: float,
    optimizer: str,
    init: str,
    learning_rate: float,
    content_layer: str,
    style_layers: dict[str, float],
    preview_every: int,
    max_iterations: int,
    default_side: int,
    max_side_limit: int,
) -> GatysParams:
    """The optimiser's parameters from a request, within the service's bounds; ``InvalidArgument`` names
    the bad field (checked at submit time). Iterations must be given (>= 1); for the other fields 0 or
    empty means the default."""
    if not 1 <= iterations <= max_iterations:
        raise InvalidArgument(f"iterations must be within [1, {max_iterations}], got {iterations}")
    max_side = max_side or default_side
    if not MIN_SIDE <= max_side <= max_side_limit:
        raise InvalidArgument(f"max_side must be within [{MIN_SIDE}, {max_side_limit}], got {max_side}")
    weights = {
        "alpha": alpha,
        "beta": beta,
        **{f"style_layers[{clip(k)!r}] (lambda)": w for k, w in style_layers.items()},
    }
    for name, value in weights.items():
        if not (math.isfinite(value) and 0 <= value <= MAX_WEIGHT):
            raise InvalidArgument(f"{name} must be a finite number within [0, {MAX_WEIGHT:g}], got {value:g}")
    if not (math.isfinite(learning_rate) and 0 <= learning_rate <= MAX_LEARNING_RATE):
        raise InvalidArgument(
            f"learning_rate must be within (0, {MAX_LEARNING_RATE:g}] (0 = the default), got {learning_rate:g}"
        )
    defaults = GatysParams()
    try:
        return GatysParams(
            content_layer=content_layer or defaults.content_layer,
            style_layers=dict(style_layers) or dict(defaults.style_layers),
            alpha=defaults.alpha if alpha == 0 and beta == 0 else alpha,
            beta=defaults.beta if alpha == 0 and beta == 0 else beta,
            iterations=iterations,
            optimizer=optimizer,  # type: ignore[arg-type]  # checked by GatysParams
            learning_rate=learning_rate or None,
            init=init,  # type: ignore[arg-type]
            max_side=max_side,
            preview_every=preview_every,
        )
    except ValueError as exc:
        raise InvalidArgument(clip(str(exc), 500)) from exc


def check_image_size(
    name: str, height: int, width: int, max_side: int, min_side: int = MIN_IMAGE_SIDE
) -> None:
    """``InvalidArgument`` unless an image of ``height`` x ``width`` pixels, fitted (downscaled) to
    ``max_side``, still has both sides >= ``min_side``: what the style networks need."""
    fitted_h, fitted_w = fitted_size(height, width, max_side)
    if min(fitted_h, fitted_w) < min_side:
        scaled = (
            ""
            if (fitted_h, fitted_w) == (height, width)
            else f" ({fitted_w}x{fitted_h} at max_side {max_side})"
        )
        raise InvalidArgument(
            f"{name} image is {width}x{height} pixels{scaled}; style transfer needs both sides at least "
            f"{min_side} pixels"
        )


def params_json(params: GatysParams) -> dict[str, Any]:
    """JSON-ready fields of ``params`` (what the job stores and the Triton model receives)."""
    data = asdict(params)
    data["style_layers"] = dict(params.style_layers)
    return data
