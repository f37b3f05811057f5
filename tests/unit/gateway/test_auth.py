from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.gateway.auth import METHOD_SCOPES, Authenticator, AuthError, add_key, hash_key, load_keys
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
