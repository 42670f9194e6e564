"""A fake OpenAI Realtime (GA) service."""

from __future__ import annotations

import itertools
import json
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .base import TRANSCRIPT, UNKNOWN_EVENT, FakeProvider, Frame, Message, Seen, b64

PATH = "/v1/realtime"
FUNCTION_CALL: Message = {
    "type": "response.function_call_arguments.done",
    "response_id": "resp_2",
    "item_id": "item_fc",
    "output_index": 1,
    "call_id": "call_1",
    "name": "wave",
    "arguments": '{"hand":1}',
}


class FakeOpenAI(FakeProvider):
    subprotocols = ("realtime",)
    _ids = itertools.count(1)

    def check(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != PATH:
            return conn.respond(404, "Not Found\n")
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not key.startswith(("ek_", "sk-")):
            return conn.respond(401, '{"error":{"code":"invalid_api_key"}}')
        if not parse_qs(url.query).get("model"):
            return conn.respond(400, '{"error":{"code":"missing_model"}}')
        return None

    def event(self, kind: str, **fields: object) -> str:
        return json.dumps({"type": kind, "event_id": f"event_{next(self._ids)}", **fields})

    async def opening(self, conn: ServerConnection, seen: Seen) -> None:
        output = {"format": {"type": "audio/pcm", "rate": self.rate}, "voice": "marin"}
        session = {"type": "realtime", "model": "gpt-realtime", "audio": {"output": output}}
        await conn.send(self.event("session.created", session=session))

    def audio_message(self, pcm: bytes, index: int) -> Frame:
        response = "resp_1" if index <= len(self.chunks()) // 2 else "resp_2"
        return self.event(
            "response.output_audio.delta",
            response_id=response,
            item_id=f"item_{response}",
            output_index=0,
            content_index=0,
            delta=b64(pcm),
        )

    async def transcribed(self, conn: ServerConnection, seen: Seen) -> None:
        await conn.send(self.event("response.created", response={"id": "resp_t"}))
        ids = {"response_id": "resp_t", "item_id": "item_t", "output_index": 0, "content_index": 0}
        words = TRANSCRIPT.split(" ")
        for i, word in enumerate(words):  # deltas as the service cuts them: " word"
            delta = word if i == 0 else " " + word
            kind = "response.output_audio_transcript.delta"
            await conn.send(self.event(kind, delta=delta, **ids))
        for index, pcm in enumerate(self.chunks(), start=1):
            await self.send_audio(conn, pcm, index)
        done = "response.output_audio_transcript.done"
        await conn.send(self.event(done, transcript=TRANSCRIPT, **ids))
        await conn.send(self.event("response.output_audio.done", response_id="resp_t"))
        await conn.send(self.event("response.done", response={"id": "resp_t"}))

    async def talk(self, conn: ServerConnection, seen: Seen) -> None:
        chunks = self.chunks()
        half = len(chunks) // 2
        await conn.send(json.dumps(UNKNOWN_EVENT))
        await conn.send(self.event("response.created", response={"id": "resp_1"}))
        for index, pcm in enumerate(chunks[:half], start=1):
            await self.send_audio(conn, pcm, index)
        await conn.send(self.event("input_audio_buffer.speech_started", audio_start_ms=900))
        cancelled = {"id": "resp_1", "status": "cancelled"}
        await conn.send(self.event("response.done", response=cancelled))
        await conn.send(self.event("response.created", response={"id": "resp_2"}))
        for index, pcm in enumerate(chunks[half:], start=half + 1):
            await self.send_audio(conn, pcm, index)
        await conn.send(self.event("response.output_audio.done", response_id="resp_2"))
        await conn.send(json.dumps(FUNCTION_CALL))
        await conn.send(self.event("response.done", response={"id": "resp_2"}))
