"""What one round trip between two processes costs on this machine, before any work: the floor under every
hop of the platform (client -> gateway -> service -> Triton), issue 23.

Five echo servers, each its own process, called in turn from this one with one byte / an empty health
check: a blocking TCP socket, an asyncio TCP server, a gRPC server on a thread pool, a gRPC aio server (the
gateway and the services are the latter; Triton's front is gRPC's C++ core) and an aiohttp HTTP/1.1 server
(one POST of one byte on a kept-alive connection: what an internal hop that is not gRPC would cost). Then
two more rows go through a relay, a gRPC aio server passing the call on as the gateway does (bytes in, bytes
out): to the gRPC aio server over a grpc.aio channel, or to the aiohttp server with an aiohttp client (the
whole gateway-to-service hop either way, both ends). Each call follows a pause
(a lone caller's idle machine) or none; p50 ms per pause.

    .venv/bin/python bench/round_trip.py [--calls 150] [--pauses-ms 0,1,5,20]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer
from grpc_health.v1.health import aio as health_aio

sys.path.insert(0, str(Path(__file__).parent))

from _stack import free_ports  # noqa: E402


def _listen(port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def blocking_echo(port: int) -> None:
    server = _listen(port)
    while True:  # one connection at a time
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(64):
            conn.sendall(data)
        conn.close()


def asyncio_echo(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(64):
            writer.write(data)

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def grpc_threads(port: int) -> None:
    server = grpc.server(ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def grpc_aio(port: int) -> None:
    async def serve() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(serve())


def http_aiohttp(port: int) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_post("/echo", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


RELAY_METHODS = {
    "relay, then gRPC aio": "/relay.Relay/ViaGrpc",
    "relay, then HTTP/1.1 aiohttp": "/relay.Relay/ViaHttp",
}


def relay(port: int, grpc_port: int, http_port: int) -> None:
    """A gRPC aio server whose two methods pass the request on: to ``grpc_port``'s health check over a
    grpc.aio channel, or as a POST to ``http_port``'s echo with an aiohttp client."""
    import aiohttp

    async def serve() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        session = aiohttp.ClientSession()
        url = f"http://127.0.0.1:{http_port}/echo"

        async def via_grpc(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return await check(request)

        async def via_http(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            async with session.post(url, data=request) as answer:
                return await answer.read()

        handlers = {
            "ViaGrpc": grpc.unary_unary_rpc_method_handler(via_grpc),
            "ViaHttp": grpc.unary_unary_rpc_method_handler(via_http),
        }
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("relay.Relay", handlers),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(serve())


SERVERS: dict[str, Callable[[int], None]] = {
    "TCP, blocking server": blocking_echo,
    "TCP, asyncio server": asyncio_echo,
    "gRPC, thread-pool server": grpc_threads,
    "gRPC, aio server": grpc_aio,
    "HTTP/1.1, aiohttp server": http_aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--pauses-ms", default="0,1,5,20")
    args = parser.parse_args()
    ports = dict(zip([*SERVERS, "relay"], free_ports(len(SERVERS) + 1), strict=True))
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=serve, args=(ports[label],), daemon=True) for label, serve in SERVERS.items()
    ]
    backends = (ports["gRPC, aio server"], ports["HTTP/1.1, aiohttp server"])
    processes.append(context.Process(target=relay, args=(ports["relay"], *backends), daemon=True))
    for process in processes:
        process.start()
    try:
        for port in ports.values():
            wait_for(port)
        run(ports, args.calls, [float(p) / 1000 for p in args.pauses_ms.split(",")])
    finally:
        for process in processes:
            process.kill()


def wait_for(port: int, timeout_s: float = 30.0) -> None:
    """Until something listens on ``port`` (the servers start in processes of their own)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run(ports: dict[str, int], calls: int, pauses: list[float]) -> None:
    sockets = {}
    for label in list(SERVERS)[:2]:
        sock = socket.create_connection(("127.0.0.1", ports[label]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets[label] = sock
    grpc_labels = [label for label in SERVERS if label.startswith("gRPC")]
    channels = [grpc.insecure_channel(f"127.0.0.1:{ports[label]}") for label in grpc_labels]
    web = http.client.HTTPConnection("127.0.0.1", ports["HTTP/1.1, aiohttp server"])
    request = health_pb2.HealthCheckRequest()

    def echo(sock: socket.socket) -> Callable[[], object]:
        def call() -> object:
            sock.sendall(b"x")
            return sock.recv(64)

        return call

    def check(channel: grpc.Channel) -> Callable[[], object]:
        stub = health_pb2_grpc.HealthStub(channel)
        return lambda: stub.Check(request)

    calls_by_label: dict[str, Callable[[], object]] = {label: echo(s) for label, s in sockets.items()}
    for label, channel in zip(grpc_labels, channels, strict=True):
        calls_by_label[label] = check(channel)

    def post() -> object:
        web.request("POST", "/echo", b"x")
        return web.getresponse().read()

    calls_by_label["HTTP/1.1, aiohttp server"] = post
    relayed = grpc.insecure_channel(f"127.0.0.1:{ports['relay']}")
    channels.append(relayed)
    for label, method in RELAY_METHODS.items():
        calls_by_label[label] = functools.partial(relayed.unary_unary(method), b"")
    for call in calls_by_label.values():
        for _ in range(5):
            call()
    print(f"{calls} round trips per server and pause, servers taking turns; p50 ms")
    print("| pause | " + " | ".join(calls_by_label) + " |")
    print("|---" * (len(calls_by_label) + 1) + "|")
    for pause in pauses:
        times: dict[str, list[float]] = {label: [] for label in calls_by_label}
        for _ in range(calls):
            for label, call in calls_by_label.items():
                if pause:
                    time.sleep(pause)
                start = time.perf_counter()
                call()
                times[label].append((time.perf_counter() - start) * 1000)
        row = " | ".join(f"{statistics.median(v):.3f}" for v in times.values())
        print(f"| {pause * 1000:.0f} ms | {row} |")
    for sock in sockets.values():
        sock.close()
    for channel in channels:
        channel.close()
    web.close()


if __name__ == "__main__":
    main()
