"""The web console in a real browser (Debian's chromium, driven by Playwright) against the real stack: sign-in,
each page's main flow, a 401 back to sign-in, and `chromium --headless --screenshot` of `/` naming Fovea.

Screenshots of every step go to ``$TMPDIR/fovea-console/`` (look at them: the tests check what a page says,
not how it looks). The browser is Debian's (`apt-get install chromium`): Playwright downloads none here.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fovea.convert.samples import sample

from .conftest import Stack
from .faces_photos import blurred, new_id

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("TMPDIR", "/tmp")) / "fovea-console"
TIMEOUT_MS = 60_000
FACES = "/fovea.faces.v1.FacesService/"


def base_url(stack: Stack) -> str:
    return f"http://{stack.settings.host}:{stack.settings.gateway_http_port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        # A fake camera: the console's "Use the camera" works headless
        extra = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS + extra)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A signed-in page of the console; fails the test on a JavaScript error."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=base_url(stack))
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/")
    page.get_by_label("API key").fill(stack.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Pages").wait_for()
    yield page
    context.close()
    assert not errors, errors


def api(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Connect JSON call with the admin key (``/fovea.faces.v1.FacesService/Enroll`` ...): what a test sets
    up or cleans without the console."""
    request = urllib.request.Request(
        base_url(stack) + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {stack.admin_key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def shot(page: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_page(page: Any, name: str) -> None:
    page.get_by_role("link", name=name).click()
    page.get_by_role("heading", level=1, name=name).wait_for()


def test_the_page_names_fovea_and_chromium_renders_it(stack: Stack, tmp_path: Path) -> None:
    with urllib.request.urlopen(base_url(stack) + "/", timeout=10) as response:
        html = response.read().decode()
    assert "<title>Fovea console</title>" in html
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    png = SHOTS / "chromium-screenshot.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    profile = tmp_path / "profile"
    common = [str(CHROMIUM), *ARGS, f"--user-data-dir={profile}", "--window-size=1280,800"]
    subprocess.run(
        [*common, f"--screenshot={png}", base_url(stack) + "/"], timeout=60, check=True, capture_output=True
    )
    with Image.open(png) as img:
        assert img.size == (1280, 800)
        assert len(img.convert("L").getcolors(256) or []) > 8  # not a blank page
    dom = subprocess.run(
        [*common, "--dump-dom", base_url(stack) + "/"], timeout=60, check=True, capture_output=True, text=True
    ).stdout
    assert "Sign in to the Fovea console" in dom


def test_sign_in_refuses_a_bad_key_and_a_refused_key_returns_to_sign_in(browser: Any, stack: Stack) -> None:
    context = browser.new_context(base_url=base_url(stack))
    page = context.new_page()
    page.goto("/")
    page.get_by_label("API key").fill("fv_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    alert = page.locator("#signin-error")
    alert.filter(has_text="API key").wait_for(timeout=TIMEOUT_MS)
    shot(page, "signin-refused")
    page.get_by_label("API key").fill(stack.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", level=1, name="Detection").wait_for(timeout=TIMEOUT_MS)
    # the key is revoked (here: replaced in the tab) -> the next call's 401 signs out
    page.evaluate("sessionStorage.setItem('fovea-console-key', 'fv_revoked')")
    page.get_by_role("link", name="Models").click()
    page.locator("#signin-error").filter(has_text="Signed out").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_label("API key").is_visible()
    context.close()


def test_detection_of_a_sample_photo_draws_its_boxes(page: Any) -> None:
    open_page(page, "Detection")
    page.get_by_label("Detector", exact=True).select_option("nanodet")
    page.locator("input[type=file]").set_input_files(str(sample("dog")))
    page.get_by_role("button", name="Detect", exact=True).click()
    page.get_by_text("detections", exact=False).first.wait_for()
    rows = page.locator("table tbody tr")
    labels = {rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())}
    assert {"dog", "bicycle"} <= labels, labels
    # the canvas holds the photo at its size, boxes drawn (pixels of the box colours)
    size = page.evaluate(
        "(() => { const c = document.querySelector('canvas'); return [c.width, c.height]; })()"
    )
    assert size == [768, 576]
    shot(page, "detect")
    page.get_by_role("button", name="Use the camera").click()  # the fake camera: a capture is a photo too
    page.get_by_role("button", name="Capture").click()
    page.get_by_role("button", name="Close camera").click()


def test_gallery_create_enrol_with_the_quality_verdicts_and_verify(page: Any, tmp_path: Path) -> None:
    gallery = new_id("console")
    open_page(page, "Galleries")
    page.get_by_label("Gallery id").fill(gallery)
    page.get_by_role("button", name="Create gallery").click()
    page.get_by_role("heading", name=f"Gallery {gallery}").wait_for()
    page.get_by_label("Identity id").fill("barack")
    page.get_by_label("Name", exact=True).fill("Barack Obama")
    fuzzy = tmp_path / "blurred.jpg"
    fuzzy.write_bytes(blurred("obama", 8.0))
    page.locator("input[type=file]").set_input_files([str(sample("obama")), str(fuzzy)])
    page.get_by_role("button", name="Enrol").click()
    verdicts = page.get_by_role("list", name="Quality check verdicts")
    verdicts.get_by_text("refused").wait_for()
    text = verdicts.inner_text()
    assert "accepted" in text and "obama" in text and "refused" in text, text
    page.get_by_role("cell", name="barack", exact=True).wait_for()
    shot(page, "galleries")

    open_page(page, "Verify & identify")
    page.get_by_label("Gallery", exact=True).select_option(gallery)
    page.get_by_label("Claimed identity").fill("barack")
    page.locator("input[type=file]").set_input_files(str(sample("obama2")))
    page.get_by_role("button", name="Verify", exact=True).click()
    page.get_by_text("Match: barack").wait_for()
    shot(page, "verify")
    page.get_by_role("tab", name="Identify 1:N").click()
    page.get_by_role("button", name="Identify", exact=True).click()
    page.get_by_role("cell", name="barack", exact=True).wait_for()
    shot(page, "identify")


def test_a_door_decision_appears_in_the_live_feed_and_the_audit_log(page: Any, stack: Stack) -> None:
    gallery, door = new_id("console-door"), new_id("console-door")
    api(stack, FACES + "CreateGallery", {"galleryId": gallery})
    photo = base64.b64encode(sample("biden").read_bytes()).decode()
    api(stack, FACES + "Enroll", {"galleryId": gallery, "identityId": "joe", "photos": [{"data": photo}]})
    open_page(page, "Doors")
    page.get_by_text("live", exact=True).wait_for()
    panel = page.get_by_role("region", name="Send a burst to a door")
    panel.get_by_label("Door", exact=True).fill(door)
    panel.get_by_label("Gallery", exact=True).select_option(gallery)
    panel.get_by_label("Claimed identity").fill("joe")
    panel.locator("input[type=file]").set_input_files(str(sample("biden")))
    panel.get_by_role("button", name="Send the burst").click()
    panel.get_by_text("GRANT", exact=True).wait_for()
    feed = page.get_by_role("list", name="Live events")
    feed.get_by_text(f"door {door} · joe").first.wait_for()
    assert "access_granted" in feed.inner_text()
    audit = page.get_by_role("region", name="Audit log")
    audit.get_by_role("cell", name=door).first.wait_for()
    shot(page, "doors")


def test_a_style_job_runs_to_its_result_image(page: Any) -> None:
    open_page(page, "Style")
    cards = page.get_by_role("group", name="Named styles").get_by_role("button")
    cards.nth(25).wait_for()  # the cards come from ListStyles after the page opens
    assert cards.count() == 26
    cards.nth(3).click()
    page.locator("input[type=file]").first.set_input_files(str(sample("dog")))
    page.get_by_label("Longest side (px)").fill("192")
    page.get_by_role("button", name="Submit job").click()
    result = page.get_by_role("img", name="The styled result")
    result.wait_for(timeout=120_000)
    assert page.evaluate("document.querySelector('img[alt=\"The styled result\"]').naturalWidth") == 192
    assert page.locator("progress").evaluate("p => p.value === p.max")
    shot(page, "style")


def training_zip(per_class: int = 10) -> bytes:
    """Two classes a frozen ImageNet network tells apart: noisy red squares and noisy blue stripes."""
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(per_class):
            red = np.clip(rng.normal([200, 40, 40], 25, (64, 64, 3)), 0, 255).astype(np.uint8)
            blue = np.clip(rng.normal([40, 60, 200], 25, (64, 64, 3)), 0, 255).astype(np.uint8)
            blue[::8] = 255
            for label, pixels in (("red", red), ("blue", blue)):
                png = io.BytesIO()
                Image.fromarray(pixels).save(png, format="PNG")
                archive.writestr(f"colours/{label}/{i:02d}.png", png.getvalue())
    return buf.getvalue()


def test_a_classifier_trains_from_a_zip_to_succeeded(page: Any, stack: Stack, tmp_path: Path) -> None:
    name = f"console-{new_id('c').split('-')[1]}"
    archive = tmp_path / "colours.zip"
    archive.write_bytes(training_zip())
    open_page(page, "Classifiers")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("…or a .zip of it").set_input_files(str(archive))
    page.get_by_text("20 photos in 2 classes").wait_for()
    page.get_by_label("Epochs").fill("5")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("SUCCEEDED", exact=True).wait_for(timeout=180_000)
    page.get_by_text("Version 1:").wait_for()
    page.get_by_role("heading", name=f"Versions of {name}").wait_for()
    shot(page, "classifiers")
    api(stack, "/fovea.classify.v1.ClassifyService/DeleteClassifier", {"name": name})


def test_models_lists_what_triton_serves(page: Any) -> None:
    open_page(page, "Models")
    models = page.get_by_role("region", name="Triton models")
    models.get_by_role("cell", name="nanodet", exact=True).wait_for()
    assert "READY" in models.inner_text()
    detectors = page.get_by_role("region", name="Detectors")
    assert "nanodet" in detectors.inner_text() and "default" in detectors.inner_text()
    shot(page, "models")
