"""Every service's settings class refuses a FOVEA_<SVC>_* variable that names none of its settings."""

from __future__ import annotations

import pydantic
import pytest

from fovea.common.settings import FoveaSettings, check_environment, unknown_variables
from fovea.detection.config import DetectionSettings
from fovea.faces.config import FacesSettings
from fovea.gateway.config import GatewaySettings
from fovea.stack.config import StackSettings, TritonSettings
from fovea.style.config import StyleSettings

SERVICE_SETTINGS = [GatewaySettings, DetectionSettings, FacesSettings, StyleSettings, TritonSettings]


@pytest.mark.parametrize("settings_cls", SERVICE_SETTINGS)
def test_every_service_settings_class_checks_its_prefix(settings_cls: type[FoveaSettings]) -> None:
    assert issubclass(settings_cls, FoveaSettings)
    assert settings_cls.model_config["extra"] == "forbid"
    assert str(settings_cls.model_config["env_prefix"]).startswith("FOVEA_")


def test_a_typo_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOVEA_GATEWAY_PROT", "1")
    with pytest.raises(
        pydantic.ValidationError, match=r"FOVEA_GATEWAY_PROT \(did you mean FOVEA_GATEWAY_PORT\?\)"
    ):
        GatewaySettings()
    monkeypatch.delenv("FOVEA_GATEWAY_PROT")
    monkeypatch.setenv("FOVEA_GATEWAY_PORT", "50555")
    assert GatewaySettings().port == 50555


def test_names_are_compared_as_pydantic_reads_them() -> None:
    env = {
        "fovea_faces_redis_url": "redis://x",  # pydantic-settings reads any case: known
        "fovea_faces_max_fotos": "3",  # ...so a typo in lower case is caught too
        "FOVEA_FACES_PORT": "1",
        "FOVEA_GATEWAY_PROT": "1",  # another prefix: not the faces service's business
        "FOVEA_FACESX": "1",
    }
    assert unknown_variables(FacesSettings, env) == ["fovea_faces_max_fotos"]
    with pytest.raises(ValueError, match="did you mean FOVEA_FACES_MAX_PHOTOS"):
        check_environment(FacesSettings, env)


def test_the_stack_settings_read_every_prefix() -> None:
    """``FOVEA_`` is the stack's prefix and every service's too: the stack's class does not check it."""
    assert not issubclass(StackSettings, FoveaSettings)
    assert StackSettings.model_config["extra"] == "ignore"
