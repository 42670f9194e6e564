"""Two real gateway processes on one Redis, with a TOML keys file: helpers for the
policy, limit and usage tests (tests/test_limits_processes.py, tests/test_usage_processes.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gateway.settings import TokenKey
from tests.conftest import API_KEY, OTHER_API_KEY, REDIS_URL, b64url
from tests.gateway_proc import GatewayProcess

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {OTHER_API_KEY}"}
OPENAI = {"config": {"provider": "openai", "provider_config": {"ephemeral_token": "ek_proc"}}}


def toml_value(value: object) -> str:
    return json.dumps(value)  # strings, numbers, booleans and arrays of them read alike


def keys_toml(policy: dict[str, Any], admin_policy: dict[str, Any] | None = None) -> str:
    """Key `app` (API_KEY) with `policy`; key `admin` (OTHER_API_KEY), an admin."""
    lines = ["[[keys]]", 'id = "app"', 'name = "App"', f"secret = {toml_value(API_KEY)}"]
    lines.append("[keys.policy]")
    lines += [f"{k} = {toml_value(v)}" for k, v in policy.items()]
    lines += ["", "[[keys]]", 'id = "admin"', f"secret = {toml_value(OTHER_API_KEY)}"]
    lines += ["admin = true", "[keys.policy]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (admin_policy or {}).items()]
    return "\n".join(lines) + "\n"


def policy_env(
    token_key: TokenKey, keys_file: Path, redis_prefix: str, **extra: str
) -> dict[str, str]:
    return {
        "VISEME_GATEWAY_KEYS_FILE": str(keys_file),
        "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
        "VISEME_GATEWAY_REDIS_URL": REDIS_URL,
        "VISEME_GATEWAY_REDIS_PREFIX": redis_prefix,
        "VISEME_GATEWAY_ENGINE_THREADS": "1",
        "VISEME_GATEWAY_WORKERS": "1",
        **extra,
    }


def env_with(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str, policy: dict[str, Any], **extra: str
) -> dict[str, str]:
    """`policy_env` with a keys file of `policy` (key `app`) written under `tmp_path`."""
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml(policy))
    return policy_env(token_key, keys, redis_prefix, **extra)


@asynccontextmanager
async def two_gateways(env: dict[str, str]) -> AsyncIterator[list[str]]:
    """Two gateway processes sharing Redis and the keys file: their base URLs."""
    procs = [GatewayProcess(env), GatewayProcess(env)]
    try:
        bases = await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in procs))
        yield list(bases)
    finally:
        for proc in procs:
            await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str]:
    body = await response.json()
    return response.status, str(body["code"])


async def refused_upgrade(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """Try a WebSocket upgrade to `url`: the status and `code` of its refusal."""
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
        **(headers or {}),
    }
    async with http.get(url.replace("ws", "http", 1), headers=upgrade) as response:
        assert response.status != 101, "the upgrade was accepted"
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
        return await error_of(response)


async def connect(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse | int:
    """A WebSocket to `url`, or the HTTP status that refused it."""
    try:
        return await http.ws_connect(url)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


async def sign(http: aiohttp.ClientSession, base: str, body: dict[str, Any] = OPENAI) -> str:
    async with http.post(f"{base}/v1/get-signed-url", json=body, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["signed_url"])


def on(url: str, base: str) -> str:
    """The same signed URL, sent to another replica."""
    host = url.split("//", 1)[1].split("/", 1)[0]
    return url.replace(host, base.split("//", 1)[1])


def wav_b64(milliseconds: int, rate: int = 16000) -> str:
    """`milliseconds` of silence as base64 raw s16le (exactly that long)."""
    return base64.b64encode(b"\x00\x00" * (rate * milliseconds // 1000)).decode()


async def next_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    while True:
        message = await ws.receive()
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return int(message.data or 0), str(message.extra or "")


async def usage(http: aiohttp.ClientSession, base: str, headers: dict[str, str] = AUTH) -> Any:
    async with http.get(f"{base}/v1/usage", headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()
