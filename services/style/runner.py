"""What a worker does with one job: the Triton calls and the job's state changes (used by tasks.py)."""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from fovea.common.errors import FoveaError, UpstreamUnavailable
from fovea.common.images import ImageLimits, decode_image, encode_png
from fovea.common.triton import SyncTritonClient
from fovea.style.core.images import fit_array
from fovea.style.core.jobs import TERMINAL, JobKind, JobState
from fovea.style.store import JobStore

log = logging.getLogger(__name__)

GATYS_OUTPUTS = ("ITERATION", "COSTS", "PREVIEW", "IMAGE")


class Cancelled(Exception):
    pass


class TimeLimitExceeded(Exception):
    pass


class JobRunner:
    def __init__(
        self, store: JobStore, triton: SyncTritonClient, style_names: tuple[str, ...], time_limit_s: float
    ) -> None:
        self.store = store
        self.triton = triton
        self.style_names = style_names
        self.time_limit_s = time_limit_s
        self.limits = ImageLimits()

    def run(self, job_id: str) -> JobState:
        """Run the job to a final state; raises ``UpstreamUnavailable`` for the task to retry."""
        job = self.store.get(job_id)
        if job.state in TERMINAL:
            log.info("job %s is already %s: nothing to do", job_id, job.state)
            return job.state
        if job.cancel_requested:
            self.store.transition(job_id, JobState.CANCELLED, {"error": "cancelled"})
            return JobState.CANCELLED
        done, before = self.store.transition(job_id, JobState.RUNNING, {"attempts": job.attempts + 1})
        if not done:
            return JobState(before) if before else JobState.FAILED
        deadline = time.monotonic() + self.time_limit_s
        try:
            if job.kind == JobKind.FAST:
                result = self._fast(job_id, job.style_name, int(job.params["max_side"]))
            else:
                result = self._gatys(job_id, job.params, deadline)
        except TimeLimitExceeded:
            self.store.transition(
                job_id, JobState.FAILED, {"error": f"time limit of {self.time_limit_s:.0f}s exceeded"}
            )
            return JobState.FAILED
        except Cancelled:
            self.store.transition(job_id, JobState.CANCELLED, {"error": "cancelled while running"})
            return JobState.CANCELLED
        except UpstreamUnavailable:
            self.store.transition(job_id, JobState.QUEUED, {"error": "waiting for Triton to come back"})
            raise
        except FoveaError as exc:
            self.store.transition(job_id, JobState.FAILED, {"error": str(exc)})
            return JobState.FAILED
        done, before = self.store.transition(
            job_id,
            JobState.SUCCEEDED,
            {"error": "", "iteration": job.total_iterations},
            blob=("result", result),
        )
        return JobState.SUCCEEDED if done else JobState(before)

    def _image(self, job_id: str, part: str, max_side: int) -> np.ndarray:
        data = self.store.blob(job_id, part)
        if data is None:
            raise FoveaError(f"job {job_id} has lost its {part} image (expired?)")
        return fit_array(decode_image(data, self.limits), max_side)

    def _fast(self, job_id: str, style_name: str, max_side: int) -> bytes:
        content = self._image(job_id, "content", max_side)
        index = self.style_names.index(style_name)
        out = self.triton.infer(
            "style_fast",
            {"IMAGE": content[None], "STYLE_INDEX": np.array([[index]], dtype=np.int32)},
            ["IMAGE"],
        )
        return encode_png(out["IMAGE"][0])

    def _gatys(self, job_id: str, params: dict[str, object], deadline: float) -> bytes:
        max_side = int(params["max_side"])  # type: ignore[call-overload]
        content = self._image(job_id, "content", max_side)
        style = self._image(job_id, "style", max_side)
        final: list[np.ndarray] = []
        stopped: list[str] = []

        def on_response(out: dict[str, np.ndarray]) -> bool:
            iteration = int(out["ITERATION"][0])
            j_content, j_style, j_total = (float(v) for v in out["COSTS"])
            preview = encode_png(out["PREVIEW"]) if out["PREVIEW"].size else None
            if out["IMAGE"].size:
                final.append(out["IMAGE"])
            self.store.progress(
                job_id,
                {
                    "iteration": iteration,
                    "content_cost": j_content,
                    "style_cost": j_style,
                    "total_cost": j_total,
                },
                preview,
            )
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
        if stopped:
            raise TimeLimitExceeded()
        if self.store.cancel_requested(job_id):
            raise Cancelled()
        if not final:
            raise FoveaError("style_gatys finished without a result image")
        return encode_png(final[-1])
