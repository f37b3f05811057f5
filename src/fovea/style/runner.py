"""What a worker does with one job: the Triton calls, the job's state changes and its heartbeat (used by
tasks.py).

A run claims the job (QUEUED -> RUNNING, or RUNNING -> RUNNING when the last heartbeat is stale) under an
owner token of its own; a thread marks every job this process runs as alive every ``heartbeat_interval_s`` (``fovea.common.jobs.Heartbeats``).
When a worker dies its heartbeats stop, and the style service requeues the job (``fovea.style.reaper``);
a run whose job was taken over in the meantime changes nothing (the store checks the owner) and stops.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from fovea.common.errors import FoveaError, UpstreamUnavailable
from fovea.common.images import ImageLimits, decode_image, encode_png
from fovea.common.jobs import Heartbeats, new_owner
from fovea.common.triton import SyncTritonClient
from fovea.contracts.styles import style_index
from fovea.style.core.color import preserve_color
from fovea.style.core.images import fit_array
from fovea.style.core.jobs import TERMINAL, JobKind, JobState
from fovea.style.store import Job, JobStore, now_ms

log = logging.getLogger(__name__)

GATYS_OUTPUTS = ("ITERATION", "COSTS", "PREVIEW", "IMAGE")


class Cancelled(Exception):
    pass


class TimeLimitExceeded(Exception):
    pass


class TakenOver(Exception):
    """The job is no longer this run's (its heartbeat was missed and it was requeued, or it ended)."""


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        triton: SyncTritonClient,
        *,
        time_limit_s: float,
        limits: ImageLimits,
        heartbeats: Heartbeats,
        heartbeat_timeout_s: float,
    ) -> None:
        self.store = store
        self.triton = triton
        self.time_limit_s = time_limit_s
        self.limits = limits
        self.heartbeats = heartbeats
        self.heartbeat_timeout_s = heartbeat_timeout_s

    def _stale_before(self) -> int:
        return now_ms() - int(self.heartbeat_timeout_s * 1000)

    def run(self, job_id: str) -> JobState:
        """Run the job to a final state; raises ``UpstreamUnavailable`` for the task to retry.

        Returns the job's state when this run ends; RUNNING when another live run has it.
        """
        job = self.store.get(job_id)
        if job.state in TERMINAL:
            log.info("job %s is already %s: nothing to do", job_id, job.state)
            return job.state
        stale = self._stale_before()
        if job.cancel_requested:
            self.store.transition(job_id, JobState.CANCELLED, {"error": "cancelled"}, stale_before_ms=stale)
            return self.store.get(job_id).state
        owner = new_owner()
        done, before = self.store.transition(
            job_id,
            JobState.RUNNING,
            {"attempts": job.attempts + 1, "owner": owner, "error": ""},
            stale_before_ms=stale,
        )
        if not done:
            log.info("job %s not taken: it is %s (a live run has it, or it ended)", job_id, before)
            return JobState(before) if before else JobState.FAILED
        self.heartbeats.add(job_id, owner)
        try:
            return self._run_owned(job, owner)
        finally:
            self.heartbeats.remove(job_id)

    def _run_owned(self, job: Job, owner: str) -> JobState:
        job_id = job.job_id
        deadline = time.monotonic() + self.time_limit_s
        try:
            if job.kind == JobKind.FAST:
                content = self._image(job_id, "content", int(job.params["max_side"]))
                result = self._fast(job.style_name, content)
            else:
                content = self._image(job_id, "content", int(job.params["max_side"]))
                result = self._gatys(job_id, owner, content, job.params, deadline)
            if job.preserve_color:
                result = preserve_color(content, result)
        except TakenOver:
            return self.store.get(job_id).state
        except TimeLimitExceeded:
            return self._end(
                job_id, owner, JobState.FAILED, {"error": f"time limit of {self.time_limit_s:.0f}s exceeded"}
            )
        except Cancelled:
            return self._end(job_id, owner, JobState.CANCELLED, {"error": "cancelled while running"})
        except UpstreamUnavailable:
            self.store.transition(
                job_id,
                JobState.QUEUED,
                {"error": "waiting for Triton to come back", "owner": ""},
                owner=owner,
            )
            raise
        except FoveaError as exc:
            return self._end(job_id, owner, JobState.FAILED, {"error": str(exc)})
        return self._end(
            job_id,
            owner,
            JobState.SUCCEEDED,
            {"error": "", "iteration": job.total_iterations},
            encode_png(result),
        )

    def _end(
        self,
        job_id: str,
        owner: str,
        state: JobState,
        fields: dict[str, object],
        result: bytes | None = None,
    ) -> JobState:
        done, before = self.store.transition(job_id, state, fields, result, owner=owner)
        if not done:
            log.warning("job %s ended %s here but was %s already: not recorded", job_id, state, before)
        return state if done else JobState(before) if before else JobState.FAILED

    def _image(self, job_id: str, part: str, max_side: int) -> np.ndarray:
        data = self.store.blob(job_id, part)
        if data is None:
            raise FoveaError(f"job {job_id} has lost its {part} image (expired?)")
        return fit_array(decode_image(data, self.limits), max_side)

    def _fast(self, style_name: str, content: np.ndarray) -> np.ndarray:
        try:
            index = style_index(style_name)
        except ValueError as exc:  # a job stored by a version with other names
            raise FoveaError(str(exc)) from exc
        out = self.triton.infer(
            "style_fast",
            {"IMAGE": content[None], "STYLE_INDEX": np.array([[index]], dtype=np.int32)},
            ["IMAGE"],
        )
        return np.asarray(out["IMAGE"][0])

    def _gatys(
        self, job_id: str, owner: str, content: np.ndarray, params: dict[str, object], deadline: float
    ) -> np.ndarray:
        max_side = int(params["max_side"])  # type: ignore[call-overload]
        style = self._image(job_id, "style", max_side)
        final: list[np.ndarray] = []
        stopped: list[str] = []

        def on_response(out: dict[str, np.ndarray]) -> bool:
            iteration = int(out["ITERATION"][0])
            j_content, j_style, j_total = (float(v) for v in out["COSTS"])
            preview = encode_png(out["PREVIEW"]) if out["PREVIEW"].size else None
            if out["IMAGE"].size:
                final.append(out["IMAGE"])
            ours = self.store.heartbeat(
                job_id,
                owner,
                {
                    "iteration": iteration,
                    "content_cost": j_content,
                    "style_cost": j_style,
                    "total_cost": j_total,
                },
                preview,
            )
            if not ours or self.heartbeats.lost(job_id):
                stopped.append("taken over")
                return False
            if time.monotonic() > deadline:
                stopped.append("time")
                return False
            return not self.store.cancel_requested(job_id)

        self.triton.stream(
            "style_gatys",
            {
                "CONTENT": content,
                "STYLE": style,
                "PARAMS": np.array([json.dumps(params).encode()], dtype=np.object_),
            },
            GATYS_OUTPUTS,
            on_response,
        )
        if "taken over" in stopped:
            raise TakenOver()
        if stopped:
            raise TimeLimitExceeded()
        if self.store.cancel_requested(job_id):
            raise Cancelled()
        if not final:
            raise FoveaError("style_gatys finished without a result image")
        return np.asarray(final[-1])
