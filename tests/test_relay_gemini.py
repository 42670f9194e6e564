"""google-genai, unmodified, through the real gateway (over TLS: the SDK forces wss)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from google import genai
from websockets.asyncio.client import ClientConnection, connect

from gateway.settings import Settings
from tests.fakes.base import Frame, until
from tests.fakes.checks import assert_visemes, lips_close
from tests.fakes.gateway import Gateway, point_at, running_gateway
from tests.fakes.gemini import TOOL_CALL, UNKNOWN, FakeGemini, binary
from tests.test_processes import self_signed
from viseme_engine.engine import LoadedModels

API_KEY_CONFIG = {"api_key": "AIza-fake-key", "model": "gemini-forced-model"}
EPHEMERAL_CONFIG = {"ephemeral_token": "auth_tokens/fake-ephemeral"}
SETUP = {"setup": {"model": "models/whatever-the-client-says"}}


class Tap:
    """Stands in for the SDK session's socket to keep the raw frames it parses.

    google-genai drops fields it does not know (mascotVisemes among them) and
    offers no public way to see a raw message.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.frames: list[Frame] = []

    async def recv(self, decode: bool | None = None) -> Frame:
        frame = await self._ws.recv(decode=decode)
        self.frames.append(frame)
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


def genai_client(signed: dict[str, Any], gw: Gateway) -> genai.Client:
    """The SDK as the README says: the token as its API key, the gateway as its base."""
    return genai.Client(
        api_key=signed["api_key"],
        http_options={
            "base_url": signed["base_url"],
            "api_version": "v1beta",
            "async_client_args": {"ssl": gw.client_ssl},
        },
    )


@pytest.fixture
async def world(
    settings: Settings, loaded_models: LoadedModels, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[FakeGemini, Gateway]]:
    tls = self_signed(tmp_path)
    async with (
        FakeGemini() as fake,
        running_gateway(point_at(settings, fake), loaded_models, redis_prefix, tls) as gw,
    ):
        yield fake, gw


async def test_sdk_live_session_gets_audio_and_visemes(world: tuple[FakeGemini, Gateway]) -> None:
    fake, gw = world
    signed = await gw.sign("gemini", API_KEY_CONFIG)
    assert signed["base_url"] == gw.base
    client = genai_client(signed, gw)
    config: Any = {"response_modalities": ["AUDIO"]}
    async with client.aio.live.connect(model="gemini-live-2.5", config=config) as session:
        tap = Tap(session._ws)
        session._ws = tap  # type: ignore[assignment]
        messages = [message async for message in session.receive()]
        seen = fake.last

    # Upstream: Google's own key in the query, the model fixed at signing time.
    service = "/ws/google.ai.generativelanguage.v1beta.GenerativeService"
    assert seen.path == f"{service}.BidiGenerateContent?key=AIza-fake-key"
    assert "x-goog-api-key" not in seen.headers
    assert seen.messages()[0]["setup"]["model"] == "models/gemini-forced-model"

    audio = [
        part.inline_data.data
        for m in messages
        if m.server_content and m.server_content.model_turn and m.server_content.model_turn.parts
        for part in m.server_content.model_turn.parts
        if part.inline_data and part.inline_data.data
    ]
    assert b"".join(audio) == b"".join(fake.sent_audio)
    assert any(m.server_content and m.server_content.interrupted for m in messages)
    assert any(m.tool_call for m in messages)
    # The raw frames: binary as Google sent them, visemes beside serverContent.
    assert all(isinstance(f, bytes) for f in tap.frames)
    raw = [json.loads(f) for f in tap.frames]
    assert UNKNOWN in raw
    assert TOOL_CALL in raw
    with_audio = [r for r in raw if "modelTurn" in r.get("serverContent", {})]
    for number, (message, pcm) in enumerate(zip(with_audio, fake.sent_audio, strict=True), 1):
        assert_visemes(message["mascotVisemes"], pcm, 24000, number)
    assert lips_close([m["mascotVisemes"] for m in with_audio]), "no lip closure in the speech"
    # generationComplete ends the audio: the lookahead's last visemes ride on it
    (complete,) = [r for r in raw if r.get("serverContent", {}).get("generationComplete")]
    final = complete["mascotVisemes"]
    assert (final["final"], final["audio_event_id"]) == (True, len(with_audio))
    assert all("mascotVisemes" not in r for r in raw if r not in [*with_audio, complete])

    # The SDK closed the session: the fake saw it.
    await until(seen.closed.is_set, within=1.0)
    assert seen.close_code == 1000


@pytest.mark.parametrize(
    ("config", "path", "headers"),
    [
        (API_KEY_CONFIG, "/ws/{v1beta}.BidiGenerateContent", {"x-goog-api-key": "{token}"}),
        (API_KEY_CONFIG, "//ws/{v1}.BidiGenerateContent?key={token}", {}),
        (API_KEY_CONFIG, "/ws/{v1alpha}.BidiGenerateContent", {"Authorization": "Bearer {token}"}),
        (EPHEMERAL_CONFIG, "/ws/{v1alpha}.BidiGenerateContentConstrained?access_token={token}", {}),
        (
            EPHEMERAL_CONFIG,
            "/ws/{v1beta}.BidiGenerateContentConstrained",
            {"Authorization": "Token {token}"},
        ),
    ],
)
async def test_every_path_and_token_location(
    world: tuple[FakeGemini, Gateway], config: dict[str, str], path: str, headers: dict[str, str]
) -> None:
    fake, gw = world
    fake.scenario = "hold"
    token = (await gw.sign("gemini", config))["api_key"]
    for version in ("v1alpha", "v1beta", "v1"):
        path = path.replace(
            "{" + version + "}", f"google.ai.generativelanguage.{version}.GenerativeService"
        )
    url = gw.ws_base + path.replace("{token}", quote(token, safe=""))
    extra = {k: v.replace("{token}", token) for k, v in headers.items()}
    async with connect(url, additional_headers=extra, ssl=gw.client_ssl) as ws:
        await ws.send(json.dumps(SETUP))
        first = await ws.recv()
        assert first == binary({"setupComplete": {}})  # nothing injected before it
    if "ephemeral_token" in config:
        assert fake.last.path.endswith(
            "v1alpha.GenerativeService.BidiGenerateContentConstrained?access_token=auth_tokens%2Ffake-ephemeral"
        )
    else:
        assert fake.last.path.endswith(".BidiGenerateContent?key=AIza-fake-key")
