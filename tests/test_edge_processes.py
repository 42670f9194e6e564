"""Browser and edge safety on a real gateway process: CORS per key, slow clients,
/metrics on its own listener or behind a token, PUBLIC_URL off loopback, nosniff."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
from pathlib import Path

import aiohttp
import requests

from gateway.settings import TokenKey
from tests.conftest import API_KEY, b64url
from tests.gateway_proc import GatewayProcess
from tests.policy_env import AUTH, OPENAI, error_of, keys_toml, policy_env

APP = "https://app.example"


async def test_cors_is_per_key_and_closed_by_default(
    tmp_path: Path, token_key: TokenKey, redis_prefix: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml({"allowed_origins": [APP]}))
    proc = GatewayProcess(policy_env(token_key, keys, redis_prefix))
    try:
        base = await asyncio.to_thread(proc.wait_ready)
        async with aiohttp.ClientSession() as http:
            ask = {
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            }
            async with http.options(
                f"{base}/v1/get-signed-url", headers={**ask, "Origin": APP}
            ) as r:
                assert r.status == 204
                assert r.headers["Access-Control-Allow-Origin"] == APP
                assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            evil = {"Origin": "https://evil.example"}
            async with http.options(f"{base}/v1/get-signed-url", headers={**ask, **evil}) as r:
                assert await error_of(r) == (403, "ORIGIN_NOT_ALLOWED")
                assert "Access-Control-Allow-Origin" not in r.headers
            url = f"{base}/v1/get-signed-url"
            async with http.post(url, json=OPENAI, headers={**AUTH, "Origin": APP}) as r:
                assert r.status == 200
                assert r.headers["Access-Control-Allow-Origin"] == APP
                assert r.headers["Access-Control-Expose-Headers"] == "Retry-After"
            async with http.post(url, json=OPENAI, headers={**AUTH, **evil}) as r:
                assert await error_of(r) == (403, "ORIGIN_NOT_ALLOWED")
            for same in ({"Origin": base}, {}):  # the gateway's own pages; a server
                async with http.post(url, json=OPENAI, headers={**AUTH, **same}) as r:
                    assert r.status == 200
                    assert "Access-Control-Allow-Origin" not in r.headers
            # The admin key lists no origins: closed for browsers.
            admin = {"Authorization": "Bearer test-key-beta-0123456789", "Origin": APP}
            async with http.post(url, json=OPENAI, headers=admin) as r:
                assert await error_of(r) == (403, "ORIGIN_NOT_ALLOWED")
            async with http.get(f"{base}/demo") as r:
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["Referrer-Policy"] == "no-referrer"
    finally:
        await asyncio.to_thread(proc.stop, signal.SIGTERM, 10)


def plain_env(token_key: TokenKey, **extra: str) -> dict[str, str]:
    return {
        "VISEME_GATEWAY_API_KEYS": API_KEY,
        "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
        **extra,
    }


def closed_by_server(sock: socket.socket, trickle: bytes, within: float) -> bool:
    """Send `trickle` a line at a time, slowly; True once the server hangs up."""
    deadline = time.monotonic() + within
    sock.settimeout(0.3)
    for line in trickle.splitlines(keepends=True) * 100:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(line)
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed
            return True
    return False


def test_slow_headers_and_slow_bodies_are_cut_off(token_key: TokenKey) -> None:
    proc = GatewayProcess(
        plain_env(
            token_key,
            VISEME_GATEWAY_HEADER_TIMEOUT_SECONDS="1",
            VISEME_GATEWAY_BODY_TIMEOUT_SECONDS="1",
        )
    )
    try:
        base = proc.wait_listening()
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            assert closed_by_server(sock, b"X-Slow: 1\r\n", within=20)
        with socket.create_connection((host, int(port))) as sock:
            head = (
                "POST /v1/get-signed-url HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"config":')
            sock.settimeout(20)
            answer = sock.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408")
        assert '"code": "REQUEST_TIMEOUT"' in answer
        assert requests.get(f"{base}/livez", timeout=5).status_code == 200  # others go on
    finally:
        proc.stop(timeout=10)


def test_metrics_on_a_listener_of_its_own_or_behind_a_token(token_key: TokenKey) -> None:
    proc = GatewayProcess(plain_env(token_key, VISEME_GATEWAY_METRICS_PORT="0"))
    try:
        base = proc.wait_listening()
        deadline = time.monotonic() + 10
        while not (found := re.search(r"metrics served at (http://\S+)", proc.output)):
            assert time.monotonic() < deadline, proc.output
            time.sleep(0.05)
        assert requests.get(f"{base}/metrics", timeout=5).status_code == 404
        scraped = requests.get(found.group(1), timeout=5)
        assert scraped.status_code == 200
        assert "viseme_gateway_http_requests_total" in scraped.text
    finally:
        proc.stop(timeout=10)
    token = "metrics-token-0123456789"
    proc = GatewayProcess(plain_env(token_key, VISEME_GATEWAY_METRICS_TOKEN=token))
    try:
        base = proc.wait_listening()
        refused = requests.get(f"{base}/metrics", timeout=5)
        assert (refused.status_code, refused.json()["code"]) == (401, "INVALID_API_KEY")
        wrong = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer x"}, timeout=5)
        assert wrong.status_code == 401
        ok = requests.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert ok.status_code == 200
    finally:
        proc.stop(timeout=10)


def test_off_loopback_an_unprotected_metrics_is_not_served(token_key: TokenKey) -> None:
    public = {"VISEME_GATEWAY_HOST": "0.0.0.0", "VISEME_GATEWAY_PUBLIC_URL": "https://gw.ex"}
    proc = GatewayProcess(plain_env(token_key, **public))
    try:
        base = proc.wait_listening()
        assert requests.get(f"{base}/metrics", timeout=5).status_code == 404
        assert requests.get(f"{base}/livez", timeout=5).status_code == 200
        assert "/metrics is not served: off loopback it needs" in proc.output
    finally:
        proc.stop(timeout=10)


def test_listening_beyond_loopback_needs_public_url(token_key: TokenKey) -> None:
    proc = GatewayProcess(plain_env(token_key, VISEME_GATEWAY_HOST="0.0.0.0"))
    assert proc.proc.wait(30) == 2
    time.sleep(0.2)  # the last stderr line
    assert "VISEME_GATEWAY_PUBLIC_URL is required when listening on 0.0.0.0" in proc.output
