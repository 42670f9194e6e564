"""The TOML keys file: what it accepts and refuses, start-up errors, and reloads of a
running gateway (on SIGHUP and on change) that take effect on open sessions too."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from gateway.keys import parse_keys_file
from gateway.policy import DEFAULT
from gateway.settings import ConfigError, TokenKey, load_settings
from tests.conftest import API_KEY, b64url
from tests.fakes.openai import FakeOpenAI
from tests.gateway_proc import GatewayProcess
from tests.policy_env import AUTH, OPENAI, error_of, keys_toml, next_close, policy_env, sign

GOOD = f"""
[defaults]
concurrent_sessions = 3

[[keys]]
id = "web-app"
name = "Web app"
secret = "{API_KEY}"
[keys.policy]
providers = ["openai"]
allowed_origins = ["https://App.example"]

[[keys]]
id = "ops"
secret = "sha256:{"ab" * 32}"
admin = true
enabled = false
"""


def test_a_keys_file_gives_each_key_its_policy_over_the_defaults() -> None:
    web, ops = parse_keys_file(GOOD)
    assert (web.key_id, web.name, web.enabled, web.admin) == ("web-app", "Web app", True, False)
    assert web.policy.concurrent_sessions == 3
    assert web.policy.providers == ("openai",)
    assert web.policy.allows_origin("https://app.example")
    assert not web.policy.allows_origin("https://evil.example")
    assert web.policy.allows_origin(None)  # a server: no Origin
    assert web.policy.sessions_per_token == DEFAULT.sessions_per_token == 1
    assert (ops.key_id, ops.enabled, ops.admin, ops.digest) == ("ops", False, True, b"\xab" * 32)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[keys]\n", "not valid TOML"),
        ('[[keys]]\nid = "a b"\nsecret = "x"', "id must be"),
        ('[[keys]]\nid = "a"', "secret (plain or sha256:<hex>) is required"),
        ('[[keys]]\nid = "a"\nsecret = "short"', "at least 16 characters"),
        (f'[[keys]]\nid = "a"\nsecret = "{API_KEY}"\ncolour = 1', "unknown fields colour"),
        (
            f'[[keys]]\nid = "a"\nsecret = "{API_KEY}"\n[keys.policy]\nsessions_per_token = 0',
            "policy.sessions_per_token: Input should be greater than or equal to 1",
        ),
        (
            f'[[keys]]\nid = "a"\nsecret = "{API_KEY}"\n[keys.policy]\nallowed_origins = ["x"]',
            "is not scheme://host[:port] or *",
        ),
        ("extra = 1", "unknown top-level entries: extra"),
    ],
)
def test_a_bad_keys_file_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_keys_file(text)


def test_start_up_names_the_keys_file_variable_and_public_url(tmp_path: Path) -> None:
    bad = tmp_path / "keys.toml"
    bad.write_text('[[keys]]\nid = "a"\nsecret = "x"')
    with pytest.raises(ConfigError, match="VISEME_GATEWAY_KEYS_FILE: key 'a': secret"):
        load_settings({"VISEME_GATEWAY_KEYS_FILE": str(bad)})
    dupes = tmp_path / "dupes.toml"
    dupes.write_text(f'[[keys]]\nid = "a"\nsecret = "{API_KEY}"\n' * 2)
    with pytest.raises(ConfigError, match="two keys have the same id"):
        load_settings({"VISEME_GATEWAY_KEYS_FILE": str(dupes)})
    with pytest.raises(ConfigError, match="VISEME_GATEWAY_PUBLIC_URL is required"):
        load_settings({"VISEME_GATEWAY_HOST": "0.0.0.0"})
    for host in ("127.0.0.1", "::1", "localhost"):
        assert load_settings({"VISEME_GATEWAY_HOST": host}).host == host
    public = {"VISEME_GATEWAY_HOST": "0.0.0.0", "VISEME_GATEWAY_PUBLIC_URL": "https://gw.ex"}
    assert load_settings(public).public_url == "https://gw.ex"


async def test_sighup_and_changes_reload_the_keys_file_and_close_a_disabled_keys_sessions(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml({"providers": ["openai"]}))
    async with FakeOpenAI(scenario="hold") as fake:
        env = policy_env(
            token_key, keys, redis_prefix, VISEME_GATEWAY_OPENAI_WS_URL=f"{fake.url()}/v1/realtime"
        )
        proc = GatewayProcess(env)
        try:
            base = await asyncio.to_thread(proc.wait_ready)
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(await sign(http, base))
                assert (await ws.receive_json(timeout=5))["type"] == "session.created"
                keys.write_text("[[keys]\n")  # broken: the keys in force stay
                proc.proc.send_signal(signal.SIGHUP)
                await asyncio.to_thread(wait_for_line, proc, "not reloaded")
                await sign(http, base)
                keys.write_text(keys_toml({"providers": ["gemini"]}))
                proc.proc.send_signal(signal.SIGHUP)
                await asyncio.to_thread(wait_for_line, proc, "keys file reloaded")
                async with http.post(f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH) as r:
                    assert await error_of(r) == (403, "PROVIDER_NOT_ALLOWED")
                # Disabled, without a signal: the file is polled.
                keys.write_text(keys_toml({}).replace('name = "App"', "enabled = false"))
                async with asyncio.timeout(20):
                    while True:
                        async with http.post(
                            f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH
                        ) as r:
                            if r.status == 401:
                                assert (await r.json())["code"] == "INVALID_API_KEY"
                                break
                        await asyncio.sleep(0.1)
                async with asyncio.timeout(20):  # the open session goes at its next check
                    assert await next_close(ws) == (4401, "API key disabled")
        finally:
            await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)


def wait_for_line(proc: GatewayProcess, text: str, times: int = 1) -> None:
    import time

    deadline = time.monotonic() + 20
    while proc.output.count(text) < times:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in the log:\n{proc.output}")
        time.sleep(0.02)


def test_plain_api_keys_keep_working_with_the_default_policy(token_key: TokenKey) -> None:
    settings = load_settings(
        {
            "VISEME_GATEWAY_API_KEYS": API_KEY,
            "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
        }
    )
    from gateway.keys import Keys

    (key,) = Keys(settings.api_keys).ring.keys
    assert key.policy == DEFAULT
    assert key.key_id.startswith("key_")


async def test_sighup_to_the_parent_reloads_every_worker(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml({}))
    env = policy_env(
        token_key,
        keys,
        redis_prefix,
        VISEME_GATEWAY_WORKERS="2",
        VISEME_GATEWAY_KEYS_POLL_SECONDS="0",  # SIGHUP only
    )
    proc = GatewayProcess(env)
    try:
        base = await asyncio.to_thread(proc.wait_ready)
        keys.write_text(keys_toml({"providers": ["gemini"]}))
        assert "keys file reloaded" not in proc.output
        proc.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(wait_for_line, proc, "keys file reloaded: 2 key(s)", 2)
        async with aiohttp.ClientSession() as http:
            for _ in range(10):  # whichever worker answers
                async with http.post(f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH) as r:
                    assert await error_of(r) == (403, "PROVIDER_NOT_ALLOWED")
        assert proc.proc.poll() is None  # the parent lives on
    finally:
        await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)
