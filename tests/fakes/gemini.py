"""A fake Gemini Live (BidiGenerateContent) service; it sends binary JSON frames as Google does."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .base import TRANSCRIPT, FakeProvider, Frame, Message, Scenario, Seen, b64

_PATH = re.compile(
    r"/ws/google\.ai\.generativelanguage\.(v1alpha|v1beta|v1)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)"
)
TOOL_CALL: Message = {
    "toolCall": {"functionCalls": [{"id": "fc_1", "name": "wave", "args": {"hand": 1}}]}
}
# Unknown beside a known key: google-genai itself fails on a message with only unknown keys.
UNKNOWN: Message = {"usageMetadata": {"totalTokenCount": 7}, "brandNewField": {"n": [1, 2]}}


def binary(message: Message) -> bytes:
    return json.dumps(message).encode()


class FakeGemini(FakeProvider):
    def __init__(
        self,
        scenario: Scenario = "talk",
        api_key: str = "AIza-fake-key",
        ephemeral: str = "auth_tokens/fake-ephemeral",
    ) -> None:
        super().__init__(scenario)
        self.api_key = api_key
        self.ephemeral = ephemeral

    def check(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        match = _PATH.fullmatch(url.path)
        if match is None:
            return conn.respond(404, "Not Found\n")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if match.group(2) == "BidiGenerateContentConstrained":
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            token = query.get("access_token") or (value if scheme == "Token" else None)
            ok = token == self.ephemeral and match.group(1) == "v1alpha"
        else:
            ok = (query.get("key") or request.headers.get("x-goog-api-key")) == self.api_key
        return None if ok else conn.respond(403, "Forbidden\n")

    async def opening(self, conn: ServerConnection, seen: Seen) -> None:
        setup = await seen.next_message()
        assert "setup" in setup, setup
        await conn.send(binary({"setupComplete": {}}))

    def audio_message(self, pcm: bytes, index: int) -> Frame:
        inline = {"mimeType": f"audio/pcm;rate={self.rate}", "data": b64(pcm)}
        return binary({"serverContent": {"modelTurn": {"parts": [{"inlineData": inline}]}}})

    async def transcribed(self, conn: ServerConnection, seen: Seen) -> None:
        # Gemini sends transcription pieces in messages of their own.
        words = TRANSCRIPT.split(" ")
        for piece in (" ".join(words[:2]) + " ", " ".join(words[2:])):
            await conn.send(binary({"serverContent": {"outputTranscription": {"text": piece}}}))
        for index, pcm in enumerate(self.chunks(), start=1):
            await self.send_audio(conn, pcm, index)
        await conn.send(binary({"serverContent": {"generationComplete": True}}))
        await conn.send(binary({"serverContent": {"turnComplete": True}}))

    async def talk(self, conn: ServerConnection, seen: Seen) -> None:
        chunks = self.chunks()
        half = len(chunks) // 2
        await conn.send(binary(UNKNOWN))
        for index, pcm in enumerate(chunks[:half], start=1):
            await self.send_audio(conn, pcm, index)
        await conn.send(binary({"serverContent": {"interrupted": True}}))
        for index, pcm in enumerate(chunks[half:], start=half + 1):
            await self.send_audio(conn, pcm, index)
        await conn.send(binary(TOOL_CALL))
        await conn.send(binary({"serverContent": {"generationComplete": True}}))
        await conn.send(binary({"serverContent": {"turnComplete": True}}))
