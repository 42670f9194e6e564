"""ElevenLabs' official Python SDK, unmodified, through the real gateway to a fake ElevenLabs.

The SDK is used as a customer would: `requires_auth=True` makes it ask the
customer's backend (here a tiny aiohttp app) for a signed URL; the backend asks
the gateway, which later fetches ElevenLabs' own signed URL with the agent's key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from elevenlabs import ElevenLabs
from elevenlabs.conversational_ai.conversation import (
    AsyncAudioInterface,
    AsyncConversation,
    ClientTools,
    ConversationInitiationData,
)

from gateway.settings import Settings
from tests.fakes.base import UNKNOWN_EVENT, Message, until
from tests.fakes.checks import assert_visemes, lips_close
from tests.fakes.elevenlabs import TOOL_CALL, FakeElevenLabs
from tests.fakes.gateway import Gateway, point_at, running_gateway
from viseme_engine.engine import LoadedModels

BACKEND_KEY = "backend-key-42"
AGENT = {
    "agent_id": "agent_private",
    "api_key": "xi-secret-1234",
    "sample_rate": 16000,
    "dynamic_variables": {"plan": "gold"},
}


class Speaker(AsyncAudioInterface):
    """Records the output audio the SDK plays."""

    def __init__(self) -> None:
        self.audio: list[bytes] = []
        self.interruptions = 0

    async def start(self, input_callback: Callable[[bytes], Awaitable[None]]) -> None:
        self.input_callback = input_callback

    async def stop(self) -> None:
        return None

    async def output(self, audio: bytes) -> None:
        self.audio.append(audio)

    async def interrupt(self) -> None:
        self.interruptions += 1


class Watched(AsyncConversation):
    """The SDK class; only its message handler is wrapped, to see the frames it ignores."""

    frames: list[Message]

    async def _handle_message(self, message: Any, ws: Any) -> None:
        self.frames.append(message)
        await super()._handle_message(message, ws)  # type: ignore[no-untyped-call]  # SDK untyped


async def customer_backend(gateway: Gateway, config: dict[str, Any]) -> TestServer:
    """What a customer's server does: check its own key, ask the gateway for a URL."""

    async def signed_url(request: web.Request) -> web.Response:
        if request.headers.get("xi-api-key") != BACKEND_KEY:
            raise web.HTTPUnauthorized()
        assert request.query["agent_id"] == config["agent_id"]
        data = await gateway.sign("elevenlabs", config)
        return web.json_response({"signed_url": data["signed_url"]})

    app = web.Application()
    app.router.add_get("/v1/convai/conversation/get-signed-url", signed_url)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def world(
    settings: Settings, loaded_models: LoadedModels, redis_prefix: str
) -> AsyncIterator[tuple[FakeElevenLabs, Gateway, TestServer]]:
    async with (
        FakeElevenLabs() as fake,
        running_gateway(point_at(settings, fake), loaded_models, redis_prefix) as gw,
    ):
        backend = await customer_backend(gw, AGENT)
        yield fake, gw, backend
        await backend.close()


def conversation(backend: TestServer, speaker: Speaker) -> Watched:
    client = ElevenLabs(api_key=BACKEND_KEY, base_url=str(backend.make_url("")).rstrip("/"))
    tools = ClientTools(loop=asyncio.get_running_loop())
    tools.register("wave", lambda params: f"waved {params['hand']}")
    conv = Watched(
        client,
        "agent_private",
        requires_auth=True,
        audio_interface=speaker,
        client_tools=tools,
        config=ConversationInitiationData(dynamic_variables={"user": "ann", "plan": "free"}),
    )
    conv.frames = []
    return conv


async def test_sdk_conversation_gets_audio_and_visemes(
    world: tuple[FakeElevenLabs, Gateway, TestServer],
) -> None:
    fake, _, backend = world
    speaker = Speaker()
    conv = conversation(backend, speaker)
    await conv.start_session()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
    await until(lambda: any(f["type"] == "agent_response" for f in conv.frames))
    seen = fake.last
    await until(lambda: any('"client_tool_result"' in str(f) for f in seen.received))

    # The gateway fetched ElevenLabs' signed URL with the agent's key, not the SDK's.
    assert [r.headers["xi-api-key"] for r in fake.rest_calls] == ["xi-secret-1234"]
    # Audio arrives byte for byte; the stale chunk after the interruption is dropped by the SDK.
    assert b"".join(speaker.audio) == b"".join(fake.sent_audio)
    assert speaker.interruptions == 1
    # Nothing comes before the metadata event, and it comes once.
    types = [f["type"] for f in conv.frames]
    assert types[0] == "conversation_initiation_metadata"
    assert types.count("conversation_initiation_metadata") == 1
    assert UNKNOWN_EVENT in conv.frames
    assert TOOL_CALL in conv.frames

    # Every audio event is followed at once by its visemes; none for the dropped audio.
    half = len(fake.chunks()) // 2
    audio = [f for f in conv.frames if f["type"] == "audio"]
    stale = [f for f in audio if f["audio_event"]["event_id"] == half]
    assert len(stale) == 2
    visemes: list[Message] = []
    heard = iter(fake.sent_audio)
    for frame, after in zip(conv.frames, conv.frames[1:], strict=False):
        if frame["type"] != "audio" or frame is stale[1]:
            continue
        assert after["type"] == "visemes", after
        assert_visemes(after, next(heard), 16000, frame["audio_event"]["event_id"])
        visemes.append(after)
    assert len(visemes) == len(fake.sent_audio) == types.count("visemes")
    assert sum(len(v["visemes"]) for v in visemes) > 0
    assert lips_close(visemes), "no lip closure in 'Bob may pay my mom'"

    # What went upstream: dynamic variables merged (the signed ones win), pong, tool result.
    first = seen.messages()[0]
    assert first["type"] == "conversation_initiation_client_data"
    assert first["dynamic_variables"] == {"user": "ann", "plan": "gold"}
    upstream = seen.messages()
    assert {"type": "pong", "event_id": 1} in upstream
    result = next(m for m in upstream if m.get("type") == "client_tool_result")
    assert (result["tool_call_id"], result["result"]) == ("call_1", "waved 1")

    # The client hangs up: ElevenLabs sees the close.
    await conv.end_session()  # type: ignore[no-untyped-call]
    await conv.wait_for_session_end()
    async with asyncio.timeout(1.0):
        await seen.closed.wait()
    assert seen.close_code == 1000


async def test_revoked_token_closes_the_open_sdk_session(
    world: tuple[FakeElevenLabs, Gateway, TestServer],
) -> None:
    fake, gw, _ = world
    fake.scenario = "hold"
    data = await gw.sign("elevenlabs", AGENT)
    token = data["signed_url"].split("token=")[1]
    async with gw.http.ws_connect(data["signed_url"], protocols=("convai",)) as ws:
        assert ws.protocol == "convai"
        await ws.send_json({"type": "conversation_initiation_client_data"})
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "conversation_initiation_metadata"
        await gw.revoke(token)
        async with asyncio.timeout(1.0):
            message = await ws.receive()
        assert (message.data, message.extra) == (4001, "token revoked")
    async with asyncio.timeout(1.0):
        await fake.last.closed.wait()
