"""The web console's files (``console/``: plain HTML, CSS and JavaScript modules, no build step), served at
``/`` and ``/console/...`` on the gateway's HTTP port, the origin of the Connect API the console calls.

Every file is read once when the app is made and served from memory: a request names a file of that set or
gets 404, so no path reaches the file system. The pages run no inline script or style, which lets the
Content-Security-Policy allow only this origin (no CDN: the console works offline), camera frames and the
images the API answers with (``data:`` and ``blob:`` URLs).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

CONSOLE_DIR = Path(__file__).with_name("console")
TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated each load: a new version of the gateway serves its own files
}


def console_files(folder: Path = CONSOLE_DIR) -> dict[str, bytes]:
    """``/console/<relative path>`` -> contents of every file of ``folder`` whose type is served.
    ``FileNotFoundError`` when ``folder`` has no ``index.html`` (a wheel built without its package data)."""
    index = folder / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"the console's files are missing: no {index}")
    return {
        "/console/" + path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix in TYPES
    }


def console_routes(folder: Path = CONSOLE_DIR) -> list[web.RouteDef]:
    """``GET /`` (the console's page) and ``GET /console/{path}`` (its files)."""
    files = console_files(folder)

    def respond(path: str) -> web.Response:
        body = files.get(path)
        if body is None:
            raise web.HTTPNotFound(text=f"no console file {path[:200]}")
        response = web.Response(body=body, content_type=TYPES[Path(path).suffix])
        if response.content_type.startswith("text/"):
            response.charset = "utf-8"
        response.headers.update(HEADERS)
        return response

    async def index(_request: web.Request) -> web.Response:
        return respond("/console/index.html")

    async def asset(request: web.Request) -> web.Response:
        return respond(request.path)

    return [web.get("/", index), web.get("/console/{path:.+}", asset)]
