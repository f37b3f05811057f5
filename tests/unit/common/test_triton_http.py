"""fovea.common.triton_http's protocol: what a request carries, how an answer is read, which error an
HTTP status becomes, and the transport against a local HTTP server that answers as Triton does (the real
Triton: tests/integration/test_triton_client.py)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from fovea.common.errors import (
    DeadlineExceeded,
    FoveaError,
    InvalidArgument,
    NotFound,
    UpstreamUnavailable,
)
from fovea.common.triton import translate
from fovea.common.triton_http import (
    TritonHttp,
    as_exception,
    decode_response,
    encode_request,
    parse_address,
    supported,
)


def error_for(status: int, message: str, model: str) -> FoveaError:
    """What an error answer becomes: through the one translation point, as a gRPC error would."""
    return translate(as_exception(status, message), "127.0.0.1:8000", model)


def test_a_request_names_every_tensor_with_its_size_and_sends_them_in_order() -> None:
    a = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    b = np.asfortranarray(np.arange(4, dtype=np.float32).reshape(2, 2))
    path, header, arrays = encode_request("m", {"A": a, "B": b}, ["OUT"], "3")
    assert path == "/v2/models/m/versions/3/infer"
    meta = json.loads(header)
    assert meta["inputs"] == [
        {"name": "A", "shape": [1, 2, 3], "datatype": "UINT8", "parameters": {"binary_data_size": 6}},
        {"name": "B", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
    ]
    assert meta["outputs"] == [{"name": "OUT", "parameters": {"binary_data": True}}]
    assert all(x.flags.c_contiguous for x in arrays)
    np.testing.assert_array_equal(arrays[1], b)
    assert encode_request("m", {"A": a}, [])[0] == "/v2/models/m/infer"


def test_an_input_in_shared_memory_is_named_by_its_region_and_not_sent() -> None:
    a = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    b = np.arange(4, dtype=np.float32)
    _, header, arrays = encode_request("m", {"A": a, "B": b}, ["OUT"], shared={"A": "fovea-1-0-3"})
    meta = json.loads(header)
    assert meta["inputs"][0] == {
        "name": "A",
        "shape": [1, 2, 3],
        "datatype": "UINT8",
        "parameters": {"shared_memory_region": "fovea-1-0-3", "shared_memory_byte_size": 6},
    }
    assert meta["inputs"][1]["parameters"] == {"binary_data_size": 16}
    assert len(arrays) == 1
    np.testing.assert_array_equal(arrays[0], b)


def test_an_answer_is_read_tensor_by_tensor() -> None:
    boxes = np.arange(8, dtype=np.float32).reshape(1, 2, 4)
    count = np.array([[2]], np.int32)
    header = json.dumps(
        {
            "outputs": [
                {
                    "name": "BOXES",
                    "datatype": "FP32",
                    "shape": [1, 2, 4],
                    "parameters": {"binary_data_size": 32},
                },
                {
                    "name": "COUNT",
                    "datatype": "INT32",
                    "shape": [1, 1],
                    "parameters": {"binary_data_size": 4},
                },
                {"name": "AS_JSON", "datatype": "FP64", "shape": [2], "data": [0.5, 1.5]},
            ]
        }
    ).encode()
    out = decode_response(header + boxes.tobytes() + count.tobytes(), len(header))
    np.testing.assert_array_equal(out["BOXES"], boxes)
    np.testing.assert_array_equal(out["COUNT"], count)
    np.testing.assert_array_equal(out["AS_JSON"], [0.5, 1.5])
    assert out["BOXES"].dtype == np.float32 and out["COUNT"].dtype == np.int32
    with pytest.raises(ValueError, match="past the end"):
        decode_response(header + boxes.tobytes(), len(header))


def test_http_statuses_become_the_errors_grpc_codes_do() -> None:
    assert isinstance(error_for(400, "unexpected shape for input 'INPUT'", "m"), InvalidArgument)
    assert isinstance(error_for(400, "Request for unknown model: 'x' is not found", "x"), NotFound)
    assert isinstance(error_for(404, "not found", "x"), NotFound)
    unavailable = error_for(400, "Request for unknown model: 'm' version 1 is not ready", "m")
    assert isinstance(unavailable, UpstreamUnavailable) and "retry later" in str(unavailable)
    assert isinstance(error_for(503, "busy", "m"), UpstreamUnavailable)
    other = error_for(500, "boom", "m")
    assert type(other) is FoveaError and "HTTP 500" in str(other) and "'m'" in str(other)


def test_addresses_are_host_and_port() -> None:
    assert parse_address("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_address("http://triton:8000/") == ("triton", 8000)
    assert parse_address("[::1]:8000") == ("::1", 8000)
    for bad in ("triton", "triton:http", ":8000", "triton:0", "triton:70000"):
        with pytest.raises(ValueError, match="host:port"):
            parse_address(bad)
    assert supported({"A": np.zeros(2, np.uint8)}) and not supported({"A": np.array(["x"], object)})


class FakeTriton:
    """A local HTTP/1.1 server that answers as Triton does: echoes its one input as OUT, keeps connections."""

    def __init__(self, *, delay_s: float = 0.0, status: int = 200, chunked: bool = False) -> None:
        self.delay_s, self.status, self.chunked = delay_s, status, chunked
        self.connections = 0
        self.requests = 0
        self.close_after = False  # hang up after the next answer, as a Triton that stops does

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (asyncio.CancelledError, ConnectionError):  # the test is over
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while line := await reader.readline():
            fields = {}
            while (h := await reader.readline()) not in (b"\r\n", b""):
                k, _, v = h.decode().partition(":")
                fields[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(fields["content-length"]))
            self.requests += 1
            assert line.startswith(b"POST /v2/models/") and fields["x-token"] == "secret"
            await asyncio.sleep(self.delay_s)
            if self.status != 200:
                payload, extra = json.dumps({"error": "unexpected shape"}).encode(), ""
            else:
                n = int(fields["inference-header-content-length"])
                tensor = json.loads(body[:n])["inputs"][0]
                out = {"outputs": [{**tensor, "name": "OUT"}]}
                head = json.dumps(out).encode()
                payload, extra = head + body[n:], f"Inference-Header-Content-Length: {len(head)}\r\n"
            if self.chunked:
                chunks = b"".join(
                    b"%x\r\n%s\r\n" % (len(payload[i : i + 7]), payload[i : i + 7])
                    for i in range(0, len(payload), 7)
                )
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\n{extra}Transfer-Encoding: chunked\r\n\r\n".encode()
                    + chunks
                    + b"0\r\n\r\n"
                )
            else:
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\n{extra}Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
            await writer.drain()
            if self.close_after:
                return


async def serve(fake: FakeTriton) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_connections_are_kept_and_each_concurrent_request_has_its_own() -> None:
    async def go() -> tuple[FakeTriton, list[np.ndarray]]:
        fake = FakeTriton(delay_s=0.05)
        server, port = await serve(fake)
        client = TritonHttp(f"127.0.0.1:{port}", headers={"x-token": "secret"})
        x = np.arange(12, dtype=np.int16).reshape(3, 4)
        try:
            first = await client.infer("m", {"IN": x}, ["OUT"], timeout_s=5)
            many = await asyncio.gather(
                *(client.infer("m", {"IN": x}, ["OUT"], timeout_s=5) for _ in range(3))
            )
            last = await client.infer("m", {"IN": x}, ["OUT"], timeout_s=5)
        finally:
            await client.close()
            server.close()
        return fake, [first["OUT"], *(m["OUT"] for m in many), last["OUT"]]

    fake, outs = asyncio.run(go())
    for out in outs:
        np.testing.assert_array_equal(out, np.arange(12, dtype=np.int16).reshape(3, 4))
    assert fake.requests == 5 and fake.connections == 3  # the first one kept, two more for the gathered calls


async def translated(call: object) -> FoveaError:
    """The domain error ``TritonClient`` makes of what ``TritonHttp.infer`` raises."""
    try:
        await call  # type: ignore[misc]
    except InferenceServerException as exc:
        return translate(exc, "127.0.0.1:8000", "m")
    raise AssertionError("no error raised")


def test_errors_timeouts_and_chunked_answers() -> None:
    async def go() -> None:
        x = np.zeros((1, 2), np.uint8)
        for fake, expected in (
            (FakeTriton(status=400), InvalidArgument),
            (FakeTriton(delay_s=1.0), DeadlineExceeded),
        ):
            server, port = await serve(fake)
            client = TritonHttp(f"127.0.0.1:{port}", headers={"x-token": "secret"})
            error = await translated(client.infer("m", {"IN": x}, ["OUT"], timeout_s=0.2))
            assert isinstance(error, expected), error
            await client.close()
            server.close()
        fake = FakeTriton(chunked=True)
        server, port = await serve(fake)
        client = TritonHttp(f"127.0.0.1:{port}", headers={"x-token": "secret"})
        y = np.arange(40, dtype=np.float32)
        np.testing.assert_array_equal((await client.infer("m", {"IN": y}, ["OUT"], timeout_s=5))["OUT"], y)
        fake.close_after = True
        np.testing.assert_array_equal((await client.infer("m", {"IN": y}, ["OUT"], timeout_s=5))["OUT"], y)
        server.close()  # and no one listens any more
        gone = await translated(client.infer("m", {"IN": y}, ["OUT"], timeout_s=5))  # the kept connection
        assert isinstance(gone, UpstreamUnavailable) and "retry later" in str(gone), gone
        await client.close()

    asyncio.run(go())
