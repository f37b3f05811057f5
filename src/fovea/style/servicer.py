"""The style service's request path: validate at submit time, queue a Celery job, report its state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

import grpc
from celery import Celery

from fovea.common.errors import InvalidArgument, ResourceExhausted, UpstreamUnavailable, clip, public_message
from fovea.common.images import decode_image, limits_from
from fovea.contracts.styles import StyleInfo
from fovea.style.config import StyleSettings
from fovea.style.core.jobs import TERMINAL, JobKind, check_image_size, gatys_params, params_json
from fovea.style.metrics import JOBS_SUBMITTED, QUEUE_DEPTH
from fovea.style.store import RESULT_EXPIRED, Job, JobStore
from fovea.style.tasks import QUEUE, TASK_NAME
from fovea.style.v1 import style_pb2, style_pb2_grpc

OPTIMIZERS: dict[int, str] = {
    style_pb2.OPTIMIZER_UNSPECIFIED: "lbfgs",
    style_pb2.LBFGS: "lbfgs",
    style_pb2.ADAM: "adam",
}
INITS: dict[int, str] = {
    style_pb2.INIT_UNSPECIFIED: "content",
    style_pb2.CONTENT: "content",
    style_pb2.NOISE: "noise",
}

log = logging.getLogger(__name__)


def _choice(field: str, value: int, known: Mapping[int, str], enum: str) -> str:
    """The name ``value`` of a proto enum stands for; ``InvalidArgument`` listing the known ones if none."""
    if value not in known:
        names = ", ".join(getattr(style_pb2, enum).Name(v) for v in known)
        raise InvalidArgument(f"{field} {value} is not a known {enum}; known: {names}")
    return known[value]


class StyleServicer(style_pb2_grpc.StyleServiceServicer):
    def __init__(
        self, settings: StyleSettings, store: JobStore, celery: Celery, styles: Sequence[StyleInfo]
    ) -> None:
        self.settings = settings
        self.store = store
        self.celery = celery
        self.styles = tuple(styles)
        self.limits = limits_from(settings)
        # a style by its name or its styleN alias
        self._by_name = {**{s.alias: s for s in self.styles}, **{s.name: s for s in self.styles}}

    def queue_depth(self) -> int:
        depth = self.store.queue_length(QUEUE)
        QUEUE_DEPTH.set(depth)
        return depth

    def _validate(
        self, request: style_pb2.SubmitJobRequest
    ) -> tuple[JobKind, str, dict[str, object], dict[str, bytes]]:
        """Everything that can be refused is refused here, before anything is stored or queued."""
        content = decode_image(request.content.data, self.limits)  # INVALID_ARGUMENT names what is wrong
        blobs = {"content": request.content.data}
        which = request.WhichOneof("style")
        if which == "style_name":
            style = self._by_name.get(request.style_name)
            if style is None:
                names = ", ".join(s.name for s in self.styles)
                raise InvalidArgument(
                    f"unknown style {clip(request.style_name)!r}; known: {names} (or their aliases styleN)"
                )
            side = request.max_side or self.settings.fast_max_side
            if not 32 <= side <= self.settings.fast_max_side:
                raise InvalidArgument(
                    f"max_side must be within [32, {self.settings.fast_max_side}], got {side}"
                )
            check_image_size("content", content.shape[0], content.shape[1], side)
            return JobKind.FAST, style.name, {"max_side": side}, blobs
        if which != "style_image":
            raise InvalidArgument("give a style: style_name (feed-forward) or style_image (Gatys)")
        style_pixels = decode_image(request.style_image.data, self.limits)
        blobs["style"] = request.style_image.data
        g = (
            request.gatys
            if request.HasField("gatys")
            else style_pb2.GatysParams(iterations=self.settings.gatys_default_iterations)
        )
        params = gatys_params(
            iterations=g.iterations,
            max_side=g.max_side,
            alpha=g.alpha,
            beta=g.beta,
            optimizer=_choice("gatys.optimizer", g.optimizer, OPTIMIZERS, "Optimizer"),
            init=_choice("gatys.init", g.init, INITS, "Init"),
            learning_rate=g.learning_rate,
            content_layer=g.content_layer,
            style_layers=dict(g.style_layers),
            preview_every=g.preview_every,
            max_iterations=self.settings.gatys_max_iterations,
            default_side=self.settings.gatys_default_side,
            max_side_limit=self.settings.gatys_max_side,
        )
        check_image_size("content", content.shape[0], content.shape[1], params.max_side)
        check_image_size("style", style_pixels.shape[0], style_pixels.shape[1], params.max_side)
        return JobKind.GATYS, "", params_json(params), blobs

    def _submit(self, request: style_pb2.SubmitJobRequest) -> Job:
        kind, style_name, params, blobs = self._validate(request)
        if self.queue_depth() >= self.settings.max_queued_jobs:
            raise ResourceExhausted(
                f"{self.settings.max_queued_jobs} style jobs are queued already, the most the service takes "
                "(FOVEA_STYLE_MAX_QUEUED_JOBS): retry in a few seconds, as jobs finish"
            )
        job_id, created = self.store.create(
            kind, style_name, params, blobs, request.idempotency_key, request.preserve_color
        )
        # The answer is the job as submitted (a new one QUEUED), read before a worker can take it: read after
        # the task is sent, an idle worker had sometimes marked it RUNNING already
        job = self.store.get(job_id)
        if created:
            try:
                self.celery.send_task(TASK_NAME, args=[job_id, kind.value], task_id=job_id, queue=QUEUE)
            except Exception as exc:  # noqa: BLE001 - any broker failure: undo, nothing stays queued
                log.warning("could not queue job %s: %s: %s", job_id, type(exc).__name__, exc)
                self.store.delete(job_id)
                raise UpstreamUnavailable(
                    "could not queue the job: the job queue (Redis) is unavailable"
                ) from exc
            JOBS_SUBMITTED.labels(kind.value).inc()
        return job

    def _proto(self, job: Job, with_result: bool = True) -> style_pb2.Job:
        message = style_pb2.Job(
            job_id=job.job_id,
            state=cast(style_pb2.JobState, style_pb2.JobState.Value(job.state.value)),
            progress=style_pb2.Progress(
                iteration=job.iteration,
                total_iterations=job.total_iterations,
                content_cost=job.content_cost,
                style_cost=job.style_cost,
                total_cost=job.total_cost,
            ),
            error=public_message(job.error),  # the worker's log keeps the full text
            created_unix_ms=job.created_ms,
            updated_unix_ms=job.updated_ms,
            kind=job.kind.value,
            preserve_color=job.preserve_color,
        )
        if job.state.value != "SUCCEEDED":
            return message
        result = self.store.blob(job.job_id, "result") if with_result and not job.result_expired else None
        if job.result_expired or (with_result and result is None):  # dropped by the caps, or by the TTL
            message.result_expired = True
            message.error = RESULT_EXPIRED
        elif result is not None:
            message.result_png = result
        return message

    async def SubmitJob(
        self, request: style_pb2.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> style_pb2.Job:
        job = await asyncio.to_thread(self._submit, request)
        return self._proto(job, with_result=False)

    async def GetJob(
        self, request: style_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> style_pb2.Job:
        job = await asyncio.to_thread(self.store.get, request.job_id)
        return await asyncio.to_thread(self._proto, job, not request.omit_result)

    async def WatchJob(
        self, request: style_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[style_pb2.Job]:
        last = None
        while True:
            job = await asyncio.to_thread(self.store.get, request.job_id)
            seen = (job.state, job.updated_ms, job.iteration)
            if seen != last:
                last = seen
                final = job.state in TERMINAL
                preview = None if final else await asyncio.to_thread(self.store.blob, job.job_id, "preview")
                message = await asyncio.to_thread(self._proto, job, final)
                if preview:
                    message.progress.preview_png = preview
                yield message
                if final:
                    return
            await asyncio.sleep(self.settings.watch_poll_s)

    async def CancelJob(
        self, request: style_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> style_pb2.Job:
        job = await asyncio.to_thread(self.store.request_cancel, request.job_id)
        return self._proto(job, with_result=False)

    async def ListStyles(
        self, request: style_pb2.ListStylesRequest, context: grpc.aio.ServicerContext
    ) -> style_pb2.ListStylesResponse:
        return style_pb2.ListStylesResponse(
            styles=[
                style_pb2.StyleInfo(
                    name=s.name,
                    index=s.index,
                    description=s.description,
                    aliases=[s.alias] if s.alias != s.name else [],
                )
                for s in self.styles
            ]
        )
