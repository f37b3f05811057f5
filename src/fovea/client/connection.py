"""The channel to the gateway: address, API key, TLS (plaintext by default only on loopback), deadlines, and
gRPC errors turned into ``FoveaClientError`` with a hint at what a failed connection most likely means."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from fovea.common.tls import is_loopback, read_pem

DEFAULT_GATEWAY = "127.0.0.1:50051"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class FoveaClientError(Exception):
    """A call failed: ``code`` is the gRPC status name (e.g. INVALID_ARGUMENT), ``message`` the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def default_api_key() -> str:
    """``FOVEA_API_KEY``, else the local stack's key file (``$FOVEA_DATA_DIR/api-key``), else empty."""
    if os.environ.get("FOVEA_API_KEY"):
        return os.environ["FOVEA_API_KEY"]
    path = Path(os.environ.get("FOVEA_DATA_DIR", ".data")) / "api-key"
    return path.read_text().strip() if path.exists() else ""


def _flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r}: use 1/true or 0/false")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def host_of(address: str) -> str:
    """The host part of ``host:port``, ``[v6]:port`` or a bare host."""
    if address.startswith("["):
        return address[1 : address.index("]")] if "]" in address else address
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


@dataclass(frozen=True)
class Tls:
    """How the client reaches the gateway: TLS with ``ca`` (None = the system's roots), and for mTLS a client
    ``cert`` + ``key``; ``enabled`` False = plaintext."""

    enabled: bool
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def resolve(
        cls,
        address: str,
        tls: bool | None = None,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
    ) -> Tls:
        """Arguments first, then ``FOVEA_TLS``, ``FOVEA_TLS_CA``, ``FOVEA_TLS_CERT``, ``FOVEA_TLS_KEY``.
        Without a choice, TLS is on unless the gateway is on loopback; a CA or client certificate implies TLS.
        """
        ca = ca or _env_path("FOVEA_TLS_CA")
        cert = cert or _env_path("FOVEA_TLS_CERT")
        key = key or _env_path("FOVEA_TLS_KEY")
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs its key: give both --cert and --key (or neither)")
        choice = tls if tls is not None else _flag("FOVEA_TLS")
        if choice is None:
            choice = bool(ca or cert) or not is_loopback(host_of(address))
        if not choice and (ca or cert):
            raise ValueError("--ca/--cert/--key are TLS options: they cannot be used with --no-tls")
        return cls(choice, ca, cert, key)

    def credentials(self) -> grpc.ChannelCredentials:
        """``ValueError`` naming the file that cannot be read or is not PEM."""
        return grpc.ssl_channel_credentials(
            root_certificates=read_pem(self.ca, "CA file") if self.ca else None,
            private_key=read_pem(self.key, "client key file") if self.key else None,
            certificate_chain=read_pem(self.cert, "client certificate file") if self.cert else None,
        )


def explain_unavailable(details: str, tls: Tls) -> str:
    """Say what a failed connection most likely means, after grpc's own words."""
    text = details.lower()
    closed = any(s in text for s in ("socket closed", "connection reset", "eof", "broken pipe"))
    if any(s in text for s in ("certificate_verify_failed", "certificate verify failed", "bad_signature")):
        where = f"the CA in {tls.ca}" if tls.ca else "the system's trusted CAs"
        hint = f"the gateway's certificate is not signed by {where}: pass the right --ca / FOVEA_TLS_CA"
    elif any(s in text for s in ("wrong_version_number", "packet_length_too_long", "record_layer_failure")):
        hint = "the gateway does not speak TLS here: try --no-tls"
    elif tls.enabled and (closed or "handshake" in text or "ssl" in text or "certificate" in text):
        hint = "the TLS handshake with the gateway failed: " + (
            f"it may not accept the client certificate {tls.cert} (signed by another CA?)"
            if tls.cert
            else "it may require a client certificate (--cert/--key, mTLS)"
        )
    elif not tls.enabled and closed:
        hint = "the gateway closed a plaintext connection: if it uses TLS, pass --tls and --ca"
    else:
        return details
    return f"{details} ({hint})"


class Connection:
    """A channel to the gateway with the API key and a deadline on every call.

    ``call`` and ``stream`` take a stub method and its request message and give back the raw reply: the
    escape hatch below :class:`fovea.client.FoveaClient`'s typed methods."""

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        *,
        tls: bool | None = None,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``tls``/``ca``/``cert``/``key``: see ``Tls.resolve`` (plaintext by default only on loopback);
        ``metadata``: sent with every call besides the API key."""
        self.address = address or os.environ.get("FOVEA_GATEWAY", DEFAULT_GATEWAY)
        self.api_key = default_api_key() if api_key is None else api_key
        self.timeout_s = timeout_s
        self.tls = Tls.resolve(self.address, tls, ca, cert, key)
        self._extra = list(metadata)
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self.channel = (
            grpc.secure_channel(self.address, self.tls.credentials(), options=options)
            if self.tls.enabled
            else grpc.insecure_channel(self.address, options=options)
        )

    def close(self) -> None:
        self.channel.close()

    def _metadata(self) -> list[tuple[str, str]]:
        auth = [("authorization", f"Bearer {self.api_key}")] if self.api_key else []
        return auth + self._extra

    def _error(self, exc: grpc.RpcError) -> FoveaClientError:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            details = explain_unavailable(details, self.tls)
        return FoveaClientError(code.name, details)

    def call(self, method: Any, request: Any, timeout_s: float | None = None) -> Any:
        """Call a stub method with the API key and deadline; gRPC errors become ``FoveaClientError``."""
        try:
            return method(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def stream(self, method: Any, request: Any, timeout_s: float | None = None) -> Iterator[Any]:
        """The replies of a server-streaming stub method (``request``: a message, or an iterator of them for
        a bidirectional one); the stream is cancelled at the server when the caller stops iterating."""
        call = method(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()
