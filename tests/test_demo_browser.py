"""The demo page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against the real gateway on 127.0.0.1: text to speech, the face on the audio clock."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.speech import espeak_wav
from viseme_engine.engine import LoadedModels

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip
TEXT = "Bob may pay my mom a penny. She sells fish, shoes and cheese by the sea."

# Waits (on the page's own clock) for speech past `afterMs` showing a viseme not in `avoid`, then
# suspends the AudioContext: the audio clock stops, the face holds still for a look.
FREEZE = """async ([avoid, afterMs]) => {
  const demo = window.visemeDemo;
  const deadline = performance.now() + 15000;
  while (!(demo.playing && demo.audioTime > afterMs && !avoid.includes(demo.viseme))) {
    if (performance.now() > deadline) throw new Error(`no new viseme; showing ${demo.viseme}`);
    await new Promise(requestAnimationFrame);
  }
  await demo.audioContext.suspend();
  await new Promise(requestAnimationFrame);
  await new Promise(requestAnimationFrame);
  return STATE();
}"""
STATE = """() => {
  const mouth = document.getElementById("mouth");
  return {
    viseme: window.visemeDemo.viseme, playing: window.visemeDemo.playing,
    audioTime: window.visemeDemo.audioTime, attribute: mouth.dataset.viseme,
    markup: mouth.innerHTML, label: document.getElementById("viseme-label").textContent,
    playhead: playheadColour(),
  };
  function playheadColour() {  // the timeline's pixel where the playhead should be
    const canvas = document.getElementById("timeline");
    const span = Math.max(window.visemeDemo.durationMs, 1000);
    const x = Math.round((window.visemeDemo.audioTime / span) * canvas.width);
    const pixel = canvas.getContext("2d").getImageData(Math.min(x, canvas.width - 1), 2, 1, 1);
    return Array.from(pixel.data.slice(0, 3));
  }
}"""
STATUS = 'document.getElementById("status")'
EXPECTED = """async (id) => {
  const { mouthSvg, PHONEMES } = await import("/demo/mouths.js");
  const scratch = document.createElementNS("http://www.w3.org/2000/svg", "g");
  scratch.innerHTML = mouthSvg(id); // serialized the way the page's mouth element is
  return { markup: scratch.innerHTML, label: `${id} · ${PHONEMES[id]}` };
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert shutil.which(str(CHROMIUM)), "Debian's chromium is required (./dev.sh test installs it)"
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(
    browser: Browser,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    settings: Settings,
    loaded_models: LoadedModels,
) -> AsyncIterator[Page]:
    server = await aiohttp_server(create_app(settings, models=loaded_models))
    page = await browser.new_page(viewport={"width": 720, "height": 760})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(str(server.make_url("/demo")))
    await page.fill("#api-key", API_KEY)
    await page.click("#key-button")
    yield page
    assert errors == [], errors
    await page.close()


async def freeze(page: Page, avoid: list[int], after_ms: float = 0) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(
        FREEZE.replace("STATE()", f"({STATE})()"), [avoid, after_ms]
    )
    return state


async def resume(page: Page) -> None:
    await page.evaluate("window.visemeDemo.audioContext.resume()")


async def stream_done(page: Page) -> None:
    await page.wait_for_function(f"() => /^Done/.test({STATUS}.textContent)", timeout=20_000)


async def snapshot(page: Page, state: dict[str, Any], name: str) -> bytes:
    """Screenshot the page to artifacts/; check the face matches what the page reports."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"demo-{name}.png"
    await page.screenshot(path=str(path))
    print(f"screenshot: {path} (viseme {state['viseme']}, {state['audioTime']:.0f} ms)")
    expected = await page.evaluate(EXPECTED, state["viseme"])
    assert state["attribute"] == str(state["viseme"])
    assert state["markup"] == expected["markup"]
    assert state["label"] == expected["label"]
    red, green, blue = state["playhead"]  # the red playhead, at the reported time
    assert red > 150, state["playhead"]
    assert max(green, blue) < 60, state["playhead"]
    png: bytes = await page.locator("#face").screenshot()
    return png


async def test_text_speaks_and_the_face_follows_the_audio_clock(page: Page) -> None:
    await page.fill("#text", TEXT)
    await page.click("#speak")
    first = await freeze(page, [0], after_ms=400)
    first_png = await snapshot(page, first, "midword")
    # Frozen clock, frozen face: the page follows audio time, not wall time.
    await page.wait_for_timeout(300)
    assert await page.evaluate(STATE) == first
    await resume(page)

    second = await freeze(page, [0, first["viseme"]])
    second_png = await snapshot(page, second, "midword-2")
    assert second["audioTime"] > first["audioTime"]
    await resume(page)

    await page.wait_for_function("() => !window.visemeDemo.playing", timeout=20_000)
    await stream_done(page)
    silence = await page.evaluate(STATE)
    silence_png = await snapshot(page, silence, "silence")
    assert silence["viseme"] == 0
    assert len({first["markup"], second["markup"], silence["markup"]}) == 3
    assert len({first_png, second_png, silence_png}) == 3
    # The key lives in page memory only.
    stored = await page.evaluate(
        "() => [localStorage.length, sessionStorage.length, document.cookie]"
    )
    assert stored == [0, 0, ""]
    assert await page.input_value("#api-key") == ""


async def test_wav_file_goes_through_v1_visemes(page: Page, tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    wav.write_bytes(espeak_wav("Bob may pay my mom a penny, she said."))
    await page.set_input_files("#wav", str(wav))
    state = await freeze(page, [0])
    await snapshot(page, state, "wav")
    assert await page.evaluate("() => window.visemeDemo.visemeCount") > 0
    await resume(page)
    await stream_done(page)


async def test_all_22_visemes_have_distinct_drawings(page: Page) -> None:
    sheet = """async () => {
      const { mouthSvg, PHONEMES } = await import("/demo/mouths.js");
      const grid = document.createElement("div");
      grid.id = "sheet";
      document.body.replaceChildren(grid);
      const ns = "http://www.w3.org/2000/svg";
      const markups = [];
      PHONEMES.forEach((phonemes, id) => {
        const svg = document.createElementNS(ns, "svg");
        svg.setAttribute("viewBox", "30 100 140 100");
        svg.setAttribute("width", "140");
        svg.setAttribute("height", "100");
        svg.id = `v${id}`;
        // One clip-path id per drawing on this sheet.
        const markup = mouthSvg(id).replaceAll("mouth-inside", `inside-${id}`);
        const caption = `<text x="34" y="196" font-size="11">${id} · ${phonemes}</text>`;
        svg.innerHTML = `<g>${markup}</g>${caption}`;
        grid.appendChild(svg);
        markups.push(mouthSvg(id));
      });
      return markups;
    }"""
    markups = await page.evaluate(sheet)
    assert len(markups) == 22
    assert len(set(markups)) == 22
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "demo-visemes.png"), full_page=True)
    print(f"screenshot: {ARTIFACTS / 'demo-visemes.png'}")
    crops = set()
    for id_ in range(22):
        crops.add(await page.locator(f"#v{id_} > g").screenshot())
    assert len(crops) == 22
