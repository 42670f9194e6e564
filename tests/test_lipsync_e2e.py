"""Every lipsync format, end to end: espeak-ng's "Bob may pay my mom" through
POST /v1/visemes and through each provider's relay, lips closed at each
labelled closure (viseme 21, PP, or the pressed-lips blendshapes).

The closures come from libespeak-ng's own phoneme events; the gateway only
hears the audio.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
import soxr
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import API_KEY
from tests.fakes.base import FakeProvider
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gateway import point_at, running_gateway
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.test_visemes_timeline import espeak_example, runs, wav16k
from viseme_engine.engine import LoadedModels
from viseme_engine.poses import ARKIT_INDEX

Client = TestClient[web.Request, web.Application]
SENTENCE = "Bob may pay my mom."
FORMATS = ("sapi", "oculus", "arkit")
CHUNK_MS = 100
# In ARKit's terms the lips meet where mouthClose takes back the jaw's opening
# and nothing draws them apart: this gap is about 0.7 on the open vowels here.
JAW, CLOSE = ARKIT_INDEX["jawOpen"], ARKIT_INDEX["mouthClose"]
APART = ARKIT_INDEX["mouthLowerDownLeft"], ARKIT_INDEX["mouthUpperUpLeft"]
MAX_GAP = 0.12


@pytest.fixture(scope="module")
def example() -> dict[str, np.ndarray]:
    return espeak_example(SENTENCE, "en-us")


def closed(entries: list[tuple[float, Any]], fmt: str, frames: int) -> np.ndarray:
    """Per 10 ms frame: whether the output shows closed lips there."""
    track = np.zeros(frames, bool)
    if fmt == "arkit":
        for at_ms, weights in entries:
            frame = int(at_ms // 10)
            gap = weights[JAW] - weights[CLOSE] + (weights[APART[0]] + weights[APART[1]]) / 2
            if 0 <= frame < frames and gap <= MAX_GAP:
                track[frame] = True
        return track
    shown = np.zeros(frames, bool)
    for at_ms, name in sorted(entries, key=lambda e: e[0]):
        shown[max(0, min(frames, int(at_ms // 10))) :] = name in (21, "PP")
    return shown


def assert_lips_close(labels: np.ndarray, track: np.ndarray) -> None:
    closures = runs(labels, 21)
    assert len(closures) >= 5  # b, b, m, p, m, m
    for start, end in closures:
        window = track[max(0, start - 3) : end + 3]  # within 30 ms of the closure
        assert window.any(), f"lips stay open over the closure at {start * 10} ms"
    vowels = [r for v in (2, 4, 11) for r in runs(labels, v) if r[1] - r[0] >= 8]
    assert len(vowels) >= 4  # the o of Bob and mom, the vowels of may, pay, my
    for start, end in vowels:  # and a face that never opened would pass the above
        assert not track[start:end].all(), f"lips closed over the vowel at {start * 10} ms"


def timed(piece: dict[str, Any], start_ms: float) -> list[tuple[float, Any]]:
    """(stream time in ms, viseme id, Oculus name or 52 weights) of one piece."""
    if "blendshapes" in piece:
        shapes = piece["blendshapes"]
        assert len(shapes["names"]) == 52
        step = 1000 / shapes["fps"]
        return [(start_ms + shapes["offset"] + j * step, f) for j, f in enumerate(shapes["frames"])]
    return [(start_ms + v["offset"], v.get("visemeId", v.get("viseme"))) for v in piece["visemes"]]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_visemes_endpoint_in_every_format(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    loaded_models: LoadedModels,
    example: dict[str, np.ndarray],
    fmt: str,
) -> None:
    client = await aiohttp_client(create_app(settings, models=loaded_models))
    audio = base64.b64encode(wav16k(example["audio"])).decode()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    response = await client.post(
        "/v1/visemes", json={"audio": audio, "lipsync": {"format": fmt}}, headers=headers
    )
    assert response.status == 200
    pieces = [json.loads(b[6:]) for b in (await response.text()).split("\n\n") if b[:6] == "data: "]
    entries = [e for piece in pieces for e in timed(piece, 0.0)]  # offsets from the start
    labels = example["labels"]
    assert_lips_close(labels, closed(entries, fmt, len(labels)))
    if fmt == "arkit":  # every frame of the audio, at 60 fps, once
        duration_ms = len(example["audio"]) / 16
        assert len(entries) == -(-round(duration_ms / 10) * 60 // 100)
        assert [round(t * 60 / 1000) for t, _ in entries] == list(range(len(entries)))


async def test_sapi_is_todays_output_byte_for_byte(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    loaded_models: LoadedModels,
    example: dict[str, np.ndarray],
) -> None:
    client = await aiohttp_client(create_app(settings, models=loaded_models))
    audio = base64.b64encode(wav16k(example["audio"])).decode()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    bodies = []
    explicit = {"format": "sapi", "min_hold_ms": 30, "smoothing": 0.1}
    same: list[dict[str, Any]] = [{}, {"lipsync": {}}, {"lipsync": explicit}]
    for extra in same:
        response = await client.post("/v1/visemes", json={"audio": audio, **extra}, headers=headers)
        bodies.append(await response.read())
    assert bodies[0] == bodies[1] == bodies[2]
    assert b'"visemeId"' in bodies[0]
    bad = {"audio": audio, "lipsync": {"format": "arkit", "fps": 24}}
    response = await client.post("/v1/visemes", json=bad, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"].startswith("Invalid audio data: lipsync.fps:")


def _resampled(example: dict[str, np.ndarray], rate: int) -> bytes:
    samples = soxr.resample(example["audio"].astype(np.float32), 16000, rate)
    return np.asarray(samples).clip(-32768, 32767).astype("<i2").tobytes()


PROVIDERS: dict[str, tuple[type[FakeProvider], dict[str, Any], int]] = {
    "openai": (FakeOpenAI, {"ephemeral_token": "ek_lips"}, 24000),
    "elevenlabs": (FakeElevenLabs, {"agent_id": "agent_public"}, 16000),
    "gemini": (FakeGemini, {"api_key": "AIza-fake-key"}, 24000),
}


def _audio_message(provider: str, pcm: bytes, index: int) -> dict[str, Any]:
    data = base64.b64encode(pcm).decode()
    if provider == "openai":
        return {"type": "response.output_audio.delta", "delta": data}
    if provider == "elevenlabs":
        return {"type": "audio", "audio_event": {"audio_base_64": data, "event_id": index}}
    inline = {"mimeType": "audio/pcm;rate=24000", "data": data}
    return {"serverContent": {"modelTurn": {"parts": [{"inlineData": inline}]}}}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_every_provider_relays_every_format(
    settings: Settings,
    loaded_models: LoadedModels,
    example: dict[str, np.ndarray],
    provider: str,
    fmt: str,
) -> None:
    fake_class, config, rate = PROVIDERS[provider]
    pcm = _resampled(example, rate)
    step = rate * CHUNK_MS // 1000 * 2
    chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    entries: list[tuple[float, Any]] = []
    # The fake echoes what the client sends: the client plays the provider's part.
    async with (
        fake_class(scenario="echo") as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        signed = await gw.sign(provider, {**config, "lipsync": {"format": fmt}})
        if provider == "gemini":
            path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
            url = f"{gw.ws_base}{path}?key={signed['api_key']}"
        else:
            url = signed["signed_url"]
        async with gw.http.ws_connect(url) as ws:
            if provider == "elevenlabs":
                await ws.send_json({"type": "conversation_initiation_client_data"})
                while (await ws.receive_json(timeout=5)).get("type") != (
                    "conversation_initiation_metadata"
                ):
                    pass
            elif provider == "gemini":
                await ws.send_json({"setup": {"model": "models/x"}})
                while "setupComplete" not in json.loads((await ws.receive(timeout=5)).data):
                    pass
            for index, chunk in enumerate(chunks, start=1):
                await ws.send_json(_audio_message(provider, chunk, index))
                while True:  # the audio message, then (ElevenLabs) its visemes event
                    message = json.loads((await ws.receive(timeout=5)).data)
                    piece = message.get("mascotVisemes") or (
                        message if message.get("type") == "visemes" else None
                    )
                    if piece is not None:
                        break
                assert piece["audio_event_id"] == index
                entries += timed(piece, (index - 1) * CHUNK_MS)
    labels = example["labels"]
    assert_lips_close(labels, closed(entries, fmt, len(labels)))
