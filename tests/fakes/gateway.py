"""The real gateway app on a loopback port, pointed at fake providers, and its REST calls."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.revocation import RedisStore, RevocationStore
from gateway.settings import Settings
from tests.conftest import API_KEY, REDIS_URL
from viseme_engine.engine import LoadedModels

from .base import FakeProvider

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def point_at(settings: Settings, fake: FakeProvider) -> Settings:
    """Settings whose every provider URL is this fake (each fake only answers its own paths)."""
    return dataclasses.replace(
        settings,
        urls={
            **settings.urls,
            "elevenlabs_api_url": fake.url("http"),
            "elevenlabs_ws_url": fake.url(),
            "openai_ws_url": f"{fake.url()}/v1/realtime",
            "gemini_ws_url": fake.url(),
        },
    )


def tls_contexts(cert: Path, key: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for a self-signed certificate for 127.0.0.1."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


@dataclasses.dataclass
class Gateway:
    server: TestServer
    http: aiohttp.ClientSession
    client_ssl: ssl.SSLContext | None

    @property
    def base(self) -> str:
        # The self-signed certificate names localhost (tests/test_processes.py).
        host = "localhost" if self.client_ssl else "127.0.0.1"
        return f"{self.server.scheme}://{host}:{self.server.port}"

    @property
    def ws_base(self) -> str:
        return "ws" + self.base.removeprefix("http")

    async def sign(self, provider: str, config: dict[str, Any]) -> dict[str, Any]:
        body = {"config": {"provider": provider, "provider_config": config}}
        async with self.http.post(f"{self.base}/v1/get-signed-url", json=body, headers=AUTH) as r:
            assert r.status == 200, await r.text()
            data: dict[str, Any] = await r.json()
            return data

    async def metrics(self) -> dict[str, float]:
        """/metrics, as sample name with labels -> value."""
        async with self.http.get(f"{self.base}/metrics") as r:
            assert r.status == 200, await r.text()
            lines = (await r.text()).splitlines()
        samples = (ln.rsplit(" ", 1) for ln in lines if ln and not ln.startswith("#"))
        return {name: float(value) for name, value in samples}

    async def revoke(self, token: str) -> None:
        body = {"token": token}
        async with self.http.post(f"{self.base}/v1/tokens/revoke", json=body, headers=AUTH) as r:
            assert r.status == 200, await r.text()


@asynccontextmanager
async def running_gateway(
    settings: Settings,
    models: LoadedModels,
    redis_prefix: str | None = None,
    tls: tuple[Path, Path] | None = None,
    store: RevocationStore | None = None,
) -> AsyncIterator[Gateway]:
    if store is None and redis_prefix is not None:
        store = RedisStore.from_url(REDIS_URL, redis_prefix)
    app: web.Application = create_app(settings, store, models)
    server_ssl, client_ssl = tls_contexts(*tls) if tls else (None, None)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ssl)
    connector = aiohttp.TCPConnector(ssl=client_ssl) if client_ssl else None
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            yield Gateway(server, http, client_ssl)
    finally:
        await server.close()
