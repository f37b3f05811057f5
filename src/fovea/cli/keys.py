"""``fovea keys``: the gateway's API keys (create, list, revoke; stored hashed) and a private CA with
certificates for TLS / mTLS on your own machines. Server side: it writes the files the gateway reads."""

from __future__ import annotations

from pathlib import Path

import click

from fovea.cli.output import Group, emit, fail


@click.group(cls=Group)
def keys() -> None:
    """API keys of the gateway (stored hashed)."""


def _keys_file(path: Path | None) -> Path:
    from fovea.stack.config import StackSettings

    return path or StackSettings().api_keys_file


_KEYS_FILE = click.option(
    "--file", "path", type=click.Path(path_type=Path), default=None, help="Default: <data dir>/api-keys.json"
)


@keys.command("create")
@click.option("--name", required=True)
@click.option(
    "--scopes",
    required=True,
    multiple=True,
    help="Comma-separated, e.g. detect,faces:verify,style (or *); repeat it to add more: --scopes detect --scopes style",
)
@click.option("--expires", default=None, help="e.g. 30d, 12h, 2w or an ISO date/time (UTC); default never")
@_KEYS_FILE
def keys_create(name: str, scopes: tuple[str, ...], expires: str | None, path: Path | None) -> None:
    """Create a key; prints it once (only its hash is stored). A running gateway accepts it at once."""
    from datetime import UTC, datetime

    from fovea.gateway.auth import add_key, parse_expiry

    wanted = sorted({s.strip() for given in scopes for s in given.split(",") if s.strip()})
    try:
        if not wanted:
            raise ValueError("--scopes names no scope: give e.g. --scopes detect,style (or *)")
        until = parse_expiry(expires, datetime.now(UTC)) if expires else None
        click.echo(add_key(_keys_file(path), name, wanted, until))
    except ValueError as exc:
        fail(exc)


@keys.command("list")
@_KEYS_FILE
@click.option("--json", "as_json", is_flag=True)
def keys_list(path: Path | None, as_json: bool) -> None:
    """Name, scopes, created, expiry and last use of each key (never the key or its hash)."""
    from fovea.gateway.auth import list_keys

    try:
        rows = list_keys(_keys_file(path))
    except ValueError as exc:
        fail(exc)
    lines = [f"{'name':<20} {'scopes':<30} {'created':<21} {'expires':<21} last used"]
    for r in rows:
        expires = (r["expires"] + (" EXPIRED" if r["expired"] else "")) or "never"
        lines.append(
            f"{r['name']:<20} {','.join(r['scopes']):<30} {r['created'] or '-':<21} {expires:<21} "
            f"{r['last_used'] or 'never'}"
        )
    emit(rows, as_json, "\n".join(lines))


@keys.command("revoke")
@click.argument("name")
@_KEYS_FILE
def keys_revoke(name: str, path: Path | None) -> None:
    """Remove key NAME: a running gateway refuses it within a second, without a restart."""
    from fovea.gateway.auth import revoke_key

    try:
        revoke_key(_keys_file(path), name)
    except ValueError as exc:
        fail(exc)
    click.echo(f"revoked {name}")


@keys.command("tls")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the PEM files (default: <data dir>/tls)",
)
@click.option(
    "--host", "hosts", multiple=True, help="Name or address clients use for the gateway (repeatable)"
)
@click.option("--days", type=click.IntRange(1, 3650), default=365)
def keys_tls(out: Path | None, hosts: tuple[str, ...], days: int) -> None:
    """A private CA with a server and a client certificate, for TLS/mTLS on your own machines."""
    from fovea.gateway.tls import make_local_pki
    from fovea.stack.config import StackSettings

    files = make_local_pki(out or StackSettings().data / "tls", list(hosts), days)
    click.echo(
        "\n".join(
            [
                f"wrote {files.ca.parent}: ca.pem, server.pem, server-key.pem, client.pem, client-key.pem",
                "gateway:  FOVEA_GATEWAY_TLS_CERT_FILE=" + str(files.server_cert),
                "          FOVEA_GATEWAY_TLS_KEY_FILE=" + str(files.server_key),
                "          FOVEA_GATEWAY_TLS_CLIENT_CA_FILE="
                + str(files.ca)
                + "   (mTLS: require client certificates)",
                f"clients:  fovea --ca {files.ca} [--cert {files.client_cert} --key {files.client_key}] ...",
            ]
        )
    )
