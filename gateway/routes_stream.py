"""GET /v1/visemes/stream: visemes for any live audio, over one WebSocket.

For agents that do not talk to a provider through the relay (pipecat, LiveKit
Agents, any TTS): the client streams its audio, each binary frame gets its
visemes back as soon as they are computed, never waiting for later audio. The
wire protocol is docs/protocols.md, "The streaming endpoint".

Servers authenticate with their API key (Authorization: Bearer), browsers with
a signed URL (`get-signed-url` with `"provider": "stream"`), which is revoked
like a relay token. Same engine, batching, load shedding and metrics as the relay.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any, Literal

from aiohttp import ClientConnectionResetError, WSMsgType, web
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from providers.base import Lipsync, ProviderConfig, Strict, VisemeModel
from providers.tap import FrameTooDeep, parse
from viseme_engine.audio import AudioError, AudioFormat
from viseme_engine.live import LiveVisemes

from . import guard, schemas
from .access import api_key, verify_token
from .errors import MODEL_REFUSED, BadRequest, Close, Saturated, TokenMalformed
from .keys import Key
from .relay import MAX_MESSAGE, close_reason
from .sessions import SESSIONS, Session
from .state import ENGINE, LOAD, METRICS, SETTINGS
from .tokens import TokenClaims

log = logging.getLogger("gateway")
KIND = "stream"  # the token kind, and the metrics' provider label
PATH = "/v1/visemes/stream"
# The most audio one frame may carry: a live stream sends tens of milliseconds at
# a time, and one frame of 16 MiB mu-law (17 minutes) would hold the engine,
# which every relay session shares, for seconds.
MAX_FRAME_SECONDS = 10
CONFIG_TIMEOUT = 10.0  # seconds a new connection has to send its config
MAX_TEXT = 10_000  # characters in one text message


class StreamToken(ProviderConfig):
    """`provider_config` of a `"provider": "stream"` signed URL: what the token fixes
    (the model and the lip-sync shape win over the connection's own config)."""


class StreamStart(Strict):
    """The first message of a stream: what the audio is and what comes back."""

    type: Literal["start"] | SkipJsonSchema[None] = None
    sample_rate: schemas.AnyRate
    encoding: Literal["pcm_s16le", "mulaw"] = "pcm_s16le"
    model: VisemeModel = "default"
    lipsync: Lipsync | SkipJsonSchema[None] = None
    use_text: bool = True  # false: text messages are ignored (acoustic-only visemes)


class StreamText(Strict):
    """A piece of the current utterance's transcript (docs/protocols.md)."""

    type: Literal["text"]
    text: Annotated[str, Field(max_length=MAX_TEXT)]
    final: bool = False
    char_ms: Annotated[list[float], Field(max_length=MAX_TEXT)] | SkipJsonSchema[None] = None


class StreamError(Exception):
    """Ends a stream: an error message, then a close with the same reason."""

    def __init__(self, code: str, message: str, close: int = 1008) -> None:
        super().__init__(message)
        self.code, self.message, self.close = code, message, close


async def stream(request: web.Request) -> web.StreamResponse:
    app = request.app
    claims: TokenClaims | None = None
    token = request.query.get("token")
    if token:
        claims = await verify_token(app, token)
        if claims.provider != KIND:
            raise TokenMalformed(f"This token is for {claims.provider}, not this endpoint")
        key = guard.token_owner(request, claims)
        guard.allow(key, KIND, claims.viseme_model)
    else:
        key = api_key(request)  # servers: their API key, 401 without
        guard.allow(key, KIND)
    if app[LOAD].saturated:
        raise Saturated()
    async with guard.session(request, key, claims):  # 429 / 403 before the upgrade
        return await _serve(request, key, claims)


async def _serve(request: web.Request, key: Key, claims: TokenClaims | None) -> web.StreamResponse:
    app = request.app
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE + 1, compress=False, heartbeat=20.0)
    await ws.prepare(request)
    session = VisemeSession(app, ws, claims, key)
    tracked = Session(claims, session)  # revocation (with a token) and shutdown close it
    app[SESSIONS].add(tracked)
    app[METRICS].sessions.labels(KIND).inc()
    try:
        await guard.metered(app, key, session, session.meter, "stream_audio_ms", session.run())
    finally:
        app[SESSIONS].discard(tracked)
        app[METRICS].sessions.labels(KIND).dec()
    return ws


class VisemeSession:
    """One connection: its timeline of visemes, and what it meters."""

    def __init__(
        self, app: web.Application, ws: web.WebSocketResponse, claims: TokenClaims | None, key: Key
    ) -> None:
        self.meter = guard.Meter()
        self._key = key
        self._app = app
        self._ws = ws
        self._claims = claims

    async def close(self, close: Close) -> None:
        """From outside: revocation (4001) or shutdown (1001)."""
        await self._ws.close(code=close.code, message=close.reason.encode())

    async def run(self) -> None:
        try:
            start = await self._start()
            await self._serve(start)
        except StreamError as exc:
            await self._send({"type": "error", "code": exc.code, "message": exc.message})
            await self._ws.close(code=exc.close, message=close_reason(exc.message))
        except (ConnectionResetError, ClientConnectionResetError):
            pass  # the client went away while we were writing to it

    async def _start(self) -> tuple[AudioFormat, str, Any, bool]:
        try:
            first = await self._ws.receive(timeout=CONFIG_TIMEOUT)
        except TimeoutError:
            raise StreamError("BAD_REQUEST", "no config message within 10 s") from None
        if first.type != WSMsgType.TEXT:
            raise StreamError("BAD_REQUEST", "the first message must be the JSON config")
        try:
            body = json.loads(first.data)
        except (ValueError, RecursionError):
            raise StreamError("BAD_REQUEST", "the config is not JSON", 1007) from None
        try:
            start = schemas.parse(StreamStart, body, "Invalid config")
            fmt = AudioFormat(start.encoding, start.sample_rate)
        except (BadRequest, AudioError) as exc:
            raise StreamError("BAD_REQUEST", str(exc), 1007) from None
        model: str = start.model
        chosen = start.lipsync
        if self._claims is not None:  # what the token fixes wins
            model = self._claims.viseme_model
            fixed = StreamToken.model_validate(
                {**self._claims.provider_config, "viseme_model": model}
            )
            chosen = fixed.lipsync or chosen
        if not self._key.policy.allows_model(model):
            message = f"viseme model {model!r} is not allowed for this API key"
            raise StreamError("MODEL_NOT_ALLOWED", message, MODEL_REFUSED.code)
        lipsync = schemas.lipsync_config(self._app[SETTINGS], chosen)
        if self._app[ENGINE].engine is None:
            raise StreamError("ENGINE_UNAVAILABLE", "viseme engine is not ready", 1013)
        ready = {"type": "ready", "sample_rate": fmt.sample_rate, "encoding": fmt.encoding}
        await self._send({**ready, "model": model, "lipsync": vars(lipsync)})
        return fmt, model, lipsync, start.use_text

    async def _serve(self, start: tuple[AudioFormat, str, Any, bool]) -> None:
        fmt, model, lipsync, use_text = start
        engine = self._app[ENGINE].engine
        assert engine is not None  # checked at start; never unloaded
        live = LiveVisemes(engine, model, lipsync, use_text)  # the timeline (viseme_engine/live.py)
        async for message in self._ws:
            if message.type == WSMsgType.BINARY:
                await self._audio(live, message.data, fmt)
            elif message.type == WSMsgType.TEXT:
                kind = _control(message.data)
                if kind == "text":
                    await self._text(live, message.data)
                elif kind == "flush":
                    await self._flush(live)
                elif kind == "reset":  # an interruption: nothing computed goes out after it
                    await live.reset()
                elif kind == "close":
                    await self._ws.close(code=1000, message=b"closed by client")
                    return
                else:
                    raise StreamError("BAD_REQUEST", f"unknown message type {kind!r}")
            else:
                return

    async def _audio(self, live: LiveVisemes, pcm: bytes, fmt: AudioFormat) -> None:
        began = time.perf_counter()
        duration_ms = fmt.duration_ms(len(pcm))
        if duration_ms > MAX_FRAME_SECONDS * 1000:
            raise StreamError(
                "FRAME_SIZE_EXCEEDED",
                f"a frame carries at most {MAX_FRAME_SECONDS} s of audio",
                1009,
            )
        if self._ws.closed:  # gone (or revoked): no more work for it
            return
        answer = await live.feed(pcm, fmt)
        shed = "skipped" in answer  # the engine refused: the next frame starts afresh
        if shed:
            self._app[METRICS].visemes_skipped.labels(KIND, "overloaded").inc()
        else:
            self._app[METRICS].visemes_injected.labels(KIND).inc(live.events)
            self.meter.visemes += live.events
            self.meter.audio_ms += duration_ms
        self._app[LOAD].audio(shed=shed)
        await self._send(answer)
        self._app[METRICS].chunk_latency.labels(KIND).observe(time.perf_counter() - began)

    async def _text(self, live: LiveVisemes, data: str) -> None:
        try:
            piece = schemas.parse(StreamText, json.loads(data), "Invalid text message")
        except BadRequest as exc:
            raise StreamError("BAD_REQUEST", str(exc), 1007) from None
        if piece.char_ms is not None and len(piece.char_ms) != len(piece.text):
            message = "Invalid text message: char_ms: one time per character of text"
            raise StreamError("BAD_REQUEST", message, 1007)
        await live.add_text(piece.text, piece.final, piece.char_ms)

    async def _flush(self, live: LiveVisemes) -> None:
        """End of an utterance: the lookahead's last visemes; the next audio starts afresh."""
        answer = await live.flush()
        if "skipped" in answer:
            self._app[METRICS].visemes_skipped.labels(KIND, "overloaded").inc()
        self.meter.visemes += live.events
        await self._send(answer)

    async def _send(self, message: dict[str, Any]) -> None:
        if not self._ws.closed:
            await self._ws.send_str(json.dumps(message, separators=(",", ":")))


def _control(data: str) -> str | None:
    try:
        message = parse(data)
    except FrameTooDeep:
        return None
    kind = message.get("type") if message is not None else None
    return kind if isinstance(kind, str) else None


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, stream)
