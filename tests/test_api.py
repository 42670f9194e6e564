"""The HTTP API against the app on a real loopback server (aiohttp's test server)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app, providers_for
from gateway.openapi import document
from gateway.revocation import RedisStore
from gateway.settings import Settings
from tests.conftest import API_KEY, OTHER_API_KEY, REDIS_URL
from viseme_engine.engine import LoadedModels

Client = TestClient[web.Request, web.Application]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_API_KEY}"}
CONFIGS: dict[str, dict[str, Any]] = {
    "elevenlabs": {"agent_id": "agent_7", "api_key": "xi-secret-1234", "sample_rate": 16000},
    "openai": {"ephemeral_token": "ek_secret_5678", "model": "gpt-realtime", "voice": "alloy"},
    "gemini": {"ephemeral_token": "auth_tokens/secret-9", "model": "models/gemini-live"},
}


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    redis_prefix: str,
    loaded_models: LoadedModels,
) -> Client:
    app = create_app(settings, RedisStore.from_url(REDIS_URL, redis_prefix), loaded_models)
    return await aiohttp_client(app)


async def sign(client: Client, provider: str, headers: dict[str, str] = AUTH) -> str:
    body = {"config": {"provider": provider, "provider_config": CONFIGS[provider]}}
    response = await client.post("/v1/get-signed-url", json=body, headers=headers)
    assert response.status == 200, await response.text()
    data = await response.json()
    if provider == "gemini":
        return str(data["api_key"])
    return parse_qs(urlsplit(str(data["signed_url"])).query)["token"][0]


@pytest.mark.parametrize("provider", ["elevenlabs", "openai"])
async def test_signed_url_shape(client: Client, provider: str) -> None:
    body = {"config": {"provider": provider, "provider_config": CONFIGS[provider]}}
    response = await client.post("/v1/get-signed-url", json=body, headers=AUTH)
    data = await response.json()
    url = urlsplit(data["signed_url"])
    assert (url.scheme, url.path) == ("ws", "/v1/conversation")
    assert url.netloc == f"127.0.0.1:{client.port}"
    for secret in CONFIGS[provider].values():
        if isinstance(secret, str) and "secret" in secret:
            assert secret not in data["signed_url"]


async def test_gemini_gets_api_key_and_base_url(client: Client) -> None:
    body = {"config": {"provider": "gemini", "provider_config": CONFIGS["gemini"]}}
    data = await (await client.post("/v1/get-signed-url", json=body, headers=AUTH)).json()
    assert data["base_url"] == f"http://127.0.0.1:{client.port}"
    assert "auth_tokens/secret-9" not in data["api_key"]


async def test_public_url_is_used(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    loaded_models: LoadedModels,
) -> None:
    import dataclasses

    settings = dataclasses.replace(settings, public_url="https://gw.example.com")
    app = create_app(settings, models=loaded_models)
    client = await aiohttp_client(app)
    body = {"config": {"provider": "openai", "provider_config": CONFIGS["openai"]}}
    data = await (await client.post("/v1/get-signed-url", json=body, headers=AUTH)).json()
    assert data["signed_url"].startswith("wss://gw.example.com/v1/conversation?token=")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "config"),
        ({"config": {"provider": "skype", "provider_config": {}}}, "config"),
        ({"config": {"provider": "elevenlabs", "provider_config": {}}}, "agent_id"),
        (
            {"config": {"provider": "elevenlabs", "provider_config": {"agent_id": "a b"}}},
            "agent_id",
        ),
        (
            {
                "config": {
                    "provider": "elevenlabs",
                    "provider_config": {"agent_id": "a", "sample_rate": 12345},
                }
            },
            "sample_rate",
        ),
        (
            {
                "config": {
                    "provider": "elevenlabs",
                    "provider_config": {"agent_id": "a", "sample_rate": "16000"},
                }
            },
            "sample_rate",
        ),
        ({"config": {"provider": "openai", "provider_config": {"model": "x"}}}, "ephemeral_token"),
        (
            {
                "config": {
                    "provider": "openai",
                    "provider_config": {"ephemeral_token": "ek", "viseme_model": "klingon"},
                }
            },
            "viseme_model",
        ),
        (
            {
                "config": {
                    "provider": "openai",
                    "provider_config": {"ephemeral_token": "ek", "surprise": 1},
                }
            },
            "surprise",
        ),
        ({"config": {"provider": "gemini", "provider_config": {"model": "m"}}}, "exactly one"),
        (
            {
                "config": {
                    "provider": "gemini",
                    "provider_config": {"api_key": "k", "ephemeral_token": "t"},
                }
            },
            "exactly one",
        ),
        (
            {"config": {"provider": "gemini", "provider_config": {"api_key": None}}},
            "null",
        ),
        ([1, 2], "config"),
        (  # a control character in a secret would only fail at connect time
            {"config": {"provider": "openai", "provider_config": {"ephemeral_token": "ek_\u0001"}}},
            "ephemeral_token",
        ),
        (
            {"config": {"provider": "gemini", "provider_config": {"api_key": "AIza\u00e9"}}},
            "api_key",
        ),
    ],
)
async def test_bad_config_names_the_problem(client: Client, body: object, field: str) -> None:
    response = await client.post("/v1/get-signed-url", json=body, headers=AUTH)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error.startswith("Invalid provider config")
    assert field in error


async def test_bad_json_and_methods_and_sizes(client: Client) -> None:
    response = await client.post("/v1/get-signed-url", data=b"{nope", headers=AUTH)
    assert response.status == 400
    assert await response.json() == {
        "error": "Request body is not valid JSON",
        "code": "BAD_REQUEST",
    }
    response = await client.get("/v1/get-signed-url", headers=AUTH)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert "error" in await response.json()
    big = json.dumps(
        {"config": {"provider": "openai", "provider_config": {"ephemeral_token": "x" * 70_000}}}
    )
    response = await client.post("/v1/get-signed-url", data=big, headers=AUTH)
    assert response.status == 413
    assert "error" in await response.json()
    response = await client.get("/nowhere")
    assert response.status == 404
    assert "error" in await response.json()


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"[" * 5000 + b"]" * 5000, {}, "Request body is nested too deeply"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {}, "Request body is nested too deeply"),
        (b'{"config": ' + b"9" * 4400 + b"}", {}, "Request body is not valid JSON"),
        (b"not gzip at all", {"Content-Encoding": "gzip"}, "Content-Encoding"),
    ],
)
async def test_hostile_bodies_are_400_not_500(
    client: Client, body: bytes, headers: dict[str, str], error: str
) -> None:
    response = await client.post("/v1/get-signed-url", data=body, headers={**AUTH, **headers})
    assert response.status == 400
    assert error in (await response.json())["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-000000000"},
        {"Authorization": API_KEY},
        {"Authorization": "Basic " + API_KEY},
    ],
)
async def test_bad_api_key(client: Client, headers: dict[str, str]) -> None:
    body = {"config": {"provider": "openai", "provider_config": CONFIGS["openai"]}}
    for path in ("/v1/get-signed-url", "/v1/tokens/revoke", "/v1/tokens/introspect"):
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 401
        assert await response.json() == {"error": "Invalid API key", "code": "INVALID_API_KEY"}


async def introspect(client: Client, token: str, headers: dict[str, str] = AUTH) -> Any:
    response = await client.post("/v1/tokens/introspect", json={"token": token}, headers=headers)
    assert response.status == 200
    return await response.json()


async def test_introspect_never_shows_secrets(client: Client) -> None:
    token = await sign(client, "elevenlabs")
    data = await introspect(client, token)
    assert data["active"] is True
    assert data["provider"] == "elevenlabs"
    assert set(data) == {"active", "jti", "exp", "iat", "provider", "viseme_model"}
    assert "xi-secret" not in json.dumps(data)
    assert await introspect(client, token, OTHER) == {"active": False}
    assert await introspect(client, token[:-4] + "AAAA") == {"active": False}


async def test_revoke_token_then_inactive(client: Client) -> None:
    token, keep = await sign(client, "openai"), await sign(client, "openai")
    response = await client.post("/v1/tokens/revoke", json={"token": token}, headers=AUTH)
    assert (await response.json())["revoked"] == "token"
    assert (await introspect(client, token))["active"] is False
    assert (await introspect(client, keep))["active"] is True


async def test_revoke_by_jti_and_all(client: Client) -> None:
    first, second = await sign(client, "gemini"), await sign(client, "elevenlabs")
    jti = (await introspect(client, first))["jti"]
    response = await client.post("/v1/tokens/revoke", json={"jti": jti}, headers=AUTH)
    assert await response.json() == {"revoked": "jti", "jti": jti}
    assert (await introspect(client, first))["active"] is False
    assert (await introspect(client, second))["active"] is True
    other_keys = await sign(client, "openai", OTHER)
    response = await client.post("/v1/tokens/revoke", json={"all": True}, headers=AUTH)
    assert (await response.json())["revoked"] == "all"
    assert (await introspect(client, second))["active"] is False
    assert (await introspect(client, other_keys, OTHER))["active"] is True
    fresh = await sign(client, "openai")
    assert (await introspect(client, fresh))["active"] is True


async def test_key_cannot_revoke_another_keys_token(client: Client) -> None:
    token = await sign(client, "openai")
    response = await client.post("/v1/tokens/revoke", json={"token": token}, headers=OTHER)
    assert response.status == 403
    jti = (await introspect(client, token))["jti"]
    await client.post("/v1/tokens/revoke", json={"jti": jti}, headers=OTHER)
    await client.post("/v1/tokens/revoke", json={"all": True}, headers=OTHER)
    assert (await introspect(client, token))["active"] is True


@pytest.mark.parametrize(
    "body", [{}, {"token": "a", "jti": "b"}, {"all": False}, {"jti": ""}, {"all": "yes"}]
)
async def test_revoke_bad_bodies(client: Client, body: object) -> None:
    response = await client.post("/v1/tokens/revoke", json=body, headers=AUTH)
    assert response.status == 400


async def test_revoking_garbage_is_harmless(client: Client) -> None:
    response = await client.post("/v1/tokens/revoke", json={"token": "x.y"}, headers=AUTH)
    assert response.status == 200
    assert (await response.json())["revoked"] == "none"


async def test_health_and_probes(client: Client) -> None:
    assert (await client.get("/livez")).status == 200
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"ready": True})
    health = await (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["redis"] == "ok"
    assert health["cuda_available"] is False  # this machine has no GPU driver
    assert health["device"] == "cpu"
    assert health["models_loaded"] == ["default", "indonesian"]
    assert "version" in health


async def test_metrics_count_requests_tokens_and_revocations(client: Client) -> None:
    token = await sign(client, "openai")
    await client.post("/v1/tokens/revoke", json={"token": token}, headers=AUTH)
    await client.post("/v1/get-signed-url", json={}, headers=AUTH)
    await client.post("/v1/tokens/introspect", json={"token": token}, headers=AUTH)
    await client.post("/v1/tokens/introspect", json={"token": "a.b"}, headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'viseme_gateway_tokens_rejected_total{reason="revoked"} 1.0' in text
    assert 'viseme_gateway_tokens_rejected_total{reason="malformed"} 1.0' in text
    assert 'viseme_gateway_tokens_issued_total{provider="openai"} 1.0' in text
    assert 'viseme_gateway_revocations_total{kind="token"} 1.0' in text
    assert (
        'viseme_gateway_http_requests_total{method="POST",route="/v1/get-signed-url",'
        'status="400"} 1.0'
    ) in text


async def test_openapi_matches_the_router(client: Client) -> None:
    served = await (await client.get("/openapi.json")).json()
    assert served == json.loads(json.dumps(document(providers_for(Settings()))))
    routes = {
        (r.resource.canonical, r.method.lower())
        for r in client.app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(p, m) for p, ops in served["paths"].items() for m in ops}
    # The router's Gemini route also matches //ws/ (a slashes variable); documented as /ws/.
    routes = {(p.replace("/{slashes}ws/", "/ws/"), m) for p, m in routes}
    assert routes == documented


async def test_demo_files_are_never_sniffed_nor_leak_their_url(client: Client) -> None:
    for path in ("/demo", "/demo/demo.js", "/demo/face.js"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
