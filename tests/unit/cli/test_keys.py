"""`fovea keys`: a key created, listed (never its secret), revoked; mistakes as one error line; the default
file is the stack's <data dir>/api-keys.json; `keys tls` writes a CA and the two certificates."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fovea.cli.main import main


def test_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner(env={"FOVEA_DATA_DIR": str(tmp_path)})  # the default file: <data dir>/api-keys.json
    created = runner.invoke(main, ["keys", "create", "--name", "ci", "--scopes", "detect, faces:verify"])
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert key and key not in (tmp_path / "api-keys.json").read_text()  # only its hash is stored
    listed = runner.invoke(main, ["keys", "list", "--json"])
    [row] = json.loads(listed.output)
    assert row["name"] == "ci" and row["scopes"] == ["detect", "faces:verify"] and key not in listed.output
    table = runner.invoke(main, ["keys", "list"]).output.splitlines()
    assert table[0].split() == ["name", "scopes", "created", "expires", "last", "used"]
    assert table[1].split()[:2] == ["ci", "detect,faces:verify"] and table[1].split()[-1] == "never"
    assert runner.invoke(main, ["keys", "revoke", "ci"]).output == "revoked ci\n"
    again = runner.invoke(main, ["keys", "revoke", "ci"])
    assert again.exit_code == 1 and again.output.startswith("error: ") and len(again.output.splitlines()) == 1


def test_mistakes_are_one_error_line(tmp_path: Path) -> None:
    keys = ["--file", str(tmp_path / "keys.json")]
    bad_scope = CliRunner().invoke(main, ["keys", "create", "--name", "x", "--scopes", "fly", *keys])
    assert bad_scope.exit_code == 1 and "error: unknown scopes ['fly']" in bad_scope.output
    past = ["keys", "create", "--name", "x", "--scopes", "*", "--expires", "2001-01-01", *keys]
    result = CliRunner().invoke(main, past)
    assert result.exit_code == 1 and result.output.startswith("error: ")


def test_repeated_scopes_add_up(tmp_path: Path) -> None:
    """Issue 24: `--scopes detect --scopes style` kept only `style`."""
    keys = ["--file", str(tmp_path / "keys.json")]
    runner = CliRunner()
    created = runner.invoke(
        main, ["keys", "create", "--name", "cam", "--scopes", "detect", "--scopes", "style,classify", *keys]
    )
    assert created.exit_code == 0, created.output
    [row] = json.loads(runner.invoke(main, ["keys", "list", "--json", *keys]).output)
    assert row["scopes"] == ["classify", "detect", "style"]
    empty = runner.invoke(main, ["keys", "create", "--name", "none", "--scopes", " , ", *keys])
    assert empty.exit_code == 1 and "error: --scopes names no scope" in empty.output


def test_tls_writes_a_ca_and_two_certificates(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    result = CliRunner().invoke(main, ["keys", "tls", "--out", str(out), "--host", "gateway.example"])
    assert result.exit_code == 0, result.output
    assert f"FOVEA_GATEWAY_TLS_CERT_FILE={out / 'server.pem'}" in result.output
    names = {"ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"}
    assert names <= {p.name for p in out.iterdir()}
