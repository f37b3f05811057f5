"""Style jobs as data: states, the allowed transitions, parameter validation. No I/O."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from typing import Any

from fovea.common.errors import InvalidArgument
from fovea.style.core.gatys import MIN_SIDE, GatysParams


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
        raise InvalidArgument(str(exc)) from exc


def params_json(params: GatysParams) -> dict[str, Any]:
    """JSON-ready fields of ``params`` (what the job stores and the Triton model receives)."""
    data = asdict(params)
    data["style_layers"] = dict(params.style_layers)
    return data
