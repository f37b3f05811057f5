from __future__ import annotations

import pytest

from fovea.common.errors import InvalidArgument
from fovea.style.core.jobs import TERMINAL, TRANSITIONS, JobState, gatys_params, sources_of

BOUNDS = {"max_iterations": 500, "default_side": 256, "max_side_limit": 512}
PLAIN = {
    "iterations": 100,
    "max_side": 0,
    "alpha": 0.0,
    "beta": 0.0,
    "optimizer": "lbfgs",
    "init": "content",
    "learning_rate": 0.0,
    "content_layer": "",
    "style_layers": {},
    "preview_every": 0,
}


def test_defaults_apply() -> None:
    g = gatys_params(**PLAIN, **BOUNDS)
    assert (g.iterations, g.max_side, g.alpha, g.beta, g.content_layer) == (100, 256, 1.0, 1e3, "relu4_2")
    assert g.learning_rate is None and len(g.style_layers) == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iterations": 501}, "iterations"),
        ({"iterations": -1}, "iterations"),
        ({"iterations": 0}, "iterations"),
        ({"max_side": 4096}, "max_side"),
        ({"max_side": 8}, "max_side"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"init": "zeros"}, "init"),
        ({"alpha": -1.0}, "alpha"),
        ({"style_layers": {"relu1_1": -2.0}}, "lambda"),
        ({"content_layer": "conv9"}, "content_layer"),
    ],
)
def test_bad_parameters(change: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        gatys_params(**{**PLAIN, **change}, **BOUNDS)


def test_terminal_states_are_final() -> None:
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    assert sources_of(JobState.SUCCEEDED) == [JobState.RUNNING]
    assert set(sources_of(JobState.CANCELLED)) == {JobState.QUEUED, JobState.RUNNING}
