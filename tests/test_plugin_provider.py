"""A provider the gateway was never edited for: tests/plugins/echo.py and its fake.

It is named in the settings' provider_modules and nowhere else; the gateway
derives its signed URLs, route, settings and OpenAPI entries from the registry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import aiohttp
import pytest

from gateway.settings import ConfigError, Settings, load_settings
from tests.fakes.checks import assert_visemes, lips_close
from tests.fakes.echo import SECRET, FakeEcho
from tests.fakes.gateway import AUTH, running_gateway
from viseme_engine.engine import LoadedModels

PLUGIN = "tests.plugins.echo"
ROOM = {"room": "lobby", "secret": SECRET}


def echo_settings(settings: Settings, fake: FakeEcho) -> Settings:
    return dataclasses.replace(
        settings, provider_modules=(PLUGIN,), urls={"echo_ws_url": fake.url()}
    )


async def test_a_plugin_provider_relays_with_visemes(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with (
        FakeEcho() as fake,
        running_gateway(echo_settings(settings, fake), loaded_models) as gw,
    ):
        signed = await gw.sign("echo", ROOM)
        assert signed["signed_url"].startswith(f"{gw.ws_base}/v1/echo?token=")
        messages: list[dict[str, Any]] = []
        async with gw.http.ws_connect(signed["signed_url"]) as ws:
            async for frame in ws:
                messages.append(json.loads(frame.data))
                if messages[-1].get("final"):
                    break
        ops = [m["op"] for m in messages]
        assert ops[:2] == ["hello", "something-new"]  # unknown ops pass through
        audio = [m for m in messages if m["op"] == "audio"]
        assert len(audio) == len(fake.chunks())
        visemes = [m for m in messages if m["op"] == "visemes" and not m.get("final")]
        assert len(visemes) == len(audio)  # each audio message is followed by its visemes
        for index, (chunk, v) in enumerate(zip(fake.chunks(), visemes, strict=True), start=1):
            assert ops[ops.index("audio") + 2 * (index - 1) + 1] == "visemes"
            assert_visemes(v, chunk, fake.rate, index)
        assert lips_close(visemes)
        assert messages[-2]["op"] == "done"
        assert messages[-1]["final"] is True  # the lookahead's last visemes, after "done"
        assert fake.last.path == "/echo?room=lobby"


async def test_a_plugin_provider_is_in_the_schema_and_the_openapi_document(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with (
        FakeEcho() as fake,
        running_gateway(echo_settings(settings, fake), loaded_models) as gw,
    ):
        bad = {"config": {"provider": "echo", "provider_config": {"room": "Lobby!", "secret": "x"}}}
        async with gw.http.post(f"{gw.base}/v1/get-signed-url", json=bad, headers=AUTH) as r:
            assert r.status == 400
            assert (await r.json())["error"].startswith(
                "Invalid provider config: config.provider_config.room:"
            )
        async with gw.http.get(f"{gw.base}/openapi.json") as r:
            document = await r.json()
        assert "/v1/echo" in document["paths"]
        assert "EchoSpec" in document["components"]["schemas"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.http.ws_connect(f"{gw.ws_base}/v1/echo")  # no token
        assert refused.value.status == 401


def test_a_plugin_declares_its_own_url_setting() -> None:
    env = {"VISEME_GATEWAY_PROVIDER_MODULES": PLUGIN, "VISEME_GATEWAY_ECHO_WS_URL": "ws://e:1"}
    assert load_settings(env).urls["echo_ws_url"] == "ws://e:1"
    with pytest.raises(ConfigError, match="VISEME_GATEWAY_ECHO_WS_URL"):
        load_settings({**env, "VISEME_GATEWAY_ECHO_WS_URL": "http://e:1"})
    with pytest.raises(ConfigError, match="VISEME_GATEWAY_PROVIDER_MODULES"):
        load_settings({"VISEME_GATEWAY_PROVIDER_MODULES": "tests.plugins.nothing_here"})


async def test_a_bug_in_an_adapter_closes_the_session_with_1011_never_1000(
    settings: Settings, loaded_models: LoadedModels
) -> None:
    async with (
        FakeEcho(scenario="echo") as fake,
        running_gateway(echo_settings(settings, fake), loaded_models) as gw,
    ):
        signed = await gw.sign("echo", ROOM)
        async with gw.http.ws_connect(signed["signed_url"]) as ws:
            assert (await ws.receive_json(timeout=5))["op"] == "hello"
            await ws.send_json({"op": "bug"})  # echoed: upstream sends it
            message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (1011, "gateway relay error")
        await asyncio.wait_for(fake.last.closed.wait(), 2.0)
        assert fake.last.close_code == 1011  # upstream is told too
