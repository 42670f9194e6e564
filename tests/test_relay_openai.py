"""OpenAI's official Python SDK, unmodified, through the real gateway to a fake Realtime API."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from openai import AsyncOpenAI

from gateway.settings import Settings
from tests.fakes.base import UNKNOWN_EVENT, Message
from tests.fakes.checks import assert_visemes, lips_close
from tests.fakes.gateway import Gateway, point_at, running_gateway
from tests.fakes.openai import FUNCTION_CALL, FakeOpenAI
from viseme_engine.engine import LoadedModels

LAST = {"type": "response.done", "response": {"id": "resp_2"}}  # the fake's script ends here
CONFIG = {"ephemeral_token": "ek_test_1", "model": "gpt-realtime", "voice": "alloy"}


@pytest.fixture
async def world(
    settings: Settings, loaded_models: LoadedModels, redis_prefix: str
) -> AsyncIterator[tuple[FakeOpenAI, Gateway]]:
    async with (
        FakeOpenAI() as fake,
        running_gateway(point_at(settings, fake), loaded_models, redis_prefix) as gw,
    ):
        yield fake, gw


async def test_sdk_session_gets_audio_with_visemes(world: tuple[FakeOpenAI, Gateway]) -> None:
    fake, gw = world
    signed_url = (await gw.sign("openai", CONFIG))["signed_url"]
    client = AsyncOpenAI(api_key="sk-not-used-by-the-gateway", websocket_base_url=signed_url)
    events: list[Message] = []
    async with client.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(10):
            while not events or events[-1] != {
                **events[-1],
                "type": "response.done",
                "response": {"id": "resp_2"},
            }:
                events.append(json.loads(await connection.recv_bytes()))
        seen = fake.last

    # The SDK's own path and query reached the gateway; upstream got the signed credentials.
    assert urlsplit(seen.path).path == "/v1/realtime"
    assert parse_qs(urlsplit(seen.path).query)["model"] == ["gpt-realtime"]
    assert seen.headers["Authorization"] == "Bearer ek_test_1"
    # The voice fixed at signing time went upstream first.
    session = {"type": "realtime", "audio": {"output": {"voice": "alloy"}}}
    assert seen.messages()[0] == {"type": "session.update", "session": session}

    assert events[0]["type"] == "session.created"
    assert UNKNOWN_EVENT in events
    assert FUNCTION_CALL in events
    deltas = [e for e in events if e["type"] == "response.output_audio.delta"]
    assert b"".join(base64.b64decode(d["delta"]) for d in deltas) == b"".join(fake.sent_audio)
    for number, (delta, pcm) in enumerate(zip(deltas, fake.sent_audio, strict=True), start=1):
        assert_visemes(delta["mascotVisemes"], pcm, 24000, number)
    assert lips_close([d["mascotVisemes"] for d in deltas]), (
        "no lip closure in 'Bob may pay my mom'"
    )
    # The end of the response's audio carries what the model's lookahead held back,
    # for the last audio delta; everything else is relayed as the fake sent it.
    (done,) = [e for e in events if e["type"] == "response.output_audio.done"]
    final = done["mascotVisemes"]
    assert (final["final"], final["audio_event_id"]) == (True, len(deltas))
    assert all(0 <= v["offset"] <= deltas[-1]["mascotVisemes"]["audio_duration"]
               for v in final["visemes"])  # fmt: skip
    assert all("mascotVisemes" not in e for e in events if e not in [*deltas, done])

    # The client closed: the fake saw it.
    async with asyncio.timeout(1.0):
        await seen.closed.wait()
    assert seen.close_code == 1000


async def test_browser_subprotocols_echo_realtime_never_the_key(
    world: tuple[FakeOpenAI, Gateway],
) -> None:
    fake, gw = world
    fake.scenario = "hold"
    signed_url = (await gw.sign("openai", CONFIG))["signed_url"]
    offered = ("realtime", "openai-insecure-api-key.sk-browser-secret", "openai-beta.realtime-v1")
    async with gw.http.ws_connect(signed_url, protocols=offered) as ws:
        assert ws.protocol == "realtime"
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "session.created"
    assert all("sk-browser-secret" not in str(v) for v in fake.last.headers.values())


async def test_16_mib_messages_pass_and_frame_types_are_kept(
    world: tuple[FakeOpenAI, Gateway],
) -> None:
    fake, gw = world
    fake.scenario = "echo"
    signed_url = (await gw.sign("openai", CONFIG))["signed_url"]
    head = '{"type":"input_audio_buffer.append","audio":"'
    big = head + "A" * (16 * 1024 * 1024 - len(head) - 2) + '"}'
    async with gw.http.ws_connect(signed_url, max_msg_size=0) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "session.created"
        await ws.receive_json(timeout=5)  # the session.update, echoed
        sent: list[Any] = [big, b'{"type":"binary.json"}', b"\x00\xffnot json", "not json {"]
        for frame in sent:
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        for frame in sent:
            message = await ws.receive(timeout=10)
            kind = aiohttp.WSMsgType.BINARY if isinstance(frame, bytes) else aiohttp.WSMsgType.TEXT
            assert message.type == kind
            assert message.data == frame
    assert fake.last.received[1:] == sent
