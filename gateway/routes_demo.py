"""GET /demo: the browser demo, static files from gateway/static/demo/ (no build step).

Its "Talk to an agent" part also loads, when this is a source checkout, the JS client kit
(clients/js/src) and the official JS SDKs that ./dev.sh bundles from npm
(clients/js/demo-vendor/dist, as sdk-*.js). All are served as /demo/<name>, one flat
namespace (a module's relative imports resolve there). Without the kit or the SDKs the
page says what is missing and the rest of it works.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

DEMO_DIR = Path(__file__).parent / "static" / "demo"
_CLIENTS_JS = Path(__file__).resolve().parent.parent / "clients" / "js"
KIT_DIR = _CLIENTS_JS / "src"
VENDOR_DIR = _CLIENTS_JS / "demo-vendor" / "dist"
_JS = "text/javascript"
_DEMO = {
    "blendshapes.js": _JS,
    "demo.css": "text/css",
    "demo.js": _JS,
    "face.js": _JS,
    "mouths.js": _JS,
    "player.js": _JS,
    "talk.js": _JS,
}
# The kit's modules (clients/js/src), by name.
_KIT = (
    "elevenlabs.js", "events.js", "genai.js", "index.js", "lipsync-player.js",
    "microphone.js", "mouth.js", "openai.js", "tables.js",
)  # fmt: skip
# What clients/js/demo-vendor/build.mjs writes.
_VENDOR = (
    "sdk-elevenlabs.js", "sdk-openai.js", "sdk-genai.js",
    "sdk-audioConcatProcessor.js", "sdk-rawAudioProcessor.js",
)  # fmt: skip
# Served by name from a fixed list: no path from the URL ever reaches the file system.
# index.html only at /demo: its relative links ("demo/demo.js") resolve from there.
ASSETS = {**_DEMO, **dict.fromkeys(_KIT, _JS), **dict.fromkeys(_VENDOR, _JS)}
assert len(ASSETS) == len(_DEMO) + len(_KIT) + len(_VENDOR), "one name, one file"
_MISSING = {
    **dict.fromkeys(_KIT, "The JS client kit (clients/js) is not here"),
    **dict.fromkeys(_VENDOR, "The JS SDKs are not bundled: ./dev.sh serve bundles them (npm)"),
}
# The page calls the API with a key the user types in: forbid everything but this origin.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _folder(name: str) -> Path:
    if name in _KIT:
        return KIT_DIR
    return VENDOR_DIR if name in _VENDOR else DEMO_DIR


def _file(name: str, content_type: str) -> web.Response:
    path = _folder(name) / name
    if name in _MISSING and not path.is_file():
        raise web.HTTPNotFound(reason=_MISSING[name])
    return web.Response(
        body=path.read_bytes(),
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
