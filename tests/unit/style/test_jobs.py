from __future__ import annotations

import pytest

from fovea.common.errors import InvalidArgument
from fovea.style.core.jobs import (
    MAX_WEIGHT,
    TERMINAL,
    TRANSITIONS,
    JobState,
    check_image_size,
    gatys_params,
    sources_of,
)

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
        # would overflow J(G) in float32 at the first iteration (FloatingPointError in the worker)
        ({"alpha": 1e38}, r"alpha must be a finite number within \[0, 1e\+06\], got 1e\+38"),
        ({"beta": float("inf")}, "beta must be a finite number"),
        ({"alpha": float("nan")}, "alpha must be a finite number"),
        ({"style_layers": {"relu1_1": 1e30}}, r"style_layers\['relu1_1'\] \(lambda\)"),
        ({"learning_rate": 1e9}, "learning_rate must be within"),
        ({"learning_rate": -1.0}, "learning_rate must be within"),
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


def test_weights_up_to_the_bound_are_accepted() -> None:
    g = gatys_params(**{**PLAIN, "alpha": MAX_WEIGHT, "beta": 1.0}, **BOUNDS)
    assert g.alpha == MAX_WEIGHT


def test_image_size_after_fitting() -> None:
    check_image_size("content", 32, 32, max_side=256)
    check_image_size("content", 600, 800, max_side=64)  # 48x64 after fitting
    with pytest.raises(
        InvalidArgument, match="content image is 16x16 pixels; style transfer needs both sides at"
    ):
        check_image_size("content", 16, 16, max_side=256)
    # 40x2000 at max_side 1024 is 20x1024 (a side of 20.48, rounded): too thin for the networks
    with pytest.raises(InvalidArgument, match=r"style image is 2000x40 pixels \(1024x20 at max_side 1024\)"):
        check_image_size("style", 40, 2000, max_side=1024)
