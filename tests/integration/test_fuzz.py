"""A seeded fuzz of every public RPC through the real gateway: no caller's mistake is INTERNAL or UNKNOWN.

Per method, a fixed number of requests generated from the method's request type: random field values
(ids long and short, odd characters, unknown enum values, NaN and huge numbers, empty / corrupt / tiny /
small valid images, many repeats), the same messages with bytes flipped, and raw garbage, including the
issue's undecodable ``\\x0a\\xff\\xff\\xff\\xff\\x0f``. Client streams get one bad message among good ones.
Style jobs that happen to be valid are cancelled at the end. Ids are prefixed, so nothing another test
made is touched.
"""

from __future__ import annotations

import asyncio
import io
import math
import random
import time
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from PIL import Image

from fovea.classify.v1 import classify_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.models.v1 import models_pb2
from fovea.style.v1 import style_pb2

from .conftest import Stack

pytestmark = pytest.mark.integration

SEED = 20240917
PER_METHOD = 20  # x 24 methods = 480 generated requests, plus the fixed undecodable one per method
CONCURRENCY = 6
TIMEOUT_S = 20.0
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
UNDECODABLE = b"\x0a\xff\xff\xff\xff\x0f"

SERVICES = [
    detection_pb2.DESCRIPTOR.services_by_name["DetectionService"],
    faces_pb2.DESCRIPTOR.services_by_name["FacesService"],
    style_pb2.DESCRIPTOR.services_by_name["StyleService"],
    models_pb2.DESCRIPTOR.services_by_name["ModelsService"],
    classify_pb2.DESCRIPTOR.services_by_name["ClassifyService"],
]


def _png(width: int, height: int, seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))  # type: ignore[arg-type]
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buf, format="JPEG")
    return buf.getvalue()


IMAGES = [
    b"",
    b"not an image",
    _png(8, 8, 1),
    _png(16, 16, 2),
    _png(64, 48, 3),
    _jpeg(96, 64),
    _jpeg(96, 64)[:200],
]
STRINGS = [
    "",
    " ",
    "*",
    "../../x",
    "fz-a",
    "fz-a",
    "fz-b",
    "style1",
    "nanodet",
    "person",
    "relu1_1",
    "fz-é☃",
    "fz-\x00nul",
    "fz-" + "x" * 300,
    "fz-" + "y" * 100_000,
]
FLOATS = [0.0, -1.0, 0.5, 1.0, 1e38, -1e38, math.inf, math.nan, 1e-30]
INTS = [0, 1, -1, 7, 2**31 - 1, -(2**31), 100_000]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def message(self, descriptor: Descriptor, depth: int = 0) -> Message:
        message = message_factory.GetMessageClass(descriptor)()
        oneofs_done: set[str] = set()
        for fd in descriptor.fields:
            if self.rng.random() < 0.35:
                continue
            if fd.containing_oneof is not None:
                if fd.containing_oneof.name in oneofs_done:
                    continue
                oneofs_done.add(fd.containing_oneof.name)
            self._fill(message, fd, depth)
        return message

    def _fill(self, message: Message, fd: FieldDescriptor, depth: int) -> None:
        target = getattr(message, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            for _ in range(self._count()):
                key = (
                    self.rng.choice(STRINGS)
                    if self.rng.random() < 0.5
                    else self.rng.choice(["relu1_1", "team"])
                )
                if value_fd.type == FieldDescriptor.TYPE_STRING:
                    target[key] = self.rng.choice(STRINGS)
                else:
                    target[key] = self.rng.choice(FLOATS)
            return
        if fd.is_repeated:
            for _ in range(self._count()):
                if fd.message_type is not None:
                    target.add().CopyFrom(self.message(fd.message_type, depth + 1))
                else:
                    target.append(self._scalar(fd))
            return
        if fd.message_type is not None:
            if depth < 3:
                getattr(message, fd.name).CopyFrom(self.message(fd.message_type, depth + 1))
            return
        setattr(message, fd.name, self._scalar(fd))

    def _count(self) -> int:
        return self.rng.choice([0, 1, 2, 3, 3, 300])

    def _scalar(self, fd: FieldDescriptor) -> object:
        t = fd.type
        if t == FieldDescriptor.TYPE_STRING:
            return self.rng.choice(STRINGS)
        if t == FieldDescriptor.TYPE_BYTES:
            return self.rng.choice(IMAGES)
        if t == FieldDescriptor.TYPE_BOOL:
            return self.rng.random() < 0.5
        if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return self.rng.choice(FLOATS)
        if t == FieldDescriptor.TYPE_ENUM:
            assert fd.enum_type is not None
            return self.rng.choice([*fd.enum_type.values_by_number, 7, -1])
        value = self.rng.choice(INTS)
        if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED32):
            return abs(value)
        return value

    def request(self, method: MethodDescriptor) -> bytes:
        roll = self.rng.random()
        if roll < 0.1:
            return self.rng.randbytes(self.rng.randrange(1, 64))
        data = bytearray(self.message(method.input_type).SerializeToString())
        if roll < 0.3 and data:
            for _ in range(self.rng.randrange(1, 4)):
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
        return bytes(data)


def style_jobs(method: MethodDescriptor, reply: bytes | None) -> str | None:
    if method.name == "SubmitJob" and reply:
        return str(style_pb2.Job.FromString(reply).job_id)
    return None


async def call(
    channel: grpc.aio.Channel, path: str, method: MethodDescriptor, data: bytes, md: tuple
) -> tuple:
    """(status code, details, reply of a unary call)."""
    try:
        if method.client_streaming:

            async def requests() -> AsyncIterator[bytes]:
                yield data
                yield UNDECODABLE

            stream = channel.stream_stream(path)(requests(), metadata=md, timeout=TIMEOUT_S)
            async for _ in stream:
                pass
            return grpc.StatusCode.OK, "", None
        if method.server_streaming:
            async for _ in channel.unary_stream(path)(data, metadata=md, timeout=TIMEOUT_S):
                pass
            return grpc.StatusCode.OK, "", None
        reply = await channel.unary_unary(path)(data, metadata=md, timeout=TIMEOUT_S)
        return grpc.StatusCode.OK, "", reply
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or "", None


async def fuzz(stack: Stack) -> tuple[Counter[str], list[str], list[str]]:
    gen = Generator(SEED)
    cases: list[tuple[str, MethodDescriptor, bytes]] = []
    for service in SERVICES:
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            cases.append((path, method, UNDECODABLE))
            cases.extend((path, method, gen.request(method)) for _ in range(PER_METHOD))
    md = (("authorization", f"Bearer {stack.admin_key}"),)
    codes: Counter[str] = Counter()
    failures: list[str] = []
    jobs: list[str] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(stack.gateway, options=options) as channel:

        async def one(path: str, method: MethodDescriptor, data: bytes) -> None:
            async with limit:
                code, details, reply = await call(channel, path, method, data, md)
            codes[code.name] += 1
            if code in FORBIDDEN:
                failures.append(f"{path} {code.name} {details[:300]!r} for {data[:80]!r}")
            if len(details) > 1100 or " object at 0x" in details:
                failures.append(f"{path} {code.name}: unbounded or internal details {details[:200]!r}")
            job = style_jobs(method, reply)
            if job:
                jobs.append(job)

        await asyncio.gather(*(one(*case) for case in cases))
        cancel = f"/{SERVICES[2].full_name}/CancelJob"
        for job in jobs:
            request = style_pb2.CancelJobRequest(job_id=job).SerializeToString()
            await call(channel, cancel, SERVICES[2].methods_by_name["CancelJob"], request, md)
    return codes, failures, jobs


def test_no_caller_mistake_is_internal_or_unknown(stack: Stack) -> None:
    with stack.client() as client:  # the stack answers before the clock starts
        client.list_styles()
    start = time.perf_counter()
    codes, failures, _ = asyncio.run(fuzz(stack))
    elapsed = time.perf_counter() - start
    print(f"fuzz: {sum(codes.values())} requests in {elapsed:.1f}s: {dict(codes)}")
    methods = sum(len(s.methods) for s in SERVICES)
    assert sum(codes.values()) == methods * (PER_METHOD + 1)
    assert codes["INVALID_ARGUMENT"] > 0  # the generator does reach the checks
    assert failures == []
