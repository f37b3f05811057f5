"""TLS at the gateway: server credentials from PEM files, the plaintext rule, self-signed pairs for local use.

Plaintext is the default only on loopback: the gateway refuses to listen without TLS on any other address
unless ``allow_plaintext`` says so (e.g. behind a proxy that terminates TLS). With a client CA bundle the
gateway asks every client for a certificate signed by it (mTLS); API keys are checked as before.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from fovea.common.tls import is_loopback, read_pem


def check_plaintext_allowed(host: str, tls: bool, allow_plaintext: bool) -> None:
    """Raise ``ValueError`` when the gateway would listen in plaintext on a non-loopback address unasked."""
    if tls or allow_plaintext or is_loopback(host):
        return
    raise ValueError(
        f"refusing to listen in plaintext on {host}: API keys would cross the network unencrypted. Set "
        "FOVEA_GATEWAY_TLS_CERT_FILE and FOVEA_GATEWAY_TLS_KEY_FILE (`fovea keys tls` makes a pair for local "
        "use), or FOVEA_GATEWAY_ALLOW_PLAINTEXT=true when a proxy in front terminates TLS"
    )


def server_credentials(cert: Path, key: Path, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with ``client_ca`` clients must present a certificate it signed.
    Raises ``ValueError`` naming the file at fault."""
    pair = (read_pem(key, "TLS key file"), read_pem(cert, "TLS certificate file"))
    roots = read_pem(client_ca, "TLS client CA file") if client_ca is not None else None
    return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=roots is not None)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_local_pki(out: Path, hosts: list[str], days: int = 365) -> TlsFiles:
    """A private CA and a server and a client certificate signed by it, for local TLS and mTLS.

    The server certificate names ``hosts`` (DNS names or IP addresses) plus localhost and 127.0.0.1.
    Keys are written 0600; the CA key is not kept (nothing else can be signed with it later).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fovea local"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"Fovea local CA {secrets.token_hex(4)}")  # each CA its own name: issuers never collide
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1"]):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            sans.append(x509.DNSName(host))
    server = leaf(hosts[0] if hosts else "localhost", ExtendedKeyUsageOID.SERVER_AUTH, sans)
    client = leaf("fovea client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    out.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        out / "ca.pem", out / "server.pem", out / "server-key.pem", out / "client.pem", out / "client-key.pem"
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    for path, data, secret in [
        (files.ca, ca_pem, False),
        (files.server_cert, server[0], False),
        (files.server_key, server[1], True),
        (files.client_cert, client[0], False),
        (files.client_key, client[1], True),
    ]:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        path.chmod(0o600 if secret else 0o644)
    return files
