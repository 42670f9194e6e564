"""A fake ElevenLabs Agents service: the signed-URL REST call and the convai WebSocket."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .base import (
    TRANSCRIPT,
    UNKNOWN_EVENT,
    FakeProvider,
    Frame,
    Message,
    Scenario,
    Seen,
    b64,
)

WS_PATH = "/v1/convai/conversation"
SIGNED_URL_PATH = "/v1/convai/conversation/get-signed-url"
TOOL_CALL: Message = {
    "type": "client_tool_call",
    "client_tool_call": {"tool_name": "wave", "tool_call_id": "call_1", "parameters": {"hand": 1}},
}


class FakeElevenLabs(FakeProvider):
    rate = 16000  # pcm_16000, announced in conversation_initiation_metadata

    def __init__(
        self,
        scenario: Scenario = "talk",
        public: tuple[str, ...] = ("agent_public",),
        private: dict[str, str] | None = None,  # agent id -> the xi-api-key that owns it
        aligned: bool = False,  # "transcribed": the text as each audio event's alignment
        chunk_ms: int = 100,
        timing_lag_ms: float = 0.0,  # how late the alignment's times say the characters are
    ) -> None:
        super().__init__(scenario, chunk_ms)
        self.public = public
        self.private = private or {"agent_private": "xi-secret-1234"}
        self._signatures: dict[str, str] = {}  # conversation_signature -> agent id
        self.stale_audio: bytes = b""  # sent after the interruption: clients drop it
        self.early_audio = False
        self.aligned = aligned
        self.timing_lag_ms = timing_lag_ms
        self.alignments: list[tuple[str, list[float]]] = []  # per audio event: chars, starts

    def check(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        agent = query.get("agent_id", "")
        if url.path == SIGNED_URL_PATH:
            self.rest_calls.append(request)
            if self.private.get(agent) != request.headers.get("xi-api-key"):
                return conn.respond(401, '{"detail":{"status":"invalid_api_key"}}')
            signature = secrets.token_urlsafe(16)
            self._signatures[signature] = agent
            params = urlencode({"agent_id": agent, "conversation_signature": signature})
            body = {"signed_url": f"{self.url()}{WS_PATH}?{params}"}
            return conn.respond(200, json.dumps(body))
        if url.path != WS_PATH:
            return conn.respond(404, "Not Found\n")
        if agent in self.public:
            return None
        if self._signatures.pop(query.get("conversation_signature", ""), None) == agent:
            return None  # signatures are single-use
        return conn.respond(403, "Forbidden\n")

    async def opening(self, conn: ServerConnection, seen: Seen) -> None:
        first = await seen.next_message()
        assert first.get("type") == "conversation_initiation_client_data", first
        if self.early_audio:  # a misbehaving server: audio before the metadata
            await conn.send(self.audio_message(self.chunks()[0], 0))
        event = {
            "conversation_id": "conv_fake_1",
            "agent_output_audio_format": f"pcm_{self.rate}",
            "user_input_audio_format": "pcm_16000",
        }
        await conn.send(
            json.dumps(
                {
                    "type": "conversation_initiation_metadata",
                    "conversation_initiation_metadata_event": event,
                }
            )
        )

    def audio_message(self, pcm: bytes, index: int) -> Frame:
        event = {"audio_base_64": b64(pcm), "event_id": index}
        return json.dumps({"type": "audio", "audio_event": event})

    async def transcribed(self, conn: ServerConnection, seen: Seen) -> None:
        if self.aligned:
            await self._aligned(conn)
        else:  # the agent's text first, as ElevenLabs sends it, then its audio
            event = {"agent_response": TRANSCRIPT}
            await conn.send(json.dumps({"type": "agent_response", "agent_response_event": event}))
            for index, pcm in enumerate(self.chunks(), start=1):
                await self.send_audio(conn, pcm, index)
        await conn.send(json.dumps({"type": "ping", "ping_event": {"event_id": 9, "ping_ms": 1}}))

    async def _aligned(self, conn: ServerConnection) -> None:
        """Each audio event with the characters spoken in it and their start times
        from the event's own start; here the characters are spread evenly over
        the audio (a provider's timing, roughly right), then `timing_lag_ms` added."""
        chunks = self.chunks()
        chunk_ms = [len(pcm) / 2 / self.rate * 1000 for pcm in chunks]
        total = sum(chunk_ms)
        times = [total * i / len(TRANSCRIPT) for i in range(len(TRANSCRIPT))]
        start = 0.0
        for index, (pcm, ms) in enumerate(zip(chunks, chunk_ms, strict=True), start=1):
            mine = [i for i, t in enumerate(times) if start <= t < start + ms]
            chars = [TRANSCRIPT[i] for i in mine]
            starts = [round(times[i] - start + self.timing_lag_ms) for i in mine]
            self.alignments.append(("".join(chars), [float(t) for t in starts]))
            self.sent_audio.append(pcm)
            durations = [round(total / len(TRANSCRIPT))] * len(chars)
            alignment = {"chars": chars, "char_start_times_ms": starts,
                         "char_durations_ms": durations}  # fmt: skip
            event = {"audio_base_64": b64(pcm), "event_id": index, "alignment": alignment}
            await conn.send(json.dumps({"type": "audio", "audio_event": event}))
            start += ms

    async def talk(self, conn: ServerConnection, seen: Seen) -> None:
        chunks = self.chunks()
        half = len(chunks) // 2
        await conn.send(json.dumps({"type": "ping", "ping_event": {"event_id": 1, "ping_ms": 42}}))
        await conn.send(json.dumps(UNKNOWN_EVENT))
        for index, pcm in enumerate(chunks[:half], start=1):
            await self.send_audio(conn, pcm, index)
        await conn.send(json.dumps(TOOL_CALL))
        interruption = {"type": "interruption", "interruption_event": {"event_id": half}}
        await conn.send(json.dumps(interruption))
        # Audio already in flight when the user interrupted: the SDK drops it.
        self.stale_audio = chunks[half]
        await conn.send(self.audio_message(chunks[half], half))
        for index, pcm in enumerate(chunks[half:], start=half + 1):
            await self.send_audio(conn, pcm, index)
        response = {"type": "agent_response", "agent_response_event": {"agent_response": "Hi."}}
        await conn.send(json.dumps(response))
