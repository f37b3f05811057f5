"""A door whose PAD stage runs the dense check (policy pad_check dense: the face_mesh model in Triton, the
5-point and dense checks together) through the real gateway (issue 10): a print bent round a 60 mm radius
about its vertical axis and turned 50 degrees, which the 5-point check alone takes for a head, is DENY pad;
the 2.5D head model turning 30 degrees (pad_synth.head_view) is GRANT."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
from PIL import Image

from fovea.client import FoveaClient
from fovea.common.paths import project_root
from fovea.faces.tools.core.pad_render import bent_photo_view, head_view
from fovea.faces.tools.core.pad_synth import rotation
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_eval import portrait

from .conftest import DENSE_DOOR
from .faces_photos import photo, photo_path

pytestmark = pytest.mark.integration


def jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def gallery(client: FoveaClient) -> str:
    name = f"dense-{uuid.uuid4().hex[:8]}"
    client.create_gallery(name)
    client.enroll(name, "obama", [photo("obama")])
    return name


def test_a_bent_print_is_denied_and_a_turning_head_granted(client: FoveaClient, gallery: str) -> None:
    obama2 = Image.open(photo_path("obama2")).convert("RGB")
    bent = [
        jpeg(bent_photo_view(obama2, rotation(50 * (k / 4 - 0.5), 5, 0), 350, (960, 720), radius_mm=60.0))
        for k in range(5)
    ]
    denied = client.verify_access(DENSE_DOOR, gallery, "obama", bent)
    assert denied.decision == "DENY" and denied.reason_kind == "pad", denied
    assert denied.pad is not None and denied.pad.check == "geometry+dense_geometry", denied.pad
    assert denied.pad.verdict == "PAD_ATTACK" and denied.pad.reasons[0].startswith("dense_geometry"), (
        denied.pad
    )
    assert denied.distance < 0.6  # the face matched: the check denied it

    crop, landmarks = portrait(InProcessFaces(project_root() / "model_repository"), obama2)
    rng = np.random.default_rng(1)
    head = [
        jpeg(
            np.clip(head_view(crop, landmarks, y, 0) + rng.normal(0, 2, crop.shape), 0, 255).astype(np.uint8)
        )
        for y in np.linspace(-15, 15, 5)
    ]
    granted = client.verify_access(DENSE_DOOR, gallery, "obama", head)
    assert granted.decision == "GRANT" and granted.reason_kind == "match", granted
    assert granted.pad is not None and granted.pad.verdict == "PAD_BONA_FIDE", granted.pad
    assert granted.pad.score >= granted.pad.threshold
