"""The relay core shared by every provider: two pumps, the viseme tap, close codes.

Each direction handles one message at a time and awaits the send, so a slow
reader slows its writer (backpressure) and no queue grows. Output audio goes
through the session's engine stream before it is forwarded: a message is held
for exactly the engine's compute, never for future audio.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import ClientConnectionResetError, WSMsgType, web
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway.metrics import Metrics
from viseme_engine.audio import AudioError, AudioFormat
from viseme_engine.batcher import EngineOverloaded
from viseme_engine.engine import EngineStream, VisemeEngine
from viseme_engine.smoothing import VisemeEvent

from .base import Audio, Message, Provider, Transcript

log = logging.getLogger("providers")
MAX_MESSAGE = 16 * 1024 * 1024  # providers send up to 15-16 MiB
FEED_SECONDS = 1  # the most audio one engine call takes from a message
Side = Literal["client", "upstream"]
# Reserved: "no status", "abnormal" and "TLS failure" are never on the wire.
UNSENDABLE = {1005, 1006, 1015}
# What an adapter raises on a known event with fields of the wrong shape
# ("rate": "abc", a string where an object belongs): the event is relayed as is.
MALFORMED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


def close_code(code: int | None) -> int:
    return 1011 if code is None or code in UNSENDABLE else code


def close_reason(reason: str) -> bytes:
    """At most 123 bytes (the frame's limit), never cutting a UTF-8 character."""
    return reason.encode()[:123].decode(errors="ignore").encode()


class FrameTooDeep(ValueError):
    """A JSON frame nested deeper than the parser goes (a JSON bomb)."""


def parse(frame: str | bytes) -> Message | None:
    """The frame as a JSON object; None for anything else (relayed untouched)."""
    try:
        value = json.loads(frame)
    except RecursionError:
        raise FrameTooDeep("JSON message nested too deeply") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of over 4,300 digits
        return None
    return value if isinstance(value, dict) else None


def encode(message: Message, like: str | bytes) -> str | bytes:
    """Serialise as the original frame came: text stays text, binary stays binary."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    return text.encode() if isinstance(like, bytes) else text


class Relay:
    def __init__(
        self,
        provider: Provider,
        client: web.WebSocketResponse,
        upstream: ClientConnection,
        engine: Callable[[], VisemeEngine | None],  # the engine, once it has loaded
        viseme_model: str,
        metrics: Metrics,
        inject: bool = True,
        use_text: bool = False,
    ) -> None:
        self.provider = provider
        self._client = client
        self._upstream = upstream
        self._engine = engine
        self._model = viseme_model
        self._metrics = metrics
        self._stream: EngineStream | None = None
        self._stream_format: AudioFormat | None = None
        self._stream_ms = 0.0  # audio fed to the current stream
        self._last: tuple[int, float] | None = None  # its last audio: chunk id, start ms
        self._gate_open = False
        self._inject = inject  # off: a plain relay (same parsing, no audio decoding)
        self._use_text = use_text and inject  # the transcript pins the visemes
        self._text: list[Transcript] = []  # transcript of the current turn, before its audio
        self._closing: tuple[int, str] | None = None

    async def run(self) -> None:
        """Relay until either side closes; then close the other side alike."""
        for message in self.provider.opening_messages():
            await self._upstream.send(json.dumps(message))
        up = asyncio.create_task(self._client_to_upstream(), name="relay-up")
        down = asyncio.create_task(self._upstream_to_client(), name="relay-down")
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when this handler is cancelled: no pump outlives its session.
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        ended: Side | None = "client"
        for task in done:
            if task.cancelled():
                continue
            if task.exception() is not None:
                log.warning("relay pump failed: %r", task.exception())
                ended = None
            else:
                ended = task.result()
        if ended is None and self._closing is None:  # a bug of ours: say so, never 1000
            await self._client.close(code=1011, message=b"gateway relay error")
            await self._upstream.close(1011, "gateway relay error")
        elif self._closing is not None:  # closed by us: revocation or shutdown
            code, reason = self._closing
            await self._client.close(code=code, message=reason.encode())
            await self._upstream.close(1000, "client session ended")
        elif ended == "upstream":  # upstream ended first: tell the client what upstream said
            code = close_code(self._upstream.close_code)
            reason = self._upstream.close_reason or "upstream closed"
            if self._upstream.close_code in UNSENDABLE or self._upstream.close_code is None:
                self._metrics.upstream_errors.labels(self.provider.name, "dropped").inc()
            await self._client.close(code=code, message=close_reason(reason))
        else:  # the client ended first
            code = close_code(self._client.close_code)
            await self._upstream.close(code, "client closed")
            await self._client.close()

    async def close(self, code: int, reason: str) -> None:
        """Close both sides from outside (revocation, shutdown)."""
        self._closing = (code, reason)
        await self._client.close(code=code, message=reason.encode())

    async def _client_to_upstream(self) -> Side:
        """Which side ended this direction: the client left, or upstream refused a send."""
        async for frame in self._client:
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            data: str | bytes = frame.data
            try:
                message = parse(data)
            except FrameTooDeep as exc:  # never forwarded: the provider would choke on it too
                self._closing = (1009, str(exc))
                return "client"
            if message is not None:
                rewritten = self.provider.rewrite_client(message)
                if rewritten is not None:
                    data = encode(rewritten, data)
            try:
                await self._upstream.send(data)
            except ConnectionClosed:
                return "upstream"
            self._metrics.relayed.labels(self.provider.name, "upstream").inc()
        return "client"

    async def _upstream_to_client(self) -> Side:
        try:
            async for frame in self._upstream:
                await self._forward(frame)
                self._metrics.relayed.labels(self.provider.name, "downstream").inc()
        except ConnectionClosed:
            pass
        except (ConnectionResetError, ClientConnectionResetError):
            return "client"  # the client went away while we were writing to it
        return "upstream"

    async def _forward(self, frame: str | bytes) -> None:
        try:
            message = parse(frame)
        except FrameTooDeep:
            message = None  # the provider's own business: relayed as it came
        if message is None:
            await self._send(frame)
            return
        try:
            await self._forward_message(message, frame)
        except MALFORMED as exc:
            # Raised before anything of this message was sent: relay it as it came.
            kind = message.get("type", "?") if isinstance(message.get("type"), str) else "?"
            log.warning("%s: malformed %s event relayed as is: %r", self.provider.name, kind, exc)
            self._metrics.visemes_skipped.labels(self.provider.name, "adapter_error").inc()
            await self._send(frame)

    async def _forward_message(self, message: Message, frame: str | bytes) -> None:
        provider = self.provider
        provider.observe(message)
        if provider.resets(message):
            self._stream, self._text = None, []
        if self._use_text:
            text = provider.transcript(message)
            if text is not None:
                await self._add_text(text)
        shown = provider.strip(message)
        if shown is None:
            return  # only the gateway asked for it (Gemini's transcription)
        if shown is not message:
            message, frame = shown, encode(shown, frame)
        audio = provider.audio(message) if self._gate_open and self._inject else None
        visemes = await self._visemes(audio) if audio is not None else None
        if visemes is None and self._inject and provider.completes(message):
            visemes = await self._final_visemes()
        if visemes is None:
            await self._send(frame)
        else:
            out, extra = provider.inject(message, visemes)
            await self._send(encode(out, frame))
            if extra is not None:
                await self._send(json.dumps(extra, separators=(",", ":")))
        if not self._gate_open and provider.gate_opens(message):
            self._gate_open = True

    async def _add_text(self, text: Transcript) -> None:
        self._text.append(text)
        if self._stream is not None:
            await self._stream.add_text(text.text, text.final)

    async def _send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self._client.send_bytes(frame)
        else:
            await self._client.send_str(frame)

    async def _visemes(self, audio: Audio) -> Message | None:
        """Visemes for one audio message, offsets relative to its start; None = skipped."""
        name = self.provider.name
        engine = self._engine()  # a session opened while the models loaded picks them up
        if engine is None:
            self._metrics.visemes_skipped.labels(name, "engine_not_ready").inc()
            return None
        try:
            pcm = base64.b64decode(audio.b64, validate=True)
        except (binascii.Error, ValueError):
            self._metrics.visemes_skipped.labels(name, "bad_audio").inc()
            return None
        if self._stream is None or self._stream_format != audio.format:
            self._stream = engine.open_stream(self._model, audio.format, self._use_text)
            self._stream_format, self._stream_ms = audio.format, 0.0
            for text in self._text:  # the turn's text so far, often ahead of its audio
                await self._stream.add_text(text.text, text.final)
        duration_ms = len(pcm) / audio.format.bytes_per_sample / audio.format.sample_rate * 1000
        start_ms = self._stream_ms
        began = time.perf_counter()
        # Bounded pieces: one 11 MiB message run as one block took gigabytes and
        # held the batcher for a second; pieces give the same visemes (chunking is exact).
        piece = FEED_SECONDS * audio.format.sample_rate * audio.format.bytes_per_sample
        try:
            events = []
            for at in range(0, len(pcm), piece):
                events += await self._stream.feed(pcm[at : at + piece])
        except (EngineOverloaded, AudioError) as exc:
            # Audio still flows; this chunk goes without visemes and the stream restarts.
            reason = "overloaded" if isinstance(exc, EngineOverloaded) else "bad_audio"
            self._metrics.visemes_skipped.labels(name, reason).inc()
            self._stream = None
            return None
        self._stream_ms += duration_ms
        self._last = (audio.chunk_id, start_ms)
        self._metrics.chunk_latency.labels(name).observe(time.perf_counter() - began)
        self._metrics.visemes_injected.labels(name).inc(len(events))
        # An event can date from an earlier chunk (model lookahead, anti-flicker
        # minimum): its offset is then negative, its true time before this one's
        # start (docs/protocols.md, "The viseme object"). Clamping it to 0 made
        # such visemes up to 70 ms late.
        return {
            "visemes": _entries(events, start_ms),
            "audio_event_id": audio.chunk_id,
            "subchunk_id": 1,
            "total_chunks": 1,
            "audio_duration": round(duration_ms),
        }

    async def _final_visemes(self) -> Message | None:
        """The response's last visemes: what the lookahead held back, for its last audio."""
        if self._stream is None or self._last is None:
            return None
        stream, (chunk_id, start_ms) = self._stream, self._last
        self._stream = None  # a flushed stream takes no more audio
        try:
            events = await stream.flush()
        except EngineOverloaded:
            self._metrics.visemes_skipped.labels(self.provider.name, "overloaded").inc()
            return None
        self._metrics.visemes_injected.labels(self.provider.name).inc(len(events))
        return {
            "visemes": _entries(events, start_ms),
            "audio_event_id": chunk_id,
            "final": True,  # offsets are into that audio message, already sent
        }


def _entries(events: list[VisemeEvent], start_ms: float) -> list[Message]:
    """Viseme entries with offsets from the start of the audio message at `start_ms`."""
    return [{"visemeId": e.viseme_id, "offset": round(e.offset_ms - start_ms)} for e in events]


def client_response(provider: Provider) -> web.WebSocketResponse:
    """The client side: subprotocols echoed, 16 MiB messages, no compression, pings."""
    return web.WebSocketResponse(
        protocols=provider.subprotocols,
        max_msg_size=MAX_MESSAGE + 1,  # aiohttp refuses a message as long as its limit
        compress=False,
        heartbeat=20.0,
    )


# websockets logs each handshake at DEBUG, request line and headers included: the
# upstream URL carries Gemini's ?key= and the headers OpenAI's Bearer ek_... So the
# upstream connections get a logger of their own that never goes below INFO.
UPSTREAM_LOG = logging.getLogger("providers.upstream")
UPSTREAM_LOG.setLevel(logging.INFO)


def connect_options() -> dict[str, Any]:
    return {
        "logger": UPSTREAM_LOG,
        "max_size": MAX_MESSAGE,
        "compression": None,
        "ping_interval": 20.0,
        "ping_timeout": 20.0,
        "open_timeout": 10.0,
        "close_timeout": 2.0,  # the 10 s default is noticeable at teardown
        "user_agent_header": "viseme-gateway",
    }
