"""A fake upstream for the test-only echo provider (tests/plugins/echo.py)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .base import FakeProvider, Frame, Seen, b64

SECRET = "echo-s3cret"


class FakeEcho(FakeProvider):
    rate = 16000

    def check(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != "/echo" or not parse_qs(url.query).get("room"):
            return conn.respond(404, "Not Found\n")
        if request.headers.get("X-Echo-Secret") != SECRET:
            return conn.respond(401, "Unauthorized\n")
        return None

    async def opening(self, conn: ServerConnection, seen: Seen) -> None:
        await conn.send(json.dumps({"op": "hello"}))

    def audio_message(self, pcm: bytes, index: int) -> Frame:
        return json.dumps({"op": "audio", "rate": self.rate, "pcm": b64(pcm)})

    async def talk(self, conn: ServerConnection, seen: Seen) -> None:
        await conn.send(json.dumps({"op": "something-new", "n": 1}))
        for index, pcm in enumerate(self.chunks(), start=1):
            await self.send_audio(conn, pcm, index)
        await conn.send(json.dumps({"op": "done"}))
