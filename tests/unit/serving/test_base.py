from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fovea.serving.base import (
    RequestError,
    SplitSession,
    caller_cpus,
    cpu_budget,
    onnx_session,
    run_batched,
    session_for,
    worker_affinities,
)
from fovea.serving.instances import InstanceBoard, process_board

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
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu", "SPINNING": "0"}
    assert not isinstance(session_for(tmp_path, params, "CPU", 0), SplitSession)
    fixed = session_for(tmp_path, {**params, "SPINNING": "alone"}, "CPU", 0)
    assert isinstance(fixed, SplitSession) and not fixed.narrow  # lone runs only
    assert fixed.busy is not None and fixed.busy.get_session_options().intra_op_num_threads == 1
    _conv_model(tmp_path / "model.onnx", "N")
    assert len(session_for(tmp_path, params, "CPU", 0).narrow) == 1  # the default: one one-thread session
    assert not isinstance(session_for(tmp_path, {**params, "BATCH_SPLIT": "off"}, "CPU", 0), SplitSession)
    assert not isinstance(session_for(tmp_path, {**params, "THREADS": "1"}, "CPU", 0), SplitSession)
    one = session_for(tmp_path, {**params, "THREADS": "1", "SPINNING": "alone"}, "CPU", 0)
    assert isinstance(one, SplitSession) and one.alone is None and not one.narrow  # on the board, no more
    assert one.lone_session() is one.wide


def test_spinning_policies(tmp_path: Path) -> None:
    _conv_model(tmp_path / "model.onnx", "N")
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu"}
    x = np.zeros((1, 3, 16, 16), np.float32)
    for policy in ("0", "1", "run", "alone"):
        assert session_for(tmp_path, {**params, "SPINNING": policy}, "CPU", 0).run(None, {"X": x})[
            1
        ].shape == (1, 8)
    with pytest.raises(ValueError, match="SPINNING must be one of"):
        session_for(tmp_path, {**params, "SPINNING": "yes"}, "CPU", 0)


def test_a_lone_image_spins_only_while_no_other_instance_runs(tmp_path: Path) -> None:
    """The default ``SPINNING`` alone: the session whose threads spin while a run lasts serves a lone image
    when the model's other instances (other processes, as Triton's stubs are) are idle; a one-thread
    session when one of them is running. Answers are the same either way."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _conv_model(model_dir / "model.onnx", "N")
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu"}
    served = session_for(model_dir, params, "CPU", 0)
    assert isinstance(served, SplitSession) and served.alone is not None
    assert served.board is process_board()  # the host's board, one slot per process
    # the same sessions on a board of this test's own, so that the host's other processes do not count
    session = SplitSession(served.wide, served.narrow, served.alone, InstanceBoard(tmp_path))
    assert session.board is not None
    x = np.random.default_rng(2).normal(size=(1, 3, 16, 16)).astype(np.float32)
    want = onnx_session(model_dir / "model.onnx").run(None, {"X": x})
    assert session.lone_session() is session.alone
    other = _other_instance(tmp_path)
    try:
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() != str(session.board.slot)  # a slot of its own
        other.stdin.write("run\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "running"
        assert session.lone_session() is session.narrow[0]  # the cores are taken: one thread
        got = session.run(None, {"X": x})
        other.stdin.write("idle\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "idle"
        assert session.lone_session() is session.alone
    finally:
        other.kill()
        other.wait()
    for g, w in zip(got, want, strict=True):
        assert np.allclose(g, w, atol=1e-5)
    for g, w in zip(session.run(None, {"X": x}), want, strict=True):
        assert np.allclose(g, w, atol=1e-5)


def test_while_other_instances_run_a_lone_image_takes_one_thread() -> None:
    """``busy`` (a fixed batch's one-thread session, else the first narrow one) while another instance runs;
    ``alone`` when none does; ``wide`` when the model has neither."""

    class Board:
        others = False

        def others_running(self) -> bool:
            return self.others

    board = Board()
    wide, alone, narrow, busy = object(), object(), object(), object()
    fixed = SplitSession(wide, alone=alone, board=board, busy=busy)  # type: ignore[arg-type]
    split = SplitSession(wide, [narrow], alone=alone, board=board)  # type: ignore[arg-type]
    bare = SplitSession(wide, alone=alone, board=board)  # type: ignore[arg-type]
    assert [s.lone_session() for s in (fixed, split, bare)] == [alone, alone, alone]
    board.others = True
    assert [s.lone_session() for s in (fixed, split, bare)] == [busy, narrow, wide]


def test_workers_are_pinned_and_the_caller_keeps_off_their_cores() -> None:
    """onnxruntime numbers processors from 1; a worker per thread but the caller's, the second allowed CPU
    first; the caller keeps to the CPUs no worker has."""
    assert worker_affinities(1, [0, 1]) is None and worker_affinities(4, [3]) is None
    assert worker_affinities(2, [0, 1]) == "2"
    assert worker_affinities(4, [0, 1]) == "2;1;2"  # more threads than CPUs: cycled
    assert worker_affinities(3, [4, 6, 9]) == "7;10"  # the CPUs a container's cpuset allows
    assert caller_cpus(2, [0, 1]) == frozenset({0})
    assert caller_cpus(3, [4, 6, 9]) == frozenset({4})
    assert caller_cpus(4, [0, 1]) is None and caller_cpus(1, [0, 1]) is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs")
def test_a_sessions_workers_run_where_they_are_pinned(tmp_path: Path) -> None:
    """The new threads of a two-thread session are pinned to the second allowed CPU; an alone run keeps the
    caller to the first while it lasts and gives it back its CPUs after."""
    cpus = sorted(os.sched_getaffinity(0))
    _conv_model(tmp_path / "model.onnx", "N")
    before = set(os.listdir("/proc/self/task"))
    session = onnx_session(tmp_path / "model.onnx", threads=2, spinning="run")
    new = set(os.listdir("/proc/self/task")) - before
    pinned = {_allowed(Path(f"/proc/self/task/{t}/status")) for t in new}
    # In: a thread another test left behind may start meanwhile (seen once in a full run); an unpinned
    # session's worker would show every allowed CPU instead.
    assert str(cpus[1]) in pinned, pinned

    seen: list[set[int]] = []

    class Watched:
        def run(self, names: object, feeds: object) -> list[np.ndarray]:
            seen.append(set(os.sched_getaffinity(0)))
            return list(session.run(None, {"X": np.zeros((1, 3, 16, 16), np.float32)}))

    split = SplitSession(Watched(), alone=Watched(), board=InstanceBoard(tmp_path), caller=caller_cpus(2))
    split.run(None, {"X": np.zeros((1, 3, 16, 16), np.float32)})
    assert seen == [{cpus[0]}], seen
    assert set(os.sched_getaffinity(0)) == set(cpus)


def test_the_cpu_budget_is_the_affinity_capped_by_a_cgroup_quota(tmp_path: Path) -> None:
    allowed = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert cpu_budget(tmp_path / "absent") == allowed
    cpu_max.write_text("max 100000\n")
    assert cpu_budget(cpu_max) == allowed
    cpu_max.write_text("150000 100000\n")  # --cpus 1.5: two threads
    assert cpu_budget(cpu_max) == min(allowed, 2)
    cpu_max.write_text("50000 100000\n")
    assert cpu_budget(cpu_max) == 1
    cpu_max.write_text("garbage\n")
    assert cpu_budget(cpu_max) == allowed


def test_pin_policies(tmp_path: Path) -> None:
    _conv_model(tmp_path / "model.onnx", "N")
    params = {"WEIGHTS": "model.onnx", "THREADS": "2", "DEVICE": "cpu"}
    cpus = sorted(os.sched_getaffinity(0))
    served = session_for(tmp_path, params, "CPU", 0)  # the default: alone
    assert served.caller == (caller_cpus(2) if len(cpus) > 1 else None)
    for policy in ("0", "workers"):
        assert session_for(tmp_path, {**params, "PIN": policy}, "CPU", 0).caller is None
    with pytest.raises(ValueError, match="PIN must be one of"):
        session_for(tmp_path, {**params, "PIN": "yes"}, "CPU", 0)


def _allowed(status: Path) -> str:
    line = next(v for v in status.read_text().splitlines() if v.startswith("Cpus_allowed_list"))
    return line.split(":", 1)[1].strip()


def _other_instance(directory: Path) -> subprocess.Popen[str]:
    """Another process (as another Triton stub is) on the board in ``directory``: prints its slot, then marks
    itself running / idle on "run" / "idle" lines."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from fovea.serving.instances import InstanceBoard\n"
        f"board = InstanceBoard(Path({str(directory)!r}))\n"
        "print(board.slot, flush=True)\n"
        "for line in sys.stdin:\n"
        "    board.running(line.strip() == 'run')\n"
        "    print('running' if line.strip() == 'run' else 'idle', flush=True)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def test_a_dead_instances_slot_is_claimed_again_and_its_mark_cleared(tmp_path: Path) -> None:
    other = _other_instance(tmp_path)
    assert other.stdout is not None and other.stdin is not None
    slot = int(other.stdout.readline())
    other.stdin.write("run\n")
    other.stdin.flush()
    assert other.stdout.readline().strip() == "running"
    board = InstanceBoard(tmp_path)
    try:
        assert board.slot != slot and board.others_running()
        other.kill()  # dies while running: its lock goes with it, its mark stays
        other.wait()
        assert board.others_running()
        third = _other_instance(tmp_path)  # a new stub claims the free slot and clears the dead one's mark
        try:
            assert third.stdout is not None
            assert int(third.stdout.readline()) == slot
            assert not board.others_running()
        finally:
            third.kill()
            third.wait()
    finally:
        board.close()
