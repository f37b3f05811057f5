"""TLS at the gateway, in process on port 0 (certificates from ``fovea keys tls``'s code): a client with the
right CA gets through, a wrong CA or plaintext fails with a message that says why, mTLS refuses a client
without a certificate; plaintext is refused on a non-loopback address unless allowed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from fovea.client import FoveaClient, FoveaClientError
from fovea.common.server import ServerHandle, create_server
from fovea.common.tls import is_loopback
from fovea.gateway.config import GatewaySettings
from fovea.gateway.tls import TlsFiles, check_plaintext_allowed, make_local_pki, server_credentials

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_local_pki(tmp_path_factory.mktemp("tls"), ["gateway.example"])


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_local_pki(tmp_path_factory.mktemp("other"), [])


async def serve(pki: TlsFiles, mtls: bool) -> ServerHandle:
    credentials = server_credentials(pki.server_cert, pki.server_key, pki.ca if mtls else None)
    handle = await create_server(
        "tls_test", "127.0.0.1:0", [], max_message_bytes=4 * MiB, credentials=credentials
    )
    await handle.set_serving(True)
    return handle


@pytest.fixture()
async def tls_server(pki: TlsFiles) -> AsyncIterator[ServerHandle]:
    handle = await serve(pki, mtls=False)
    yield handle
    await handle.server.stop(0)


@pytest.fixture()
async def mtls_server(pki: TlsFiles) -> AsyncIterator[ServerHandle]:
    handle = await serve(pki, mtls=True)
    yield handle
    await handle.server.stop(0)


async def health(address: str, **tls: object) -> str:
    """The synchronous client, in a thread (the server runs on this test's event loop)."""

    def check() -> str:
        with FoveaClient(address, api_key="", timeout_s=5, **tls) as client:  # type: ignore[arg-type]
            return client.health_status()

    return await asyncio.to_thread(check)


def test_keys_are_private(pki: TlsFiles) -> None:
    assert pki.server_key.stat().st_mode & 0o777 == 0o600
    assert pki.client_key.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN CERTIFICATE" in pki.ca.read_bytes()


async def test_tls_with_the_right_ca(tls_server: ServerHandle, pki: TlsFiles) -> None:
    assert await health(f"127.0.0.1:{tls_server.port}", ca=pki.ca) == "SERVING"
    assert await health(f"localhost:{tls_server.port}", ca=pki.ca) == "SERVING"


async def test_a_wrong_ca_says_why(tls_server: ServerHandle, other_pki: TlsFiles) -> None:
    with pytest.raises(FoveaClientError) as err:
        await health(f"127.0.0.1:{tls_server.port}", ca=other_pki.ca)
    assert err.value.code == "UNAVAILABLE"
    assert "not signed by the CA in" in err.value.message and str(other_pki.ca) in err.value.message


async def test_plaintext_to_a_tls_gateway_fails_clearly(tls_server: ServerHandle) -> None:
    with pytest.raises(FoveaClientError) as err:
        await health(f"127.0.0.1:{tls_server.port}", tls=False)
    assert err.value.code == "UNAVAILABLE"
    assert "if it uses TLS, pass --tls and --ca" in err.value.message


async def test_mtls_needs_a_client_certificate(
    mtls_server: ServerHandle, pki: TlsFiles, other_pki: TlsFiles
) -> None:
    address = f"127.0.0.1:{mtls_server.port}"
    assert await health(address, ca=pki.ca, cert=pki.client_cert, key=pki.client_key) == "SERVING"
    for tls in ({"ca": pki.ca}, {"ca": pki.ca, "cert": other_pki.client_cert, "key": other_pki.client_key}):
        with pytest.raises(FoveaClientError) as err:
            await health(address, **tls)
        assert err.value.code == "UNAVAILABLE", tls


def test_plaintext_only_on_loopback_unless_allowed() -> None:
    for host in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        check_plaintext_allowed(host, tls=False, allow_plaintext=False)
    for host in ("0.0.0.0", "[::]", "10.0.0.7", "gateway.example"):
        assert not is_loopback(host), host
        with pytest.raises(ValueError, match="refusing to listen in plaintext"):
            check_plaintext_allowed(host, tls=False, allow_plaintext=False)
        check_plaintext_allowed(host, tls=True, allow_plaintext=False)
        check_plaintext_allowed(host, tls=False, allow_plaintext=True)


def test_tls_settings_go_together(pki: TlsFiles) -> None:
    with pytest.raises(ValidationError, match="both tls_cert_file and tls_key_file"):
        GatewaySettings(tls_cert_file=pki.server_cert)
    with pytest.raises(ValidationError, match="needs tls_cert_file"):
        GatewaySettings(tls_client_ca_file=pki.ca)
    settings = GatewaySettings(
        tls_cert_file=pki.server_cert, tls_key_file=pki.server_key, tls_client_ca_file=pki.ca
    )
    assert settings.tls_client_ca_file == pki.ca
