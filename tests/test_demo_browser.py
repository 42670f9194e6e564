"""The demo page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against the real gateway on 127.0.0.1: text to speech, the face on the audio clock."""

from __future__ import annotations

import itertools
import math
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, Request, async_playwright

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.speech import espeak_wav
from viseme_engine.engine import LoadedModels
from viseme_engine.lipsync import LipsyncConfig

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
]  # fmt: skip
TEXT = "Bob may pay my mom a penny. She sells fish, shoes and cheese by the sea."

# Waits (on the page's own clock) for speech past `afterMs` where the face shows what WHEN
# asks for (a JS condition on `demo` and `arg`), then suspends the AudioContext: the audio
# clock stops, the face holds still for a look.
FREEZE = """async ([arg, afterMs]) => {
  const demo = window.visemeDemo;
  const deadline = performance.now() + 15000;
  while (!(demo.playing && demo.audioTime > afterMs && (WHEN))) {
    if (performance.now() > deadline) {
      const shown = JSON.stringify([demo.viseme, demo.oculus, demo.jawOpen]);
      throw new Error(`never (WHEN); showing ${shown}`);
    }
    await new Promise(requestAnimationFrame);
  }
  await demo.audioContext.suspend();
  await new Promise(requestAnimationFrame);
  await new Promise(requestAnimationFrame);
  return STATE();
}"""
STATE = """() => {
  const mouth = document.getElementById("mouth");
  const demo = window.visemeDemo;
  return {
    format: demo.format, viseme: demo.viseme, oculus: demo.oculus, playing: demo.playing,
    audioTime: demo.audioTime, attribute: mouth.dataset.viseme ?? null,
    markup: mouth.innerHTML, label: document.getElementById("viseme-label").textContent,
    weights: demo.weights, jawOpen: demo.jawOpen, lipsClosed: demo.lipsClosed,
    head: document.getElementById("head").getAttribute("d"), playhead: playheadColour(),
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
# What the face should show for a state, from the page's own drawing modules.
EXPECTED = """async (state) => {
  const { mouthSvg, OCULUS, PHONEMES } = await import("/demo/mouths.js");
  const { faceSvg, headPath } = await import("/demo/face.js");
  const scratch = document.createElementNS("http://www.w3.org/2000/svg", "g");
  if (state.format === "arkit") {
    scratch.innerHTML = faceSvg(state.weights);
    return { markup: scratch.innerHTML, head: headPath(state.jawOpen) };
  }
  const oculus = state.format === "oculus" ? OCULUS[state.oculus] : null;
  const id = oculus ? oculus.id : state.viseme;
  scratch.innerHTML = mouthSvg(id); // serialized the way the page's mouth element is
  const label = oculus ? `${state.oculus} · ${oculus.phonemes}` : `${id} · ${PHONEMES[id]}`;
  return { viseme: id, markup: scratch.innerHTML, label, head: headPath(0) };
}"""
# Records what the page shows on every animation frame while it plays.
SAMPLE = """() => {
  const demo = window.visemeDemo;
  const mouth = document.getElementById("mouth");
  const samples = [];
  const markups = new Set();
  window.demoSamples = { samples, markups };
  const sample = () => {
    if (demo.playing) {
      const w = demo.weights;
      samples.push({
        at: demo.shownAt, jaw: demo.jawOpen, gap: demo.lipGap, closed: demo.lipsClosed,
        press: w ? (w.mouthPressLeft ?? 0) : null, oculus: demo.oculus, viseme: demo.viseme,
      });
      markups.add(mouth.innerHTML);
    }
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
}"""
SAMPLES = "() => ({ samples: demoSamples.samples, markups: demoSamples.markups.size })"
OCULUS_NAMES = {
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
}  # fmt: skip


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


async def freeze_when(page: Page, when: str, arg: object, after_ms: float = 0) -> dict[str, Any]:
    script = FREEZE.replace("WHEN", when).replace("STATE()", f"({STATE})()")
    state: dict[str, Any] = await page.evaluate(script, [arg, after_ms])
    return state


async def freeze(page: Page, avoid: list[int], after_ms: float = 0) -> dict[str, Any]:
    """Freeze on a SAPI viseme not in `avoid`."""
    return await freeze_when(page, "!arg.includes(demo.viseme)", avoid, after_ms)


async def resume(page: Page) -> None:
    await page.evaluate("window.visemeDemo.audioContext.resume()")


async def stream_done(page: Page) -> None:
    await page.wait_for_function(f"() => /^Done/.test({STATUS}.textContent)", timeout=20_000)


async def snapshot(page: Page, state: dict[str, Any], name: str) -> bytes:
    """Screenshot the page to artifacts/; check the face matches what the page reports."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"demo-{name}.png"
    await page.screenshot(path=str(path))
    shown = state["jawOpen"] if state["format"] == "arkit" else (state["oculus"] or state["viseme"])
    print(f"screenshot: {path} ({state['format']} {shown}, {state['audioTime']:.0f} ms)")
    expected = await page.evaluate(EXPECTED, state)
    assert state["markup"] == expected["markup"]
    assert state["head"] == expected["head"]
    if state["format"] == "arkit":
        assert state["viseme"] is None
        assert state["attribute"] is None
        caption, value = state["label"].split(" · ")[0].split(" ")
        assert caption == "jawOpen"
        assert float(value) == pytest.approx(state["jawOpen"], abs=0.006)
    else:
        assert state["viseme"] == expected["viseme"]
        assert state["attribute"] == str(state["viseme"])
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


def lipsync_formats(page: Page) -> list[object]:
    """The lipsync objects of the page's POST bodies, as they are sent."""
    sent: list[object] = []

    def record(request: Request) -> None:
        if request.method == "POST":
            body = request.post_data_json
            sent.append(body.get("lipsync") if isinstance(body, dict) else body)

    page.on("request", record)
    return sent


def interpolated(track: dict[str, Any], name: str, ms: float) -> tuple[float, float, float, float]:
    """The weight of `name` at speech time `ms`, interpolated from the frames the page
    received, with the two frames around it and the position between them (0-1)."""
    s = track["names"].index(name)
    frames = track["frames"]
    t = ms * track["fps"] / 1000 - track["first"]
    if t <= 0:
        return frames[0][s], frames[0][s], frames[0][s], 0.0
    i = math.floor(t)
    if i >= len(frames) - 1:
        return frames[-1][s], frames[-1][s], frames[-1][s], 0.0
    a = t - i
    before, after = frames[i][s], frames[i + 1][s]
    return before + (after - before) * a, before, after, a


async def test_arkit_face_moves_smoothly_from_the_blendshapes(page: Page) -> None:
    sent = lipsync_formats(page)
    await page.select_option("#format", "arkit")
    await page.evaluate(SAMPLE)
    await page.fill("#text", TEXT)
    await page.click("#speak")
    # Mid-word with the jaw open: the face drawn from these weights, frozen with the clock.
    state = await freeze_when(page, "demo.jawOpen > arg", 0.45, after_ms=400)
    assert state["format"] == "arkit"
    assert state["lipsClosed"] is False
    await snapshot(page, state, "arkit")
    await page.wait_for_timeout(300)
    assert await page.evaluate(STATE) == state
    await resume(page)
    await page.wait_for_function("() => !window.visemeDemo.playing", timeout=20_000)
    await stream_done(page)
    assert sent == [{"format": "arkit"}]
    track = await page.evaluate("() => window.visemeDemo.blendshapes")
    recorded = await page.evaluate(SAMPLES)
    samples = recorded["samples"]
    assert len(track["names"]) == 52
    assert len(samples) > 60, len(samples)  # about 4.5 s of speech

    # Each animation frame shows the weights at its audio time, linear between the two
    # received frames around it: not the nearest frame, not the last one that started.
    between = 0
    for sample in samples:
        jaw, before, after, position = interpolated(track, "jawOpen", sample["at"])
        assert sample["jaw"] == pytest.approx(jaw, abs=1e-9), (sample, before, after, position)
        if abs(after - before) > 0.01 and 0.1 < position < 0.9:
            between += 1
    assert between >= 10, between
    assert len({round(s["jaw"], 6) for s in samples}) > 40
    assert recorded["markups"] > 40  # the drawing follows the weights
    # Smooth: from one animation frame to the next the jaw moves no faster than the
    # gateway's frames allow (docs/lipsync.md, "Continuity bound"), whatever the frame rate.
    rate = LipsyncConfig(format="arkit", fps=track["fps"]).step_bound() * track["fps"] / 1000
    steps = list(itertools.pairwise(samples))
    for a, b in steps:
        assert b["at"] >= a["at"]
        assert abs(b["jaw"] - a["jaw"]) <= rate * (b["at"] - a["at"]) + 1e-6, (a, b)
    assert max(abs(b["jaw"] - a["jaw"]) for a, b in steps) < 0.5
    # The lips close on p/b/m ("Bob may pay my mom"), and the jaw opens wide on the vowels.
    assert any(s["closed"] and s["press"] > 0.3 for s in samples)
    assert any(s["jaw"] > 0.5 and s["gap"] > 20 for s in samples)
    silent = await page.evaluate(STATE)
    assert silent["jawOpen"] < 0.05  # the speech ends at rest


async def test_oculus_names_pick_the_mouth(page: Page) -> None:
    sent = lipsync_formats(page)
    await page.select_option("#format", "oculus")
    await page.evaluate(SAMPLE)
    await page.fill("#text", TEXT)
    await page.click("#speak")
    state = await freeze_when(page, "demo.oculus === arg", "PP")
    assert state["format"] == "oculus"
    assert state["label"] == "PP · p b m"
    await snapshot(page, state, "oculus")  # drawn as SAPI 21, the p/b/m closure
    await resume(page)
    await page.wait_for_function("() => !window.visemeDemo.playing", timeout=20_000)
    await stream_done(page)
    assert sent == [{"format": "oculus"}]
    samples = (await page.evaluate(SAMPLES))["samples"]
    names = {s["oculus"] for s in samples}
    assert names <= OCULUS_NAMES
    assert {"PP", "aa", "SS", "CH"} <= names, names
    pictures = {(s["oculus"], s["viseme"]) for s in samples}
    assert len(pictures) == len(names)  # one SAPI picture per name
    assert ("PP", 21) in pictures
    assert all(s["jaw"] is None for s in samples)  # no blendshapes outside arkit


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
