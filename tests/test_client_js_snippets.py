"""clients/js/README.md's per-SDK snippets, run as they stand in headless Chromium: the
official SDK (bundled from npm by ./dev.sh) with the kit, through the real gateway over
TLS to a fake provider. Only the bare module names are resolved to where /demo serves
them; `/signed-url` is the app's backend (here: the test, signing with the gateway)."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route

from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.fakes.gateway import point_at, running_gateway
from tests.gateway_proc import GatewayProcess
from tests.test_demo_browser import CHROMIUM
from tests.test_demo_talk import FAKES, browser, needs_sdks, served_sdks  # noqa: F401  # fixtures
from tests.test_processes import self_signed
from viseme_engine.engine import LoadedModels

README = Path(__file__).resolve().parent.parent / "clients" / "js" / "README.md"
# An app's import lines, as a bundler would resolve them.
IMPORTS = {
    'import OpenAI from "openai";': 'import { OpenAI } from "/demo/sdk-openai.js";',
    '"openai/realtime/websocket"': '"/demo/sdk-openai.js"',
    '"@elevenlabs/client"': '"/demo/sdk-elevenlabs.js"',
    '"@google/genai"': '"/demo/sdk-genai.js"',
    '"viseme-gateway-client"': '"/demo/index.js"',
}
CONFIGS = {
    "elevenlabs": {"agent_id": "agent_public"},
    "openai": {"ephemeral_token": "ek_snippet"},
    "gemini": {"api_key": "AIza-fake-key"},
}
APP = "const drawMouth = (id) => { window.mouths = (window.mouths ?? 0) + 1; };\n"
assert CHROMIUM  # the browser fixture comes from test_demo_talk


def snippet(provider: str) -> str:
    match = re.search(f"<!-- snippet: {provider} -->\n```js\n(.*?)```", README.read_text(), re.S)
    assert match, f"no {provider} snippet in {README}"
    code = match.group(1)
    for bare, served in IMPORTS.items():
        code = code.replace(bare, served)
    modules = re.findall(r'from "([^"]+)"', code)
    assert modules, code
    assert all(m.startswith("/demo/") for m in modules), modules
    return code


@needs_sdks
@pytest.mark.parametrize("provider", list(FAKES))
async def test_the_readme_snippet_surfaces_every_messages_visemes(
    browser: Browser,  # noqa: F811  # test_demo_talk's, with a fake microphone
    settings: Settings,
    loaded_models: LoadedModels,
    tmp_path: Path,
    provider: str,
) -> None:
    code = snippet(provider)
    async with (
        FAKES[provider](scenario="transcribed") as fake,
        running_gateway(point_at(settings, fake), loaded_models, tls=self_signed(tmp_path)) as gw,
    ):
        context = await browser.new_context(
            ignore_https_errors=True, permissions=["microphone"], bypass_csp=True
        )
        page = await context.new_page()
        logged: list[str] = []
        errors: list[str] = []
        page.on("console", lambda m: logged.append(m.text) if m.type == "log" else None)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        async def backend(route: Route) -> None:
            await route.fulfill(json=await gw.sign(provider, CONFIGS[provider]))

        await page.route("**/signed-url?provider=*", backend)
        await page.goto(f"{gw.base}/demo")
        await page.add_script_tag(content=APP + code, type="module")
        chunks = len(fake.chunks())
        # The player draws the mouth on every animation frame once it has the context.
        await page.wait_for_function("() => (window.mouths ?? 0) > 0", timeout=10_000)
        for _ in range(100):
            if sum(line.startswith("visemes ") for line in logged) >= chunks:
                break
            await page.wait_for_timeout(100)
        await context.close()
    ids = [line.split()[1] for line in logged if line.startswith("visemes ")]
    # One event per audio message, each tied to its message; OpenAI's flush adds one more.
    assert ids[:chunks] == [str(i) for i in range(1, chunks + 1)], logged
    assert errors == [], errors


def test_the_readme_tls_command_serves_https_and_wss(tmp_path: Path) -> None:
    """The README's one-command TLS setup: its openssl part, run as written, makes a
    certificate the gateway serves with (started with the env it names) and a client
    that trusts it accepts for localhost."""
    text = (README.parent.parent.parent / "README.md").read_text()
    match = re.search(r"<!-- snippet: tls -->\n    (.*)\n", text)
    assert match, "no TLS command in README.md"
    make, _, serve = match.group(1).partition(" && VISEME_GATEWAY_TLS_CERT=")
    assert serve.endswith("./dev.sh serve")
    subprocess.run(["bash", "-c", make], cwd=tmp_path, check=True, capture_output=True)
    cert, key = tmp_path / ".tools/tls/cert.pem", tmp_path / ".tools/tls/key.pem"
    # ... and the serve part names the same two files.
    tls_env = f"{cert.relative_to(tmp_path)} VISEME_GATEWAY_TLS_KEY={key.relative_to(tmp_path)} "
    assert serve.startswith(tls_env), serve
    env = {
        "VISEME_GATEWAY_TLS_CERT": str(cert),
        "VISEME_GATEWAY_TLS_KEY": str(key),
        "VISEME_GATEWAY_API_KEYS": API_KEY,
    }
    gateway = GatewayProcess(env)
    try:
        base = gateway.wait_listening()
        assert base.startswith("https://")
        port = int(base.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert tls.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        gateway.stop()


def test_an_api_key_shorter_than_16_characters_stops_start_up() -> None:
    gateway = GatewayProcess({"VISEME_GATEWAY_API_KEYS": "fifteen-chars-k"})
    assert gateway.proc.wait(60) != 0
    assert "at least 16 characters" in gateway.output
    assert "VISEME_GATEWAY_API_KEYS" in gateway.output
