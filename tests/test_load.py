"""Graceful overload: a deadline per audio message, shedding, readiness and refusal.

The engine is made slow on purpose (a model that sleeps), so the deadline is
what decides, not the test machine's speed.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from typing import Any

import aiohttp
import pytest

from gateway.load import MIN_MESSAGES, STEP_MESSAGES, Load
from gateway.settings import Settings
from tests.fakes.gateway import point_at, running_gateway
from tests.fakes.openai import FakeOpenAI
from viseme_engine.engine import LoadedModels

OPENAI = {"ephemeral_token": "ek_load_1"}
AUDIO = {
    "type": "response.output_audio.delta",
    "delta": base64.b64encode(b"\1\0" * 2400).decode(),  # 100 ms at 24 kHz
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_saturated_while_over_five_percent_of_a_seconds_audio_was_shed() -> None:
    clock = Clock()
    load = Load(clock=clock)
    for _ in range(MIN_MESSAGES - 2):
        load.audio(shed=True)
    assert not load.saturated  # too few messages to tell
    load.audio(shed=False)
    load.audio(shed=False)
    assert load.saturated
    clock.now += 0.5
    assert load.saturated
    clock.now += 0.6  # a second later, nothing is left of it
    assert not load.saturated
    for _ in range(400):
        load.audio(shed=False)
    load.audio(shed=True)
    assert not load.saturated  # one in 401: noise, not saturation
    for _ in range(20):
        load.audio(shed=True)
    assert not load.saturated  # 21 of 421: 4.99 %
    load.audio(shed=True)
    assert load.saturated  # 22 of 422: just over 5 %


def test_under_shedding_fewer_sessions_are_analysed_and_room_returns_with_time() -> None:
    clock = Clock()
    load = Load(clock=clock)
    assert load.keep == 1.0
    for _ in range(6):  # three seconds of every analysed message shed
        for _ in range(STEP_MESSAGES):
            load.audio(shed=True)
        clock.now += 0.5
    load.admits(0.0)  # the last half second is judged
    assert load.keep == pytest.approx(0.7**5)  # down 30 % per half second of shedding
    assert not load.admits(0.5)  # a session of middling priority: passed by now...
    assert load.admits(0.0)  # ...the first ones keep their visemes
    assert load.saturated
    clock.now += 1.6  # quiet: room comes back with time
    assert not load.saturated
    assert load.admits(0.99)
    assert load.keep == 1.0


class SlowModel:
    """The shipped model, taking `delay` seconds more per inference when asked."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.delay = 0.0
        self.lookahead_frames = model.lookahead_frames

    def init_state(self, batch: int) -> Any:
        return self._model.init_state(batch)

    def run(self, audio: Any, state: Any) -> Any:
        time.sleep(self.delay)
        return self._model.run(audio, state)


@pytest.fixture
def slow(loaded_models: LoadedModels) -> tuple[SlowModel, LoadedModels]:
    model = SlowModel(loaded_models.models["default"])
    return model, LoadedModels({"default": model, "indonesian": model}, "cpu")


async def _ready(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/readyz") as response:
        return response.status, await response.json()


async def test_past_the_deadline_audio_goes_on_without_visemes_and_saturation_shows(
    settings: Settings, slow: tuple[SlowModel, LoadedModels]
) -> None:
    model, models = slow
    deadline = dataclasses.replace(settings, viseme_deadline_ms=20)
    async with (
        FakeOpenAI(scenario="echo") as fake,
        running_gateway(point_at(deadline, fake), models) as gw,
    ):
        signed_url = (await gw.sign("openai", OPENAI))["signed_url"]
        async with gw.http.ws_connect(signed_url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "session.created"
            await ws.send_json(AUDIO)
            assert "mascotVisemes" in await ws.receive_json(timeout=5)  # fast: visemes
            model.delay = 0.2  # now every inference takes ten deadlines
            waits = []
            for _ in range(MIN_MESSAGES + 5):
                sent = time.perf_counter()
                await ws.send_json(AUDIO)
                answer = await ws.receive_json(timeout=5)
                waits.append(time.perf_counter() - sent)
                assert answer["delta"] == AUDIO["delta"]  # the audio, at once...
                assert "mascotVisemes" not in answer  # ...without its visemes
            assert sorted(waits)[len(waits) // 2] < 0.15  # not the 0.2 s inference
            status, body = await _ready(gw.http, gw.base)
            assert (status, body["reasons"]) == (503, ["saturated"])
            async with gw.http.get(signed_url) as refused:  # a new session: not now
                assert refused.status == 503
                assert refused.headers["Retry-After"] == "1"
                assert "saturated" in (await refused.json())["error"]
            model.delay = 0.0
            await asyncio.sleep(1.2)  # the busy second is over
            await asyncio.sleep(0.25)  # let the last abandoned inferences drain
            assert (await _ready(gw.http, gw.base))[0] == 200
            await ws.send_json(AUDIO)
            answer = await ws.receive_json(timeout=5)
            assert "mascotVisemes" in answer  # a fresh stream: visemes again
        async with gw.http.get(f"{gw.base}/metrics") as response:
            metrics = await response.text()
    skipped = 'viseme_gateway_viseme_chunks_skipped_total{provider="openai",reason="'
    shed = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
            if line.startswith((f'{skipped}deadline"}}', f'{skipped}saturated"}}'))]  # fmt: skip
    assert sum(shed) == MIN_MESSAGES + 5  # past the deadline, or passed by
