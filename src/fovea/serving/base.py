"""What every model served by Triton shares: tensor contracts, config checks, batching, devices, sessions.

The code that runs inside Triton lives in :mod:`fovea.serving`, one module per served model, each with its
:class:`Contract` (tensor names, dtypes, per-item dims, parameters) and a ``load(...)`` that returns an object
with ``execute(requests) -> list[outputs | RequestError]``. ``model_repository/<model>/1/model.py`` is a thin
adapter (:mod:`fovea.serving.triton_adapter`) that checks ``config.pbtxt`` against the contract at load.
Services import contracts only. Everything here is importable (and tested) without Triton.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fovea.contracts.tensors import Arrays, Contract
from fovea.serving.instances import InstanceBoard, process_board


class RequestError(ValueError):
    """One request of a batch is malformed; it gets its own error, the others still run."""


def check_request(
    arrays: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, type[np.generic]] | None = None,
) -> None:
    """Check names, dtypes (those ``dtypes`` names) and per-item shapes (batch dimension first, -1 = any)."""
    for name, shape in expected.items():
        if name not in arrays:
            raise RequestError(f"missing input {name}")
        want = (dtypes or {}).get(name)
        if want is not None and arrays[name].dtype != want:
            raise RequestError(f"input {name} is {arrays[name].dtype}, expected {np.dtype(want).name}")
        got = arrays[name].shape[1:]
        if len(got) != len(shape) or any(s not in (-1, g) for s, g in zip(shape, got, strict=True)):
            raise RequestError(
                f"input {name} has shape {arrays[name].shape}, expected [N, {', '.join(map(str, shape))}]"
            )


def run_batched(
    requests: Sequence[Mapping[str, np.ndarray]],
    expected: Mapping[str, tuple[int, ...]],
    fn: Callable[[Arrays], Arrays],
    dtypes: Mapping[str, type[np.generic]] | None = None,
) -> list[Arrays | RequestError]:
    """Concatenate the valid requests along the batch axis, run ``fn`` once, split the outputs back.
    ``dtypes``: inputs that must have that dtype (a uint8 image sent as float is that request's error).

    Returns one entry per request, in order: its outputs, or the ``RequestError`` it earned.
    """
    results: list[Arrays | RequestError] = []
    valid: list[int] = []
    for i, arrays in enumerate(requests):
        try:
            check_request(arrays, expected, dtypes)
            valid.append(i)
            results.append({})
        except RequestError as exc:
            results.append(exc)
    if not valid:
        return results
    sizes = [requests[i][next(iter(expected))].shape[0] for i in valid]
    batch = {name: np.concatenate([requests[i][name] for i in valid], axis=0) for name in expected}
    outputs = fn(batch)
    offsets = np.cumsum([0, *sizes])
    for k, i in enumerate(valid):
        results[i] = {name: out[offsets[k] : offsets[k + 1]] for name, out in outputs.items()}
    return results


def choose_device(instance_kind: str, device_id: str | int, preference: str) -> str:
    """``cuda:<id>`` for a GPU instance; for a CPU instance CUDA only when ``preference`` is auto/cuda."""
    import torch

    if instance_kind.upper() == "GPU":
        return f"cuda:{device_id}"
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        return "cuda:0"
    return "cpu"


def honoured(preference: str) -> str:
    """``preference`` (a ``DEVICE`` value) as this onnxruntime can honour it: ``cuda`` / ``tensorrt`` become
    ``cpu`` where it has no CUDA provider (a benchmark's in-process reference on the ``bench/gpu`` host)."""
    import onnxruntime as ort

    if preference in ("cuda", "tensorrt") and CUDA not in ort.get_available_providers():
        return "cpu"
    return preference


def torch_instead(preference: str, instance_kind: str, device_id: str | int) -> str | None:
    """The torch device a model that also has a torch port runs on instead of onnxruntime, or None.

    ``DEVICE`` ``torch``: always (on the instance's GPU, else CUDA when torch sees one, else the CPU). ``auto``
    or ``cuda`` (or a ``KIND_GPU`` instance): only when torch sees a GPU that this onnxruntime cannot use (no
    CUDA provider: the pip ``onnxruntime``, as on the GPU host of ``bench/gpu``, where onnxruntime-gpu's CUDA
    libraries are not there to be installed). ``cpu`` and ``tensorrt``: never."""
    import onnxruntime as ort
    import torch

    if preference == "torch":
        return choose_device(instance_kind, device_id, "auto")
    if preference in ("cpu", "tensorrt") or CUDA in ort.get_available_providers():
        return None
    return choose_device(instance_kind, device_id, "cuda") if torch.cuda.is_available() else None


def weights_path(model_dir: Path, filename: str) -> Path:
    """The built weights file; a clear error when `fovea models build` has not been run."""
    path = model_dir / filename
    if not path.exists():
        raise FileNotFoundError(f"weights {path} are missing: run `fovea models build` first")
    return path


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_budget(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: its affinity set (a container's cpuset), capped by a cgroup v2 CPU quota
    (``cpu.max``, what ``docker run --cpus`` or a Kubernetes CPU limit sets), rounded up. More threads than
    the quota only wait for it: a 2-CPU container on a 64-core host ran 64 threads per session before."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            cpus = min(cpus, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to read: the affinity set decides
    return max(1, cpus)


def torch_threads() -> int:
    """Threads for a served model's session (``THREADS`` 0): ``FOVEA_TORCH_THREADS``, else
    :func:`cpu_budget`."""
    return int(os.environ.get("FOVEA_TORCH_THREADS", "0")) or cpu_budget()


# ------------------------------------------------------------------------------------------ onnxruntime
TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def choose_providers(
    instance_kind: str, device_id: int | str, preference: str, available: Sequence[str]
) -> list[str | tuple[str, dict[str, Any]]]:
    """onnxruntime providers, best first (CPU always last, as the fallback).

    Args:
        instance_kind: Triton's ``model_instance_kind`` (``CPU`` or ``GPU``).
        device_id: Triton's ``model_instance_device_id``.
        preference: the ``DEVICE`` parameter: ``auto``, ``cuda``, ``tensorrt`` or ``cpu``.
        available: ``onnxruntime.get_available_providers()``.

    Raises:
        ValueError: an unknown preference, or CUDA required (GPU instance, ``cuda`` or ``tensorrt``) but not
            available.
    """
    if preference not in ("auto", "cuda", "tensorrt", "cpu"):
        raise ValueError(f"DEVICE must be auto, cuda, tensorrt or cpu, got {preference!r}")
    gpu_instance = instance_kind.upper() == "GPU"
    wants_cuda = gpu_instance or preference in ("cuda", "tensorrt")
    if CUDA not in available:
        if wants_cuda:
            raise ValueError(
                f"CUDA requested ({'a KIND_GPU instance' if gpu_instance else f'DEVICE {preference}'}) but "
                f"this onnxruntime has only {list(available)}: install onnxruntime-gpu or use DEVICE auto"
            )
        return [CPU]
    if preference == "cpu" and not gpu_instance:
        return [CPU]
    gpu = int(device_id) if gpu_instance else 0
    providers: list[str | tuple[str, dict[str, Any]]] = []
    if preference == "tensorrt" and TENSORRT in available:
        providers.append(
            (TENSORRT, {"device_id": gpu, "trt_fp16_enable": True, "trt_engine_cache_enable": True})
        )
    return [*providers, (CUDA, {"device_id": gpu}), CPU]


def _worker_cpus(threads: int, allowed: Sequence[int] | None) -> list[int]:
    """The CPU each of the ``threads - 1`` workers of an intra-op pool is pinned to: the CPUs this process may
    use (``allowed``, default ``os.sched_getaffinity``), the second of them first, cycling; none when there is
    nothing to pin (one thread, or one CPU)."""
    cpus = sorted(os.sched_getaffinity(0) if allowed is None else allowed)
    if threads < 2 or len(cpus) < 2:
        return []
    return [cpus[(worker + 1) % len(cpus)] for worker in range(threads - 1)]


def worker_affinities(threads: int, allowed: Sequence[int] | None = None) -> str | None:
    """onnxruntime's ``session.intra_op_thread_affinities`` for an intra-op pool of ``threads`` threads: each
    worker pinned to one CPU (:func:`_worker_cpus`); the calling thread is left free (onnxruntime never pins
    it). None when there is nothing to pin.

    onnxruntime pins its workers only when it picks the thread count itself; with ``intra_op_num_threads``
    set they float, and on the 2-core machine a worker woken after the process idled lands on the core the
    caller runs on: the two then share a core for most of the run. A lone call after a 20 ms pause, the
    embedder (two threads spinning while the run lasts) took 12.4 ms unpinned against 6.2 pinned and 9.1 on
    one thread; RetinaFace 8.3 / 3.7 / 6.6 (``bench/README.md``, "Pinned workers")."""
    workers = _worker_cpus(threads, allowed)
    # onnxruntime numbers logical processors from 1
    return ";".join(str(cpu + 1) for cpu in workers) if workers else None


def caller_cpus(threads: int, allowed: Sequence[int] | None = None) -> frozenset[int] | None:
    """The CPUs the thread that calls ``run`` keeps to while a lone run lasts: those of ``allowed`` (default
    ``os.sched_getaffinity``) no worker of :func:`worker_affinities` is pinned to; None when every CPU has a
    worker (or there is nothing pinned)."""
    cpus = frozenset(os.sched_getaffinity(0) if allowed is None else allowed)
    free = cpus - set(_worker_cpus(threads, sorted(cpus)))
    return free if free and free != cpus else None


def set_intra_op_threads(options: Any, threads: int, pin: bool = True) -> None:
    """``threads`` intra-op threads on onnxruntime ``SessionOptions`` (0: onnxruntime's default, one per
    core, its workers pinned by onnxruntime), the workers pinned (:func:`worker_affinities`) unless ``pin``
    is False."""
    if not threads:
        return
    options.intra_op_num_threads = threads
    affinities = worker_affinities(threads) if pin else None
    if affinities is not None:
        options.add_session_config_entry("session.intra_op_thread_affinities", affinities)


def onnx_session(
    path: Path,
    providers: Sequence[str | tuple[str, dict[str, Any]]] = (CPU,),
    threads: int = 0,
    spinning: bool | str = True,
    pin: bool = True,
) -> Any:
    """An ``onnxruntime.InferenceSession`` with full graph optimisation and ``threads`` intra-op threads
    (0 = onnxruntime's default, one per core). ``spinning`` False: worker threads sleep between operators
    instead of busy-waiting (onnxruntime's default is to spin); ``"run"``: they spin while a run lasts and stop
    as soon as it returns (``session.force_spinning_stop``). ``pin``: the workers pinned
    (:func:`worker_affinities`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    set_intra_op_threads(options, threads, pin)
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    elif spinning == "run":  # spin between the operators of a run, never after it returns
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(path), options, providers=list(providers))


class SplitSession:
    """A served ONNX model on the CPU, run the way each batch runs best. A lone image on a session whose
    intra-op threads use every core (the lowest latency): with ``alone`` and ``board``, on ``alone`` (threads
    that spin while the run lasts) when no other served model instance on the host is running, else on
    ``busy``, a one-thread session (default: the first narrow one; ``wide``, whose threads sleep between
    operators, without either). A batch of several,
    which only forms when requests queue, i.e. under load, on ``len(narrow)`` one-thread sessions, the batch
    divided between them and run at the same time (onnxruntime releases the GIL); without narrow sessions, on
    ``wide``. With two Triton instances of the model and one narrow session each, two batches run side by
    side on one thread each: under load that beats every instance using every core, whose threads then
    contend for the cores.

    Measured (``bench/README.md``, an imported NanoDet through the gateway, 2 cores, 4 alternating rounds of
    15 s): concurrency 8, 23.6 images/s with one 2-thread instance, 25.5 with two instances split this way
    (in-process reference 27.8); concurrency 1 unchanged (18.6 / 18.5).

    Quacks like ``onnxruntime.InferenceSession`` (``run``, and everything else from the wide session); the
    outputs are those of one session: the parts are concatenated in order.
    """

    def __init__(
        self,
        wide: Any,
        narrow: Sequence[Any] = (),
        alone: Any | None = None,
        board: InstanceBoard | None = None,
        caller: frozenset[int] | None = None,
        busy: Any | None = None,
    ) -> None:
        if alone is not None and board is None:
            raise ValueError("a session for lone runs needs the board that says when a run is alone")
        from concurrent.futures import ThreadPoolExecutor

        self.wide = wide
        self.narrow = list(narrow)
        self.alone = alone
        self.board = board
        self.caller = caller
        self.busy = busy if busy is not None else (self.narrow[0] if self.narrow else None)
        self._pool = ThreadPoolExecutor(len(self.narrow), "onnx-part") if self.narrow else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wide, name)

    def run(self, names: Sequence[str] | None, feeds: Mapping[str, np.ndarray], *args: Any) -> list[Any]:
        if self.board is None:
            return self._run(names, feeds, *args)
        self.board.running(True)
        try:
            return self._run(names, feeds, *args)
        finally:
            self.board.running(False)

    def lone_session(self) -> Any:
        """The session a lone image (or a batch without narrow sessions) runs on now: ``alone`` when no other
        served instance on the host is running; while one is, ``busy``, a one-thread session (the first
        narrow one unless given: the cores are taken, and two instances each running a lone image on every
        core made RetinaFace at concurrency 8 lose a fifth of its rate, 276 -> 220 calls/s), else ``wide``."""
        if self.alone is None or self.board is None:
            return self.wide
        if self.board.others_running():
            return self.busy if self.busy is not None else self.wide
        return self.alone

    def _run(self, names: Sequence[str] | None, feeds: Mapping[str, np.ndarray], *args: Any) -> list[Any]:
        sizes = {v.shape[0] if v.ndim else -1 for v in feeds.values()}
        size = next(iter(sizes)) if len(sizes) == 1 else 1
        if size < 2 or self._pool is None:
            lone = self.lone_session()
            caller = self.caller if lone is self.alone else None
            if caller is None:
                return list(lone.run(names, feeds, *args))
            # Alone: the calling thread keeps off the workers' cores while the run lasts, or the scheduler may
            # wake it on the core of the worker it shares the run with (the two then take turns on one core)
            previous = os.sched_getaffinity(0)
            try:
                os.sched_setaffinity(0, caller)
            except OSError:  # the CPUs allowed changed since the session was made: run where it is
                previous = set()
            try:
                return list(lone.run(names, feeds, *args))
            finally:
                if previous:
                    os.sched_setaffinity(0, previous)
        parts = min(size, len(self.narrow))
        bounds = np.linspace(0, size, parts + 1).astype(int)
        futures = [
            self._pool.submit(session.run, names, {k: v[a:b] for k, v in feeds.items()}, *args)
            for session, a, b in zip(self.narrow, bounds[:-1], bounds[1:], strict=False)
        ]
        results = [f.result() for f in futures]
        return [np.concatenate([r[k] for r in results]) for k in range(len(results[0]))]


def _dynamic_batch(session: Any) -> bool:
    """Whether every input of ``session`` has a free (symbolic) first axis: only then may a batch be split."""
    return all(not isinstance(i.shape[0], int) for i in session.get_inputs() if i.shape)


SPINNING_POLICIES: dict[str, bool | str] = {"0": False, "1": True, "run": "run", "alone": "alone"}
"""``SPINNING``: 0 threads sleep between operators; 1 they spin (onnxruntime's default, also after a run
returns, for a while); run: they spin between the operators of a run and stop as it returns; alone (the
default): as run when no other served model instance on the host is running at the time, else as 0
(:class:`SplitSession`, :mod:`fovea.serving.instances`)."""

PIN_POLICIES = ("0", "workers", "alone")
"""``PIN``: 0 nothing pinned; workers: each session's intra-op workers pinned (:func:`worker_affinities`);
alone (the default): that, and a lone run on the ``alone`` session keeps its caller off the workers' cores
(:func:`caller_cpus`)."""

SESSION_PARAMETERS = ("WEIGHTS", "DEVICE", "THREADS", "SPINNING", "BATCH_SPLIT", "PIN")
"""The parameters only the python flavour's onnxruntime session reads (the native backend has its own)."""


def session_for(model_dir: Path, params: Mapping[str, str], instance_kind: str, device_id: int | str) -> Any:
    """The session a served ONNX model runs: ``WEIGHTS`` in ``model_dir``, providers from ``DEVICE``,
    ``THREADS`` intra-op threads (0 or absent: ``FOVEA_TORCH_THREADS``, else every core). On the CPU with
    ``THREADS`` > 1, a :class:`SplitSession`: with a dynamic batch axis, batches of two or more run on
    ``BATCH_SPLIT`` one-thread sessions (absent: 1; ``off``: on the wide session too); with ``SPINNING``
    ``alone`` (the default), a lone image runs on a session whose threads spin while the run lasts when no
    other served model instance on the host is running, else on a one-thread session (a narrow one, or for
    a fixed batch a one-thread session of its own: an imported YOLOX stand-in at concurrency 8 served
    79.0-82.2 images/s with those images on the two-thread wide session, 86.0-88.8 on one thread); a
    one-thread model's runs are marked on the same board (nothing of its own spins).
    ``PIN`` (:data:`PIN_POLICIES`, default ``alone``): the sessions' workers pinned to cores, and a lone run
    on the ``alone`` session keeps its caller off them (interleaved lone Triton calls after a 20 ms pause,
    p50: RetinaFace 10.8 ms unpinned, 9.0 pinned; the embedder 11.4 / 9.9; ``nanodet_int8`` 29.7 / 29.3;
    whole Detect requests through the gateway the same within 4%).

    A served model shares the cores with the gateway, the services and the other models: threads that spin
    after each operator burned 22 ms of CPU per NanoDet inference those need (stub CPU 63.7 -> 41.7 ms per
    request, p50 unchanged, throughput at concurrency 8 +5%; ``bench/breakdown.py``). A config may still ask
    for spinning with the parameter ``SPINNING`` = ``1`` (on a later, slower machine a lone Triton call was
    faster with it, whole requests through the gateway were not, within a noise of +-20%). Spinning while a
    lone run lasts (``run``) took NanoDet from 29.0 to 20.9 ms but cost concurrency 8 6-12% of its rate (each
    instance's spinning threads took the cores from the other's batch): ``alone`` spins only when nothing
    else served runs (``bench/README.md``)."""
    import onnxruntime as ort

    providers = choose_providers(
        instance_kind, device_id, params.get("DEVICE") or "auto", ort.get_available_providers()
    )
    threads = int(params.get("THREADS") or 0) or torch_threads()
    spinning = SPINNING_POLICIES.get(params.get("SPINNING") or "alone")
    if spinning is None:
        raise ValueError(f"SPINNING must be one of {sorted(SPINNING_POLICIES)}, got {params['SPINNING']!r}")
    pinning = params.get("PIN") or "alone"
    if pinning not in PIN_POLICIES:
        raise ValueError(f"PIN must be one of {list(PIN_POLICIES)}, got {pinning!r}")
    pin = pinning != "0"
    split = params.get("BATCH_SPLIT") or "1"
    parts = 0 if split == "off" else int(split)
    if parts < 0:
        raise ValueError(f"BATCH_SPLIT must be off or a count of one-thread sessions, got {split!r}")
    path = weights_path(model_dir, params["WEIGHTS"])
    adaptive = spinning == "alone"
    wide = onnx_session(path, providers, threads, spinning=False if adaptive else spinning, pin=pin)
    if providers != [CPU]:
        return wide
    if threads < 2:  # nothing to spin, but its runs go on the board, so that others do not spin meanwhile
        return SplitSession(wide, board=process_board()) if adaptive else wide
    narrow = (
        [onnx_session(path, providers, 1, spinning=False) for _ in range(parts)]
        if _dynamic_batch(wide)
        else []
    )
    if not adaptive:
        return SplitSession(wide, narrow) if narrow else wide
    alone = onnx_session(path, providers, threads, spinning="run", pin=pin)
    caller = caller_cpus(threads) if pinning == "alone" else None
    # A fixed batch has no narrow sessions, but its images still run one at a time while the other instances
    # run: on one thread, not on every core (bench/README.md, "A fixed batch of 1 under load")
    busy = None if narrow else onnx_session(path, providers, 1, spinning=False)
    return SplitSession(wide, narrow, alone, process_board(), caller, busy)


def read_config(path: Path) -> dict[str, Any]:
    """A ``config.pbtxt`` as the JSON dict Triton hands ``initialize`` (``args["model_config"]``), parsed with
    Triton's own ``ModelConfig`` message, so tests and benchmarks can load a served model without a server."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    message = text_format.Parse(Path(path).read_text(), model_config_pb2.ModelConfig())
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class UInt8ImageModel:
    """A served graph with one uint8 image input ``INPUT`` ``[N, H, W, 3]`` and fixed named outputs (NanoDet's
    and CenterNet's candidates graphs): one onnxruntime session, a gathered batch in one call.

    Raises ``ValueError`` at load when the ONNX file's tensors are not the contract's (a stale build)."""

    def __init__(self, session: Any, contract: Contract) -> None:
        inputs = [(i.name, i.type) for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [("INPUT", "tensor(uint8)")] or outputs != list(contract.output_names):
            raise ValueError(
                f"the ONNX file has inputs {inputs} and outputs {outputs}; expected INPUT uint8 and "
                f"{list(contract.output_names)}: rebuild it with `fovea models build --only {contract.name} --force`"
            )
        self.session = session
        self.contract = contract

    def _run(self, batch: Arrays) -> Arrays:
        outputs = self.session.run(list(self.contract.output_names), {"INPUT": batch["INPUT"]})
        return dict(zip(self.contract.output_names, outputs, strict=True))

    def execute(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[Arrays | RequestError]:
        """One entry per request: its outputs for its ``n`` images, or its ``RequestError``."""
        return run_batched(requests, self.contract.input_dims, self._run, self.contract.input_dtypes)

    def describe(self) -> str:
        return f"onnxruntime {', '.join(self.session.get_providers())}"
