"""Several worker processes on one port (gateway/workers.py): one gateway to its
clients, counters and gauges summed over the workers, revocations reaching all."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp

from gateway.settings import TokenKey
from tests.conftest import REDIS_URL
from tests.fakes.gateway import AUTH
from tests.fakes.openai import FakeOpenAI
from tests.gateway_proc import GatewayProcess
from tests.test_processes import env_for
from tests.test_relay_processes import gateway_env, next_close, signed_url, start

SESSIONS = 6


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def test_two_workers_serve_as_one_gateway(token_key: TokenKey, redis_prefix: str) -> None:
    async with FakeOpenAI(scenario="hold") as fake:
        env = gateway_env(
            token_key,
            fake,
            VISEME_GATEWAY_REDIS_URL=REDIS_URL,
            VISEME_GATEWAY_REDIS_PREFIX=redis_prefix,
            VISEME_GATEWAY_WORKERS="2",
        )
        proc = GatewayProcess(env)
        try:
            (base,) = await start(proc)
            assert len(children(proc.proc.pid)) == 2
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)
            ) as http:
                # force_close: every request a new connection, so both workers answer some
                urls = [await signed_url(http, base) for _ in range(SESSIONS)]
                sockets = [await http.ws_connect(url) for url in urls]
                for ws in sockets:
                    assert (await ws.receive_json(timeout=5))["type"] == "session.created"
                issued = 'viseme_gateway_tokens_issued_total{provider="openai"}'
                active = 'viseme_gateway_relay_sessions_active{provider="openai"}'
                for _ in range(4):  # whichever worker answers, it speaks for both
                    async with http.get(f"{base}/metrics") as response:
                        text = await response.text()
                    assert metric(text, issued) == SESSIONS
                    assert metric(text, active) == SESSIONS
                async with http.post(
                    f"{base}/v1/tokens/revoke", json={"all": True}, headers=AUTH
                ) as response:
                    assert response.status == 200
                async with asyncio.timeout(2.0):  # every worker closes its own sessions
                    closes = await asyncio.gather(*(next_close(ws) for ws in sockets))
                assert closes == [(4001, "token revoked")] * SESSIONS
                for ws in sockets:
                    await ws.close()
        finally:
            code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 30)
        assert code == 0, proc.output
        assert "Traceback" not in proc.output


async def test_more_than_one_worker_without_redis_is_refused(token_key: TokenKey) -> None:
    proc = GatewayProcess(env_for(token_key, VISEME_GATEWAY_WORKERS="2"))
    code = await asyncio.to_thread(proc.proc.wait, 30)
    assert code == 2
    assert "VISEME_GATEWAY_WORKERS=2 needs VISEME_GATEWAY_REDIS_URL" in proc.output


async def test_sigterm_while_a_dead_worker_is_being_replaced_stops_everything(
    token_key: TokenKey, redis_prefix: str
) -> None:
    import os

    env = env_for(
        token_key,
        VISEME_GATEWAY_REDIS_URL=REDIS_URL,
        VISEME_GATEWAY_REDIS_PREFIX=redis_prefix,
        VISEME_GATEWAY_WORKERS="2",
        VISEME_GATEWAY_ENGINE_THREADS="1",
    )
    proc = GatewayProcess(env)
    await start(proc)
    workers = children(proc.proc.pid)
    os.kill(workers[0], signal.SIGKILL)  # the parent replaces it after a pause...
    await asyncio.sleep(0.2)
    proc.proc.send_signal(signal.SIGTERM)  # ...during which the gateway is told to stop
    code = await asyncio.to_thread(proc.proc.wait, 15)  # no second SIGTERM needed
    assert code == 0, proc.output
    assert children(proc.proc.pid) == []
