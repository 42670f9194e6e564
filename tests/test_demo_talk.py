"""/demo's "Talk to an agent" in headless Chromium: each official JS SDK (bundled from
npm by ./dev.sh), with the JS client kit (clients/js), through the real gateway over TLS
to a fake provider, a fake microphone talking. The fakes speak espeak-ng's "Bob may pay
my mom" with its labelled closures (libespeak-ng's phoneme events): the page's player
must show viseme 21 within 40 ms of each, on the audio clock, and clear on interruption.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
from playwright.async_api import Browser, Page, Route, async_playwright

from gateway import routes_demo
from gateway.routes_demo import VENDOR_DIR
from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.fakes.base import SENTENCE, FakeProvider, Scenario
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gateway import Gateway, point_at, running_gateway
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.speech import espeak_wav
from tests.test_demo_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.test_processes import self_signed
from tests.test_visemes_timeline import espeak_example, runs
from viseme_engine.engine import LoadedModels

DOCS = Path(__file__).resolve().parent.parent / "docs"
# clients/newest.sh points this at a scratch bundle of the newest SDKs.
NEWEST = os.environ.get("VISEME_GATEWAY_TEST_JS_VENDOR")
SDKS = Path(NEWEST) if NEWEST else VENDOR_DIR
CHUNK_MS = 100
BOUND_MS = 40  # the closure criterion, on the audio clock
needs_sdks = pytest.mark.skipif(
    not all((SDKS / f"sdk-{f}.js").is_file() for f in ("elevenlabs", "openai", "genai")),
    reason="the JS SDKs are not bundled (./dev.sh test bundles them with npm)",
)


@pytest.fixture(autouse=True)
def served_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK bundles /demo serves: dev.sh's, or the ones NEWEST names."""
    monkeypatch.setattr(routes_demo, "VENDOR_DIR", SDKS)


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    """16 kHz audio and 10 ms frame labels of the fakes' sentence."""
    return espeak_example(SENTENCE, "en-us")


def labelled(base: type[FakeProvider], example: dict[str, np.ndarray]) -> type[FakeProvider]:
    """The fake, speaking the labelled audio instead of the espeak-ng CLI's."""

    class Labelled(base):  # type: ignore[valid-type,misc]
        def chunks(self) -> tuple[bytes, ...]:
            audio = example["audio"].astype(np.float32)
            samples = soxr.resample(audio, 16000, self.rate) if self.rate != 16000 else audio
            pcm = np.asarray(samples).clip(-32768, 32767).astype("<i2").tobytes()
            step = self.rate * CHUNK_MS // 1000 * 2
            return tuple(pcm[i : i + step] for i in range(0, len(pcm), step))

    return Labelled


FAKES: dict[str, type[FakeProvider]] = {
    "elevenlabs": FakeElevenLabs,
    "openai": FakeOpenAI,
    "gemini": FakeGemini,
}
# What the page's form gets: agent id (ElevenLabs only) and the provider credential.
CREDENTIALS = {
    "elevenlabs": ("agent_public", ""),
    "openai": ("", "ek_demo_talk"),
    "gemini": ("", "AIza-fake-key"),
}
# Samples the player's state on every animation frame, once the page has made it.
RECORD = """() => {
  const samples = [];
  window.talkSamples = samples;
  const hook = () => {
    const player = window.visemeTalk.player;
    if (player && !player.recorded) {
      player.recorded = true;
      const sample = (s, frame) => samples.push({
        t: s.time, id: s.audioEventId, ms: s.audioMs, v: s.visemeId, oculus: s.oculus,
        gap: s.weights[17] - s.weights[18] + (s.weights[37] + s.weights[39]) / 2,
        playing: s.playing, cuts: player.interruptions.length, frame,
      });
      let last = null;
      player.onFrame((s) => {
        // The mouth as the player has it every 5 ms of audio clock since the last frame
        // (state(t) is what a frame drawn then would show), then the frame drawn now.
        for (let t = (last ?? s.time) + 0.005; last !== null && t < s.time; t += 0.005) {
          sample(player.state(t), false);
        }
        sample(s, true);
        last = s.time;
      });
    }
    requestAnimationFrame(hook);
  };
  requestAnimationFrame(hook);
}"""
PLAYED = """(last) => window.talkSamples.some((s) => s.id === last)
  && !window.visemeTalk.state.playing"""


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    assert shutil.which(str(CHROMIUM)), "Debian's chromium is required (./dev.sh test installs it)"
    mic = tmp_path / "mic.wav"  # what the user says into the fake microphone
    mic.write_bytes(espeak_wav("Hello there, can you tell me a story?"))
    args = [
        *ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}", "--ignore-certificate-errors",
    ]  # fmt: skip
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield browser
        await browser.close()


async def talk_page(browser: Browser, gw: Gateway, provider: str, fmt: str = "sapi") -> Page:
    context = await browser.new_context(
        ignore_https_errors=True,
        permissions=["microphone"],
        viewport={"width": 720, "height": 900},
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{gw.base}/demo")
    await page.fill("#api-key", API_KEY)
    await page.click("#key-button")
    await page.wait_for_function("() => window.visemeTalk.ready")
    await page.wait_for_function("() => /^Ready/.test(window.visemeTalk.status)")
    await page.select_option("#format", fmt)
    await page.select_option("#talk-provider", provider)
    agent, secret = CREDENTIALS[provider]
    if agent:
        await page.fill("#talk-agent", agent)
    await page.fill("#talk-secret", secret)
    await page.evaluate(RECORD)
    await page.click("#talk-start")
    return page


def sentence_ms(sample: dict[str, Any]) -> float:
    """Where in the fake's speech a sample is: message k starts at (k - 1) * 100 ms."""
    return (int(sample["id"]) - 1) * CHUNK_MS + float(sample["ms"])


# In ARKit's terms the lips meet where mouthClose takes back the jaw's opening and nothing
# draws them apart (as tests/test_lipsync_e2e.py measures it): about 0.7 on open vowels.
MAX_GAP = 0.12


def closed(sample: dict[str, Any], fmt: str = "sapi") -> bool:
    """Whether the page's player shows closed lips, in the session's own format."""
    if fmt == "arkit":
        return bool(sample["gap"] <= MAX_GAP)
    if fmt == "oculus":
        return bool(sample["oculus"] == "PP")
    return bool(sample["v"] == 21)


def closure_errors(
    samples: list[dict[str, Any]], closures: list[tuple[int, int]], fmt: str = "sapi"
) -> list[tuple[int, float]]:
    """Per labelled closure: (its start in ms, how far the nearest frame showing closed
    lips lies outside it, on the audio clock; 0 inside it). Fails past the bound.

    A closure no animation frame came near at all (a machine too busy to draw for a
    fifth of a second) says nothing either way: one such is let off, and left out."""
    heard = [s for s in samples if s["id"] is not None]
    shown = [sentence_ms(s) for s in heard if closed(s, fmt)]
    errors = []
    unseen = []
    for start, end in closures:
        lo, hi = start * 10, end * 10
        near = [s for s in heard if lo - BOUND_MS <= sentence_ms(s) <= hi + BOUND_MS]
        if not near:
            unseen.append(lo)
            continue
        distance = min((max(lo - t, t - hi, 0.0) for t in shown), default=float("inf"))
        drawn = [(round(sentence_ms(s)), s["v"], round(s["gap"], 2)) for s in near]
        assert distance <= BOUND_MS, f"lips open around the closure at {lo}-{hi} ms: {drawn}"
        errors.append((lo, distance))
    assert len(unseen) <= 1, f"no animation frame near the closures at {unseen} ms"
    return errors


def onset_errors(
    samples: list[dict[str, Any]], closures: list[tuple[int, int]], fmt: str = "sapi"
) -> list[float]:
    """Per closure: when the lips first show closed near it, minus its labelled start."""
    out = []
    for start, end in closures:
        near = [
            sentence_ms(s)
            for s in samples
            if s["id"] is not None
            and closed(s, fmt)
            and start * 10 - BOUND_MS <= sentence_ms(s) <= end * 10 + BOUND_MS
        ]
        if near:
            out.append(min(near) - start * 10)
    return out


async def run_call(
    browser: Browser,
    settings: Settings,
    models: LoadedModels,
    tmp_path: Path,
    speech: dict[str, np.ndarray],
    provider: str,
    scenario: Scenario,
    fmt: str = "sapi",
    screenshot: str | None = None,
) -> tuple[list[dict[str, Any]], FakeProvider]:
    fake_class = labelled(FAKES[provider], speech)
    async with (
        fake_class(scenario=scenario) as fake,
        running_gateway(point_at(settings, fake), models, tls=self_signed(tmp_path)) as gw,
    ):
        page = await talk_page(browser, gw, provider, fmt)
        last = len(fake.chunks())
        if screenshot:
            await freeze_mid_word(page, screenshot)
        await page.wait_for_function(PLAYED, arg=last, timeout=20_000)
        samples: list[dict[str, Any]] = await page.evaluate("() => window.talkSamples")
        # At rest once the agent is done.
        end = await page.evaluate("() => window.visemeTalk.state")
        assert (end["playing"], end["visemeId"], end["oculus"]) == (False, 0, "sil")
        rest = "() => ['0', undefined].includes(document.getElementById('mouth').dataset.viseme)"
        await page.wait_for_function(rest, timeout=2_000)
        stored = await page.evaluate("() => [localStorage.length, sessionStorage.length]")
        assert stored == [0, 0]
        assert await page.input_value("#talk-secret") == ""  # page memory only
        await page.click("#talk-stop")
        # The fake's script calls a client tool the demo does not have; the SDK says so.
        errors = [e for e in page.errors if not e.startswith("Client tool with name wave")]  # type: ignore[attr-defined]
        assert errors == [], errors
        await page.context.close()
    return samples, fake


async def freeze_mid_word(page: Page, name: str) -> None:
    """Suspends the player's clock mid-word (an open mouth), screenshots the page."""
    await page.wait_for_function(
        """() => { const s = window.visemeTalk.state;
          return s && s.playing && s.audioEventId >= 7 && [2, 4, 11].includes(s.visemeId); }""",
        timeout=20_000,
        polling="raf",
    )
    await page.evaluate(
        "async () => { await window.visemeTalk.player.ctx.suspend();"
        " await new Promise(requestAnimationFrame); await new Promise(requestAnimationFrame); }"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("VISEME_GATEWAY_UPDATE_DOCS"):  # docs/demo-talk.png, on request
        shutil.copyfile(path, DOCS / f"{name}.png")
    shown = await page.evaluate("() => document.getElementById('mouth').dataset.viseme")
    assert shown in {"2", "4", "11"}, shown
    await page.evaluate("() => window.visemeTalk.player.ctx.resume()")


def report(provider: str, errors: list[tuple[int, float]], onsets: list[float]) -> None:
    worst = max(e for _, e in errors)
    print(
        f"{provider}: {len(errors)} closures, lips closed at each, worst {worst:.1f} ms "
        f"outside; onsets {', '.join(f'{o:+.0f}' for o in onsets)} ms"
    )


@needs_sdks
@pytest.mark.parametrize(
    ("provider", "fmt"),
    [*((p, "sapi") for p in FAKES), ("elevenlabs", "oculus"), ("gemini", "arkit")],
)
async def test_the_face_closes_the_lips_at_each_closure_on_the_audio_clock(
    browser: Browser,
    settings: Settings,
    loaded_models: LoadedModels,
    tmp_path: Path,
    speech: dict[str, np.ndarray],
    provider: str,
    fmt: str,
) -> None:
    shot = "demo-talk" if (provider, fmt) == ("openai", "sapi") else None
    samples, fake = await run_call(
        browser, settings, loaded_models, tmp_path, speech, provider, "transcribed", fmt, shot
    )
    heard = [s for s in samples if s["id"] is not None]
    # Every message was heard, in order, from the start of each to its end.
    assert sorted({s["id"] for s in heard}) == list(range(1, len(fake.sent_audio) + 1))
    times = [sentence_ms(s) for s in heard]
    assert all(b >= a for a, b in itertools.pairwise(times))
    closures = runs(speech["labels"], 21)
    assert len(closures) >= 5  # b, b, m, p, m, m
    errors = closure_errors(heard, closures, fmt)
    report(f"{provider} {fmt}", errors, onset_errors(heard, closures, fmt))
    # And the lips open on the vowels between them: a face stuck closed would pass the above.
    vowels = [r for v in (2, 4, 11) for r in runs(speech["labels"], v) if r[1] - r[0] >= 8]
    for start, end in vowels:
        inside = [s for s in heard if start * 10 + 30 <= sentence_ms(s) <= end * 10 - 30]
        assert inside, (provider, start)
        shut = sum(closed(s, fmt) for s in inside)
        assert shut <= len(inside) // 4, (provider, start, [(s["v"], s["gap"]) for s in inside])
    if fmt == "arkit":  # the weights blend: the jaw passes through values between poses
        assert len({round(s["gap"], 3) for s in heard}) > 40


@needs_sdks
@pytest.mark.parametrize("provider", list(FAKES))
async def test_an_interruption_clears_the_face(
    browser: Browser,
    settings: Settings,
    loaded_models: LoadedModels,
    tmp_path: Path,
    speech: dict[str, np.ndarray],
    provider: str,
) -> None:
    samples, fake = await run_call(
        browser, settings, loaded_models, tmp_path, speech, provider, "talk"
    )
    half = len(fake.chunks()) // 2
    cut = next(i for i, s in enumerate(samples) if s["cuts"] > 0)
    after = samples[cut:]
    assert all(s["cuts"] == 1 for s in after)
    # Nothing of the interrupted response is heard or shown after it. (@elevenlabs/client
    # still plays the audio message that carries the interruption's own event_id; the
    # gateway sends no visemes for it, and the face rests over it.)
    for s in after:
        if s["id"] is not None and s["id"] <= half:
            assert provider == "elevenlabs", s
            assert (s["id"], s["v"]) == (half, 0), s
    resumed = [s for s in after if s["id"] is not None and s["id"] > half]
    assert {s["id"] for s in resumed} == set(range(half + 1, len(fake.chunks()) + 1))
    # The response that follows is in sync again: its closures, each within the bound.
    second = [(a, b) for a, b in runs(speech["labels"], 21) if a * 10 >= half * CHUNK_MS + BOUND_MS]
    assert second, "the second half of the sentence has closures"
    errors = closure_errors(resumed, second)
    report(f"{provider} sapi, after the interruption", errors, onset_errors(resumed, second))


async def test_without_the_sdks_the_page_says_what_is_missing(
    browser: Browser,
    settings: Settings,
    loaded_models: LoadedModels,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(routes_demo, "VENDOR_DIR", tmp_path / "not-bundled")
    async with running_gateway(settings, loaded_models) as gw:
        page = await browser.new_page()
        await page.goto(f"{gw.base}/demo")
        await page.wait_for_function("() => /^Not bundled/.test(window.visemeTalk.status)")
        status = await page.evaluate("() => window.visemeTalk.status")
        assert status.startswith("Not bundled: @elevenlabs/client, openai, @google/genai"), status
        assert await page.is_disabled("#talk-start")
        options = await page.eval_on_selector_all(
            "#talk-provider option", "o => o.map(x => x.text)"
        )
        assert all(o.endswith("(SDK not bundled)") for o in options), options
        # The rest of the demo goes on: text to speech still plays.
        await page.fill("#api-key", API_KEY)
        await page.click("#key-button")
        await page.click("#speak")
        await page.wait_for_function(
            '() => /^Done/.test(document.getElementById("status").textContent)', timeout=20_000
        )
        await page.close()


@needs_sdks
async def test_your_own_backend_signs_instead(
    browser: Browser, settings: Settings, loaded_models: LoadedModels, tmp_path: Path
) -> None:
    """With a backend path, the page never needs the gateway API key: it asks the backend,
    which answers with what get-signed-url gave it."""
    asked: list[Any] = []
    async with (
        FakeOpenAI(scenario="transcribed") as fake,
        running_gateway(point_at(settings, fake), loaded_models, tls=self_signed(tmp_path)) as gw,
    ):

        async def backend(route: Route) -> None:
            body: dict[str, Any] = route.request.post_data_json or {}
            asked.append(body)
            config = {"ephemeral_token": "ek_from_the_backend", "lipsync": body["lipsync"]}
            await route.fulfill(json=await gw.sign(body["provider"], config))

        context = await browser.new_context(ignore_https_errors=True, permissions=["microphone"])
        page = await context.new_page()
        await page.route("**/my-backend/signed-url", backend)
        await page.goto(f"{gw.base}/demo")
        await page.wait_for_function("() => /^Ready/.test(window.visemeTalk.status)")
        await page.select_option("#talk-provider", "openai")
        await page.fill("#talk-backend", "/my-backend/signed-url")
        await page.click("#talk-start")
        chunks = len(fake.chunks())
        await page.wait_for_function("(n) => window.visemeTalk.events >= n", arg=chunks)
        await context.close()
    assert asked == [{"provider": "openai", "lipsync": {"format": "sapi"}}]
    # The ephemeral token the backend put in reached the provider, through the gateway.
    assert fake.connections[0].headers["Authorization"] == "Bearer ek_from_the_backend"
