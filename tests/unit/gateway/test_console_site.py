"""console_site.py: the console's files from memory with their headers, nothing else; the pages load no
script, style or font from elsewhere and run no inline code (what the Content-Security-Policy allows); a wheel
carries every file. The console in a real browser against the stack: tests/integration/test_console.py."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fovea.gateway.console_site import CONSOLE_DIR, CSP, console_files, console_routes

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def client() -> TestClient:  # type: ignore[misc]
    app = web.Application()
    app.router.add_routes(console_routes())
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_the_page_and_its_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = await client.get("/")
    text = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "<title>Fovea console</title>" in text and "Sign in to the Fovea console" in text
    assert page.headers["Content-Security-Policy"] == CSP and "script-src 'self'" in CSP
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    script = await client.get("/console/js/app.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert (await client.get("/console/console.css")).content_type == "text/css"


@pytest.mark.parametrize(
    "path", ["/console/nope.js", "/console/../web.py", "/console/%2e%2e/web.py", "/console/js/../../web.py"]
)
async def test_nothing_but_the_console_files(client: TestClient, path: str) -> None:
    assert (await client.get(path)).status == 404


def test_every_module_an_import_names_exists_and_nothing_comes_from_elsewhere() -> None:
    files = console_files()
    scripts = {p: b.decode() for p, b in files.items() if p.endswith(".js")}
    assert "/console/js/app.js" in scripts and len(scripts) >= 9
    for path, text in scripts.items():
        for name in re.findall(r'from "(\.[^"]+)"', text):
            target = (Path(path).parent / name).as_posix()
            target = re.sub(r"/[^/]+/\.\./", "/", target.replace("/./", "/"))
            assert target in files, f"{path} imports {name}, which is not a console file"
    for path, body in files.items():
        text = body.decode()
        assert not re.search(r"(src|href)=\"https?://", text), f"{path} loads something from elsewhere"
        assert "cdn" not in text.lower(), path
    page = files["/console/index.html"].decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert " style=" not in page and "onclick=" not in page, "inline style or handler"


def test_the_files_are_package_data_of_a_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("fovea-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "fovea/gateway/console/" + p.relative_to(CONSOLE_DIR).as_posix()
        for p in CONSOLE_DIR.rglob("*")
        if p.is_file()
    }
    assert expected and expected <= names, sorted(expected - names)
