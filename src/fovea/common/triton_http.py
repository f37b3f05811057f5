"""Inference requests over Triton's HTTP/REST endpoint with its binary tensor extension, on kept-alive
connections: on the 2-core development machine one call costs 1.4-2.8 ms less than the same call through
gRPC (``tritonclient.grpc.aio``), and 1 ms less than through aiohttp (bench/README.md, "One HTTP request per
Triton call"). A gRPC round trip runs gRPC's core across several threads per message; this runs one asyncio
stream read and write.

Only ``infer``: model configs, readiness, loading and shared-memory registration stay on gRPC
(:mod:`fovea.common.triton`, which calls this module when a service is given Triton's HTTP address).

The protocol (KServe v2 with Triton's binary data extension): ``POST /v2/models/<m>[/versions/<v>]/infer``,
a JSON header of ``Inference-Header-Content-Length`` bytes naming every tensor with its
``binary_data_size``, the raw tensors after it in order; the answer has the same layout. Errors are a JSON
``{"error": "..."}`` with an HTTP status. Every failure is raised as tritonclient's gRPC client raises it
(``InferenceServerException`` with the gRPC code of the same meaning), so that
:func:`fovea.common.triton.translate` stays the one place a Triton error becomes a domain error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

DATATYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(t)
    for name, t in {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
    }.items()
}
"""Triton's names of the fixed-size data types (``BYTES`` tensors go over gRPC)."""
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}

MAX_HEAD_BYTES = 64 * 1024
"""The status line and headers of an answer, at most (Triton's are a few hundred bytes)."""


def supported(inputs: Mapping[str, np.ndarray]) -> bool:
    """Every input has a fixed-size data type this module sends (object arrays, Triton's ``BYTES``, do not)."""
    return all(np.dtype(a.dtype) in _NAMES for a in inputs.values())


def parse_address(url: str) -> tuple[str, int]:
    """``host:port`` (an ``http://`` prefix allowed) -> (host, port); ``ValueError`` saying what is wrong."""
    address = url.removeprefix("http://").rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Triton's HTTP address must be host:port, got {url!r}")
    return host.strip("[]"), int(port)


def encode_request(
    model: str,
    inputs: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    model_version: str = "",
    shared: Mapping[str, str] | None = None,
) -> tuple[str, bytes, list[np.ndarray]]:
    """The request's path, its JSON header and the tensors (C-contiguous) to send after it.

    ``shared``: input name -> the name of a system shared-memory region registered with Triton that holds
    that input's bytes from offset 0 (written by the caller); such an input is named in the header with its
    region and sent no further.
    """
    shared = shared or {}
    arrays = {name: np.ascontiguousarray(a) for name, a in inputs.items()}
    header = {
        "inputs": [
            {
                "name": name,
                "shape": list(a.shape),
                "datatype": _NAMES[np.dtype(a.dtype)],
                "parameters": (
                    {"shared_memory_region": shared[name], "shared_memory_byte_size": a.nbytes}
                    if name in shared
                    else {"binary_data_size": a.nbytes}
                ),
            }
            for name, a in arrays.items()
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
    }
    version = f"/versions/{model_version}" if model_version else ""
    sent = [a for name, a in arrays.items() if name not in shared]
    return f"/v2/models/{model}{version}/infer", json.dumps(header).encode(), sent


def decode_response(body: bytes, header_length: int | None) -> dict[str, np.ndarray]:
    """The named output tensors of an answer's body (``header_length``: its JSON header's size, None when the
    whole body is JSON). ``ValueError`` when the body is not what the header says."""
    size = len(body) if header_length is None else header_length
    header = json.loads(body[:size])
    out: dict[str, np.ndarray] = {}
    at = size
    for tensor in header.get("outputs", []):
        dtype = DATATYPES.get(tensor["datatype"])
        if dtype is None:
            raise ValueError(
                f"output {tensor['name']!r} has data type {tensor['datatype']}, not sent in binary"
            )
        shape = [int(d) for d in tensor["shape"]]
        nbytes = int(tensor.get("parameters", {}).get("binary_data_size", -1))
        if nbytes < 0:  # sent as JSON (not asked for, but allowed by the protocol)
            out[tensor["name"]] = np.asarray(tensor["data"], dtype).reshape(shape)
            continue
        if at + nbytes > len(body):
            raise ValueError(f"output {tensor['name']!r} runs past the end of the answer")
        out[tensor["name"]] = np.frombuffer(body, dtype, nbytes // dtype.itemsize, at).reshape(shape)
        at += nbytes
    return out


HTTP_CODES = {
    400: "StatusCode.INVALID_ARGUMENT",
    404: "StatusCode.NOT_FOUND",
    502: "StatusCode.UNAVAILABLE",
    503: "StatusCode.UNAVAILABLE",
    504: "StatusCode.UNAVAILABLE",
}
"""The gRPC code of the same meaning as an HTTP error status of Triton's."""


def as_exception(status: int, message: str) -> InferenceServerException:
    """An error answer as tritonclient's gRPC client raises it. Triton answers a model that is not ready
    with 400 over HTTP and UNAVAILABLE over gRPC."""
    code = "StatusCode.UNAVAILABLE" if "is not ready" in message else HTTP_CODES.get(status)
    if code is None:  # no gRPC code of the same meaning: the status stays in the message
        return InferenceServerException(f"{message} (HTTP {status})", status=f"HTTP {status}")
    return InferenceServerException(message, status=code)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class TritonHttp:
    """Kept-alive HTTP/1.1 connections to one Triton server's HTTP endpoint, one request at a time on each
    (as many connections as requests in flight; at most ``max_idle`` kept between requests)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_body_bytes: int = 256 * 1024 * 1024,
        max_idle: int = 16,
    ) -> None:
        self.host, self.port = parse_address(url)
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.max_body_bytes = max_body_bytes
        self.max_idle = max_idle
        self._idle: list[_Connection] = []

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        timeout_s: float,
        model_version: str = "",
        shared: Mapping[str, str] | None = None,
    ) -> dict[str, np.ndarray]:
        """One inference. ``InferenceServerException`` as the gRPC client raises it: UNAVAILABLE when Triton
        cannot be reached or the connection is lost (the caller retries), DEADLINE_EXCEEDED after
        ``timeout_s``, the code of an error answer's HTTP status otherwise. ``shared``: the inputs whose
        bytes are in a registered shared-memory region (:func:`encode_request`)."""
        path, header, arrays = encode_request(model, inputs, outputs, model_version, shared)
        length = len(header) + sum(a.nbytes for a in arrays)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {len(header)}\r\n"
            f"Content-Length: {length}\r\n{self._headers}\r\n"
        ).encode()
        connection = self._idle.pop() if self._idle else None
        try:
            async with asyncio.timeout(timeout_s):
                if connection is None:
                    connection = _Connection(*await asyncio.open_connection(self.host, self.port))
                connection.writer.writelines([head, header, *(a.data.cast("B") for a in arrays)])
                await connection.writer.drain()
                status, fields, body = await self._answer(connection.reader)
        except TimeoutError as exc:
            if connection is not None:
                connection.close()
            raise InferenceServerException(
                "Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"
            ) from exc
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if connection is not None:
                connection.close()
            await self.close()  # a restarted Triton closed every kept connection
            refused = isinstance(exc, ConnectionRefusedError)
            raise InferenceServerException(
                "connection refused" if refused else f"connection reset ({exc})",
                status="StatusCode.UNAVAILABLE",
            ) from exc
        except BaseException:  # cancelled mid-request: the answer may still come, on this connection
            if connection is not None:
                connection.close()
            raise
        if fields.get("connection", "").lower() == "close" or len(self._idle) >= self.max_idle:
            connection.close()
        else:
            self._idle.append(connection)
        header_length = fields.get("inference-header-content-length")
        if status != 200:
            try:
                message = str(json.loads(body).get("error", "")) or body.decode(errors="replace")
            except ValueError:
                message = body[:500].decode(errors="replace")
            raise as_exception(status, message)
        try:
            return decode_response(body, int(header_length) if header_length is not None else None)
        except (ValueError, KeyError) as exc:
            raise InferenceServerException(f"an answer that cannot be read ({exc})", status="HTTP") from exc

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased header fields, body) of one HTTP/1.1 answer."""
        line = await reader.readline()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP answer: {line[:80]!r}")
        fields: dict[str, str] = {}
        seen = len(line)
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            seen += len(line)
            if seen > MAX_HEAD_BYTES:
                raise ValueError("the answer's headers are too long")
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        if fields.get("transfer-encoding", "").lower() == "chunked":
            return int(parts[1]), fields, await self._chunked(reader)
        size = int(fields.get("content-length", "0"))
        if size > self.max_body_bytes:
            raise ValueError(f"an answer of {size} bytes, more than {self.max_body_bytes}")
        return int(parts[1]), fields, await reader.readexactly(size)

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        chunks, total = [], 0
        while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
            total += size
            if total > self.max_body_bytes:
                raise ValueError(f"an answer of more than {self.max_body_bytes} bytes")
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)


__all__ = [
    "DATATYPES",
    "HTTP_CODES",
    "TritonHttp",
    "as_exception",
    "decode_response",
    "encode_request",
    "parse_address",
    "supported",
]
