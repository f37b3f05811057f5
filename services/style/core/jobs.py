"""Style jobs as data: states, the allowed transitions, parameter validation. No I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from fovea.common.errors import InvalidArgument


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


OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")


@dataclass(frozen=True)
class GatysRequest:
    """Gatys parameters after defaults and bounds; passed to the Triton model as JSON."""

    iterations: int
    max_side: int
    alpha: float = 1.0
    beta: float = 1e3
    optimizer: str = "lbfgs"
    init: str = "content"
    learning_rate: float = 0.0  # 0 = the optimiser's default
    content_layer: str = ""  # "" = the model's default
    style_layers: dict[str, float] = field(default_factory=dict)  # {} = the model's defaults
    preview_every: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_gatys(
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
    default_iterations: int,
    max_iterations: int,
    default_side: int,
    max_side_limit: int,
) -> GatysRequest:
    """Apply defaults (0 / empty = default) and bounds; ``InvalidArgument`` names the bad field."""
    iterations = iterations or default_iterations
    if not 1 <= iterations <= max_iterations:
        raise InvalidArgument(f"iterations must be within [1, {max_iterations}], got {iterations}")
    max_side = max_side or default_side
    if not 32 <= max_side <= max_side_limit:
        raise InvalidArgument(f"max_side must be within [32, {max_side_limit}], got {max_side}")
    if alpha < 0 or beta < 0:
        raise InvalidArgument(f"alpha and beta must be >= 0, got {alpha}, {beta}")
    if optimizer not in OPTIMIZERS:
        raise InvalidArgument(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if init not in INITS:
        raise InvalidArgument(f"init must be one of {INITS}, got {init!r}")
    if learning_rate < 0:
        raise InvalidArgument(f"learning_rate must be >= 0, got {learning_rate}")
    if any(w < 0 for w in style_layers.values()):
        raise InvalidArgument("style layer weights (lambda) must be >= 0")
    if preview_every < 0:
        raise InvalidArgument(f"preview_every must be >= 0, got {preview_every}")
    return GatysRequest(
        iterations=iterations,
        max_side=max_side,
        alpha=alpha or 1.0,
        beta=beta or 1e3,
        optimizer=optimizer,
        init=init,
        learning_rate=learning_rate,
        content_layer=content_layer,
        style_layers=dict(style_layers),
        preview_every=preview_every,
    )
