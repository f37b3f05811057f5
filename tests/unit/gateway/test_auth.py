from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from fovea.classify.v1 import classify_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.auth import (
    METHOD_SCOPES,
    Authenticator,
    AuthError,
    add_key,
    hash_key,
    list_keys,
    load_keys,
    parse_expiry,
    revoke_key,
    usage_path,
)
from fovea.models.v1 import models_pb2
from fovea.style.v1 import style_pb2


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Authenticator, str, str, Path]:
    path = tmp_path / "keys.json"
    admin = add_key(path, "admin", ["*"])
    detect_only = add_key(path, "cam", ["detect"])
    return Authenticator(load_keys(path)), admin, detect_only, path


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def test_keys_are_stored_hashed(keys: tuple[Authenticator, str, str, Path]) -> None:
    _, admin, _, path = keys
    text = path.read_text()
    assert admin not in text
    assert hash_key(admin) in text
    assert path.stat().st_mode & 0o777 == 0o600


def test_scopes(keys: tuple[Authenticator, str, str, Path]) -> None:
    auth, admin, cam, _ = keys
    detect = "/fovea.detection.v1.DetectionService/Detect"
    enroll = "/fovea.faces.v1.FacesService/Enroll"
    assert auth.authorize(enroll, md(admin)).name == "admin"
    assert auth.authorize(detect, md(cam)).name == "cam"
    assert auth.authorize(detect, (("x-api-key", cam),)).name == "cam"
    with pytest.raises(AuthError) as denied:
        auth.authorize(enroll, md(cam))
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "faces:enroll" in str(denied.value)


@pytest.mark.parametrize("metadata", [(), md("nope"), (("authorization", "Basic abc"),)])
def test_unauthenticated(keys: tuple[Authenticator, str, str, Path], metadata: tuple) -> None:
    auth = keys[0]
    with pytest.raises(AuthError) as err:
        auth.authorize("/fovea.detection.v1.DetectionService/Detect", metadata)
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_unknown_method_is_refused_even_for_admin(keys: tuple[Authenticator, str, str, Path]) -> None:
    auth, admin, _, _ = keys
    with pytest.raises(AuthError) as err:
        auth.authorize("/fovea.internal.v1.Secret/Do", md(admin))
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_every_public_method_has_a_scope() -> None:
    methods = set()
    for module, name in [
        (detection_pb2, "DetectionService"),
        (faces_pb2, "FacesService"),
        (style_pb2, "StyleService"),
        (models_pb2, "ModelsService"),
        (classify_pb2, "ClassifyService"),
    ]:
        service = module.DESCRIPTOR.services_by_name[name]
        methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    assert methods == set(METHOD_SCOPES)


def test_bad_keys_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps({"keys": [{"name": "x", "sha256": "00" * 32, "scopes": ["fly"]}]}))
    with pytest.raises(ValueError, match="unknown scopes"):
        load_keys(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_keys(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown scopes"):
        add_key(path, "y", ["root"])


# ---------------------------------------------------------------------------------------------- live keys


def test_a_changed_keys_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = add_key(path, "first", ["detect"])
    auth = Authenticator.from_file(path)
    detect = "/fovea.detection.v1.DetectionService/Detect"
    assert not auth.reload_if_changed()  # nothing changed
    second = add_key(path, "second", ["detect"])
    assert auth.reload_if_changed()
    assert auth.authorize(detect, md(second)).name == "second"
    revoke_key(path, "first")
    assert auth.reload_if_changed()
    with pytest.raises(AuthError) as err:
        auth.authorize(detect, md(first))
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(ValueError, match="no key named 'first'"):
        revoke_key(path, "first")


def test_a_bad_keys_file_keeps_the_keys_in_use(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, "ci", ["*"])
    auth = Authenticator.from_file(path)
    path.write_text('{"keys": [{"name": "x", "sha256": "short"}]}')
    with caplog.at_level("ERROR"):
        assert not auth.reload_if_changed()
    assert "keeping the 1 keys in use" in caplog.text and "64-hex-digit" in caplog.text
    assert auth.authorize("/fovea.style.v1.StyleService/GetJob", md(key)).name == "ci"
    path.write_text("{not json")
    assert not auth.reload_if_changed()
    assert auth.names == ["ci"]


def test_an_expired_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    now = datetime.now(UTC)
    live = add_key(path, "live", ["*"], expires=now + timedelta(hours=1))
    old = add_key(path, "old", ["*"], expires=now + timedelta(seconds=1))
    data = json.loads(path.read_text())
    data["keys"][1]["expires"] = "2020-01-01T00:00:00Z"  # as if time had passed
    path.write_text(json.dumps(data))
    auth = Authenticator.from_file(path)
    method = "/fovea.detection.v1.DetectionService/Detect"
    assert auth.authorize(method, md(live)).name == "live"
    with pytest.raises(AuthError, match="expired at 2020-01-01T00:00:00Z") as err:
        auth.authorize(method, md(old))
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_expiry_parsing() -> None:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    # 30 days after 2026-11-30 08:00 is 2026-12-30 08:00; 12 h after is 20:00 the same day.
    assert parse_expiry("30d", now) == datetime(2026, 12, 30, 8, 0, tzinfo=UTC)
    assert parse_expiry("12h", now) == datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    assert parse_expiry("2027-01-01", now) == datetime(2027, 1, 1, tzinfo=UTC)
    for bad in ("soon", "2020-01-01", "0m"):
        with pytest.raises(ValueError):
            parse_expiry(bad, now)


def test_list_shows_use_but_never_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"
    key = add_key(path, "door-7", ["faces:verify"])
    add_key(path, "idle", ["detect"])
    auth = Authenticator.from_file(path)
    auth.authorize("/fovea.faces.v1.FacesService/Verify", md(key))
    auth.flush_usage()
    assert usage_path(path).name == "api-keys.usage.json" and usage_path(path).stat().st_mode & 0o777 == 0o600
    rows = {r["name"]: r for r in list_keys(path)}
    assert set(rows) == {"door-7", "idle"}
    assert rows["door-7"]["scopes"] == ["faces:verify"] and rows["door-7"]["last_used"].endswith("Z")
    assert rows["idle"]["last_used"] == "" and rows["idle"]["created"].endswith("Z")
    text = json.dumps(rows)
    assert key not in text and hash_key(key) not in text
