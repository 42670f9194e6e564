"""Real gateway processes with open relay sessions: revocation across replicas, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from gateway.settings import TokenKey
from tests.conftest import REDIS_URL
from tests.fakes.gateway import AUTH
from tests.fakes.openai import FakeOpenAI
from tests.gateway_proc import GatewayProcess
from tests.test_processes import env_for

OPENAI = {"config": {"provider": "openai", "provider_config": {"ephemeral_token": "ek_proc"}}}


def gateway_env(token_key: TokenKey, fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    return env_for(
        token_key,
        VISEME_GATEWAY_OPENAI_WS_URL=f"{fake.url()}/v1/realtime",
        VISEME_GATEWAY_ENGINE_THREADS="1",
        **extra,
    )


async def start(*procs: GatewayProcess) -> list[str]:
    return list(await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in procs)))


async def signed_url(http: aiohttp.ClientSession, base: str) -> str:
    async with http.post(f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH) as response:
        assert response.status == 200
        return str((await response.json())["signed_url"])


async def next_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    while True:
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.CLOSE:
            return int(message.data), str(message.extra)


async def test_revocation_on_one_replica_closes_a_session_on_the_other(
    token_key: TokenKey, redis_prefix: str
) -> None:
    async with FakeOpenAI(scenario="hold") as fake:
        env = gateway_env(
            token_key,
            fake,
            VISEME_GATEWAY_REDIS_URL=REDIS_URL,
            VISEME_GATEWAY_REDIS_PREFIX=redis_prefix,
        )
        procs = [GatewayProcess(env), GatewayProcess(env)]
        try:
            a, b = await start(*procs)
            async with aiohttp.ClientSession() as http:
                url = await signed_url(http, a)
                on_b = url.replace(a.removeprefix("http"), b.removeprefix("http"))
                async with http.ws_connect(on_b) as ws:
                    assert (await ws.receive_json(timeout=5))["type"] == "session.created"
                    token = url.split("token=")[1]
                    async with http.post(
                        f"{a}/v1/tokens/revoke", json={"token": token}, headers=AUTH
                    ) as response:
                        assert response.status == 200
                    async with asyncio.timeout(1.0):
                        assert await next_close(ws) == (4001, "token revoked")
            await asyncio.wait_for(fake.last.closed.wait(), 1.0)
        finally:
            for proc in procs:
                await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)


async def test_sigterm_closes_open_sessions_with_1001_after_the_drain(
    token_key: TokenKey,
) -> None:
    drain = 0.5
    async with FakeOpenAI(scenario="hold") as fake:
        proc = GatewayProcess(gateway_env(token_key, fake, VISEME_GATEWAY_DRAIN_SECONDS=str(drain)))
        try:
            (base,) = await start(proc)
            async with aiohttp.ClientSession() as http:
                url = await signed_url(http, base)
                async with http.ws_connect(url) as ws:
                    assert (await ws.receive_json(timeout=5))["type"] == "session.created"
                    proc.proc.send_signal(signal.SIGTERM)
                    sent = time.monotonic()
                    async with asyncio.timeout(drain + 5):
                        code, reason = await next_close(ws)
                    assert (code, reason) == (1001, "gateway shutting down")
                    assert time.monotonic() - sent >= drain  # sessions live through the drain
            await asyncio.wait_for(fake.last.closed.wait(), 5)
            assert await asyncio.to_thread(proc.proc.wait, 10) == 0
        finally:
            await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)
