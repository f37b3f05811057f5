from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fovea.serving.base import RequestError, SplitSession, onnx_session, run_batched, session_for

EXPECTED = {"INPUT": (3, 4)}


def double(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"OUT": batch["INPUT"] * 2, "SUM": batch["INPUT"].sum(axis=(1, 2))}


def test_requests_are_batched_and_split_back() -> None:
    a = np.ones((1, 3, 4), np.float32)
    b = np.full((2, 3, 4), 3, np.float32)
    calls = []

    def fn(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(batch["INPUT"].shape)
        return double(batch)

    ra, rb = run_batched([{"INPUT": a}, {"INPUT": b}], EXPECTED, fn)
    assert calls == [(3, 3, 4)]  # one forward pass for both requests
    assert isinstance(ra, dict) and isinstance(rb, dict)
    assert np.array_equal(ra["OUT"], a * 2) and ra["SUM"].tolist() == [12.0]
    assert np.array_equal(rb["OUT"], b * 2) and rb["SUM"].tolist() == [36.0, 36.0]


def test_a_bad_request_fails_alone() -> None:
    good = np.zeros((1, 3, 4), np.float32)
    results = run_batched([{"INPUT": np.zeros((1, 5))}, {"INPUT": good}, {}], EXPECTED, double)
    assert isinstance(results[0], RequestError) and "shape" in str(results[0])
    assert isinstance(results[1], dict) and results[1]["OUT"].shape == (1, 3, 4)
    assert isinstance(results[2], RequestError) and "missing" in str(results[2])


def _conv_model(path: Path, batch: int | str) -> Path:
    """A small ONNX network (conv 3x3 + relu + global mean), first axis ``batch`` (an int fixes it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["C"], ["Y"]),
            helper.make_node("ReduceMean", ["Y"], ["M"], axes=[2, 3], keepdims=0),
        ],
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, 8, 16, 16]),
            helper.make_tensor_value_info("M", TensorProto.FLOAT, [batch, 8]),
        ],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_split_session_answers_a_batch_as_one_session_does(tmp_path: Path) -> None:
    _conv_model(tmp_path / "model.onnx", "N")
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu", "BATCH_SPLIT": "2"}
    session = session_for(tmp_path, params, "CPU", 0)
    assert isinstance(session, SplitSession) and len(session.narrow) == 2
    alone = onnx_session(tmp_path / "model.onnx")
    x = np.random.default_rng(1).normal(size=(5, 3, 16, 16)).astype(np.float32)
    for batch in (x[:1], x[:2], x):  # a lone image on the wide session; 2 and 5 split in two parts
        got = session.run(None, {"X": batch})
        want = alone.run(None, {"X": batch})
        assert [g.shape for g in got] == [w.shape for w in want]
        for g, w in zip(got, want, strict=True):
            assert np.allclose(g, w, atol=1e-5)
    assert session.get_inputs()[0].name == "X"  # everything else is the wide session's


def test_no_split_for_a_fixed_batch_or_when_asked(tmp_path: Path) -> None:
    _conv_model(tmp_path / "model.onnx", 1)
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu"}
    assert not isinstance(session_for(tmp_path, params, "CPU", 0), SplitSession)
    _conv_model(tmp_path / "model.onnx", "N")
    assert len(session_for(tmp_path, params, "CPU", 0).narrow) == 1  # the default: one one-thread session
    assert not isinstance(session_for(tmp_path, {**params, "BATCH_SPLIT": "off"}, "CPU", 0), SplitSession)
    assert not isinstance(session_for(tmp_path, {**params, "THREADS": "1"}, "CPU", 0), SplitSession)


def test_spinning_policies(tmp_path: Path) -> None:
    _conv_model(tmp_path / "model.onnx", "N")
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu"}
    x = np.zeros((1, 3, 16, 16), np.float32)
    for policy in ("0", "1", "run"):
        assert session_for(tmp_path, {**params, "SPINNING": policy}, "CPU", 0).run(None, {"X": x})[
            1
        ].shape == (1, 8)
    with pytest.raises(ValueError, match="SPINNING must be one of"):
        session_for(tmp_path, {**params, "SPINNING": "yes"}, "CPU", 0)
