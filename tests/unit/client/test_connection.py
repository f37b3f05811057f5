"""The client's channel: TLS chosen from arguments, then the environment, then the plaintext rule
(plaintext by default only on loopback); certificate files read with errors naming them; what a failed
connection most likely means."""

from __future__ import annotations

from pathlib import Path

import pytest
from ports import free_port

from fovea.client import FoveaClient, FoveaClientError, Tls
from fovea.client.connection import explain_unavailable, host_of

TLS_ENV = ("FOVEA_TLS", "FOVEA_TLS_CA", "FOVEA_TLS_CERT", "FOVEA_TLS_KEY")


@pytest.fixture(autouse=True)
def _no_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TLS_ENV:
        monkeypatch.delenv(name, raising=False)


def test_client_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    assert not Tls.resolve("127.0.0.1:50051").enabled
    assert Tls.resolve("gateway.example:50051").enabled  # TLS by default off loopback
    assert Tls.resolve("127.0.0.1:50051", ca=ca).enabled  # a CA implies TLS
    assert not Tls.resolve("gateway.example:50051", tls=False).enabled  # asked for
    monkeypatch.setenv("FOVEA_TLS_CA", str(ca))
    assert Tls.resolve("127.0.0.1:50051").ca == ca
    with pytest.raises(ValueError, match="both --cert and --key"):
        Tls.resolve("127.0.0.1:50051", cert=ca)
    with pytest.raises(ValueError, match="cannot be used with --no-tls"):
        Tls.resolve("127.0.0.1:50051", tls=False, ca=ca)
    monkeypatch.setenv("FOVEA_TLS", "maybe")
    with pytest.raises(ValueError, match="FOVEA_TLS='maybe': use 1/true or 0/false"):
        Tls.resolve("127.0.0.1:50051")


def test_host_of() -> None:
    assert host_of("127.0.0.1:50051") == "127.0.0.1"
    assert host_of("[::1]:50051") == "::1"
    assert host_of("gateway.example") == "gateway.example"
    assert host_of("::1") == "::1"  # a bare v6 address: no port to take off


def test_certificate_files_are_read_when_the_client_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"CA file .*missing\.pem: No such file"):
        FoveaClient("gateway.example:443", ca=tmp_path / "missing.pem")
    text = tmp_path / "ca.txt"
    text.write_text("not a certificate")
    with pytest.raises(ValueError, match=r"CA file .*ca\.txt is not PEM"):
        FoveaClient("gateway.example:443", ca=text)


def test_a_failed_connection_says_what_it_likely_means(tmp_path: Path) -> None:
    tls = Tls(True, ca=tmp_path / "ca.pem")
    assert "not signed by the CA in" in explain_unavailable("CERTIFICATE_VERIFY_FAILED", tls)
    assert "try --no-tls" in explain_unavailable("WRONG_VERSION_NUMBER", tls)
    assert "may require a client certificate" in explain_unavailable("Socket closed", tls)
    assert "pass --tls and --ca" in explain_unavailable("Socket closed", Tls(False))
    assert explain_unavailable("Connection refused", Tls(False)) == "Connection refused"


def test_nothing_listening_is_unavailable() -> None:
    client = FoveaClient(f"127.0.0.1:{free_port()}", api_key="", timeout_s=5)
    with client, pytest.raises(FoveaClientError) as err:
        client.list_models()
    assert err.value.code == "UNAVAILABLE"
