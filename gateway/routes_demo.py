"""GET /demo: the browser demo, static files from gateway/static/demo/ (no build step)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

DEMO_DIR = Path(__file__).parent / "static" / "demo"
# Served by name from a fixed list: no path from the URL ever reaches the file system.
# index.html only at /demo: its relative links ("demo/demo.js") resolve from there.
ASSETS = {
    "blendshapes.js": "text/javascript",
    "demo.css": "text/css",
    "demo.js": "text/javascript",
    "face.js": "text/javascript",
    "mouths.js": "text/javascript",
    "player.js": "text/javascript",
}
# The page calls the API with a key the user types in: forbid everything but this origin.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _file(name: str, content_type: str) -> web.Response:
    return web.Response(
        body=(DEMO_DIR / name).read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers={
            "Content-Security-Policy": _CSP,
            "Cache-Control": "no-cache",
            # Never sniffed into another type; the page's URL never leaves with a request.
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


async def page(request: web.Request) -> web.Response:
    return _file("index.html", "text/html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(reason="No such file")
    return _file(name, ASSETS[name])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/demo", page)
    app.router.add_get("/demo/{name}", asset)
