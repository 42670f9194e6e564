"""The Python client kit (clients/python) with the three official SDKs, through the
real gateway to the fake providers: each surfaces every chunk's visemes.

If an SDK update moves the seam a shim relies on, these fail: the kit's promise
that visemes reach app code is tested here, not assumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from openai import AsyncOpenAI
from viseme_gateway_client import Visemes
from viseme_gateway_client import genai as kit_genai
from viseme_gateway_client.elevenlabs import VisemeConversation
from viseme_gateway_client.openai import visemes

from gateway.settings import Settings
from tests.fakes.base import until
from tests.fakes.checks import lips_close
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gateway import Gateway, point_at, running_gateway
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.test_processes import self_signed
from tests.test_relay_elevenlabs import AGENT, BACKEND_KEY, Speaker, customer_backend
from tests.test_relay_gemini import API_KEY_CONFIG, genai_client
from tests.test_relay_openai import CONFIG
from viseme_engine.engine import LoadedModels


@pytest.fixture
async def openai_world(
    settings: Settings, loaded_models: LoadedModels
) -> AsyncIterator[tuple[FakeOpenAI, Gateway]]:
    async with (
        FakeOpenAI() as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        yield fake, gw


@pytest.fixture
async def elevenlabs_world(
    settings: Settings, loaded_models: LoadedModels
) -> AsyncIterator[tuple[FakeElevenLabs, Gateway, TestServer]]:
    async with (
        FakeElevenLabs() as fake,
        running_gateway(point_at(settings, fake), loaded_models) as gw,
    ):
        backend = await customer_backend(gw, AGENT)
        yield fake, gw, backend
        await backend.close()


@pytest.fixture
async def gemini_world(
    settings: Settings, loaded_models: LoadedModels, tmp_path: Path
) -> AsyncIterator[tuple[FakeGemini, Gateway]]:
    tls = self_signed(tmp_path)  # the SDK only speaks wss
    async with (
        FakeGemini() as fake,
        running_gateway(point_at(settings, fake), loaded_models, tls=tls) as gw,
    ):
        yield fake, gw


def as_visemes_json(found: list[Visemes]) -> list[dict[str, Any]]:
    return [{"visemes": v.entries} for v in found]


async def test_openai_events_keep_their_visemes(openai_world: tuple[FakeOpenAI, Gateway]) -> None:
    fake, gw = openai_world
    signed_url = (await gw.sign("openai", CONFIG))["signed_url"]
    client = AsyncOpenAI(api_key="sk-unused", websocket_base_url=signed_url)
    found: list[Visemes] = []
    deltas = 0
    async with client.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(10):
            async for event in connection:
                deltas += event.type == "response.output_audio.delta"
                v = visemes(event)
                if v is not None:
                    found.append(v)
                if event.type == "response.done" and event.response.id == "resp_2":
                    break
    chunks = [v for v in found if not v.final]
    assert len(chunks) == deltas == len(fake.sent_audio)
    assert [v.audio_event_id for v in chunks] == list(range(1, deltas + 1))
    assert [v.final for v in found].count(True) == 1  # the lookahead's last, at the end
    assert lips_close(as_visemes_json(found))


async def test_elevenlabs_conversation_hands_over_its_visemes(
    elevenlabs_world: tuple[FakeElevenLabs, Gateway, TestServer],
) -> None:
    from elevenlabs import ElevenLabs

    fake, _, backend = elevenlabs_world
    found: list[Visemes] = []
    client = ElevenLabs(api_key=BACKEND_KEY, base_url=str(backend.make_url("")).rstrip("/"))
    speaker = Speaker()
    conversation = VisemeConversation(
        client,
        "agent_private",
        requires_auth=True,
        audio_interface=speaker,
        on_visemes=found.append,
    )
    await conversation.start_session()  # type: ignore[no-untyped-call]  # the SDK is untyped
    try:
        await until(lambda: len(found) >= len(fake.chunks()))
    finally:
        await conversation.end_session()  # type: ignore[no-untyped-call]
    assert len(found) == len(fake.sent_audio)
    assert all(v.audio_duration_ms for v in found)
    assert lips_close(as_visemes_json(found))
    assert b"".join(speaker.audio) == b"".join(fake.sent_audio)  # the SDK's own work goes on


async def test_genai_messages_come_with_their_visemes(
    gemini_world: tuple[FakeGemini, Gateway],
) -> None:
    fake, gw = gemini_world
    signed = await gw.sign("gemini", API_KEY_CONFIG)
    client = genai_client(signed, gw)
    pairs = []
    config: Any = {"response_modalities": ["AUDIO"]}
    async with client.aio.live.connect(model="gemini-live-2.5", config=config) as session:
        async for message, v in kit_genai.receive(session):
            pairs.append((message, v))
    with_audio = [
        (m, v)
        for m, v in pairs
        if m.server_content and m.server_content.model_turn and m.server_content.model_turn.parts
    ]
    assert len(with_audio) == len(fake.sent_audio)
    assert all(v is not None and not v.final for _, v in with_audio)  # each its own
    found = [v for _, v in pairs if v is not None]
    assert lips_close(as_visemes_json(found))
