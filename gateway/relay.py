"""The relay: a thin I/O loop over one session's tap (providers/tap.py).

Each direction handles one message at a time and awaits the send, so a slow
reader slows its writer (backpressure) and no queue grows. Output audio goes
through the session's engine stream before it is forwarded: a message is held
for exactly the engine's compute, never for future audio. What a message means
and what goes out is the tap's business; sockets, the engine and metrics are
this module's. Close codes: docs/protocols.md, "Close codes".
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import ClientConnectionResetError, WSMsgType, web
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from providers.base import Provider
from providers.tap import Analysis, Feed, Flush, Frame, FrameTooDeep, Tap, Work
from viseme_engine.audio import AudioError
from viseme_engine.batcher import EngineOverloaded
from viseme_engine.engine import EngineStream, VisemeEngine
from viseme_engine.lipsync import LipsyncConfig

from .errors import RELAY_ERROR, TOO_BIG, TOO_DEEP, Close
from .guard import Meter, Throttle
from .load import Load
from .metrics import Metrics

log = logging.getLogger("gateway.relay")
MAX_MESSAGE = 16 * 1024 * 1024  # providers send up to 15-16 MiB
Side = Literal["client", "upstream"]
# Reserved: "no status", "abnormal" and "TLS failure" are never on the wire.
UNSENDABLE = {1005, 1006, 1015}
# Reasons an audio message went without visemes for lack of time: they count
# towards saturation (gateway/load.py); the others are the message's own fault.
SHED = ("deadline", "overloaded")


def close_code(code: int | None) -> int:
    return 1011 if code is None or code in UNSENDABLE else code


def close_reason(reason: str) -> bytes:
    """At most 123 bytes (the frame's limit), never cutting a UTF-8 character."""
    return reason.encode()[:123].decode(errors="ignore").encode()


class Relay:
    def __init__(
        self,
        provider: Provider[Any],
        client: web.WebSocketResponse,
        upstream: ClientConnection,
        engine: Callable[[], VisemeEngine | None],  # the engine, once it has loaded
        viseme_model: str,
        metrics: Metrics,
        inject: bool = True,
        use_text: bool = False,
        lipsync: LipsyncConfig | None = None,
        load: Load | None = None,
        deadline_ms: float = 0.0,  # 0: visemes are waited for however long they take
        meter: Meter | None = None,  # usage: audio analysed, visemes sent
        throttle: Throttle | None = None,  # client messages per second (the key's policy)
    ) -> None:
        self.meter = meter or Meter()
        self._throttle = throttle
        self.provider = provider
        self._load = load or Load()
        self._priority = random.random()  # noqa: S311  # who keeps visemes under load (load.py)
        self._deadline = deadline_ms / 1000 if deadline_ms > 0 else None
        self.tap = Tap(provider, inject, use_text, lipsync)
        self._client = client
        self._upstream = upstream
        self._engine = engine
        self._model = viseme_model
        self._metrics = metrics
        # This session's children of the per-message metrics, looked up once, not
        # per message (a labels() call takes a lock and hashes the labels).
        name = provider.name
        self._relayed_up = metrics.relayed.labels(name, "upstream")
        self._relayed_down = metrics.relayed.labels(name, "downstream")
        self._chunk_latency = metrics.chunk_latency.labels(name)
        self._injected = metrics.visemes_injected.labels(name)
        self._drift = {  # a word heard before the provider's time for it: "late"
            True: metrics.timing_drift.labels(name, "late"),
            False: metrics.timing_drift.labels(name, "early"),
        }
        self._stream: EngineStream | None = None
        self._closing: Close | None = None

    async def run(self) -> None:
        """Relay until either side closes; then close the other side alike."""
        for frame in self.tap.opening():
            await self._upstream.send(frame)
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
            await self._client.close(code=RELAY_ERROR.code, message=RELAY_ERROR.reason.encode())
            await self._upstream.close(RELAY_ERROR.code, RELAY_ERROR.reason)
        elif self._closing is not None:  # closed by us: revocation, shutdown, a JSON bomb
            closing = self._closing
            await self._client.close(code=closing.code, message=closing.reason.encode())
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

    async def close(self, close: Close) -> None:
        """Close both sides from outside (revocation, shutdown)."""
        self._closing = close
        await self._client.close(code=close.code, message=close.reason.encode())

    async def _client_to_upstream(self) -> Side:
        """Which side ended this direction: the client left, or upstream refused a send."""
        async for message in self._client:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                frame = self.tap.from_client(message.data)
            except FrameTooDeep:  # never forwarded: the provider would choke on it too
                self._closing = TOO_DEEP
                return "client"
            try:
                await self._upstream.send(frame)
            except ConnectionClosed:
                return "upstream"
            self._relayed_up.inc()
            if self._throttle is not None:  # too fast: read the client more slowly
                await self._throttle.take()
        return "client"

    async def _upstream_to_client(self) -> Side:
        try:
            async for frame in self._upstream:
                await self._forward(frame)
                self._relayed_down.inc()
        except ConnectionClosed:
            pass
        except (ConnectionResetError, ClientConnectionResetError):
            return "client"  # the client went away while we were writing to it
        return "upstream"

    async def _forward(self, frame: Frame) -> None:
        arrived = time.perf_counter()
        step = self.tap.from_upstream(frame)
        if step.error is not None:
            log.warning("%s: malformed event relayed as is: %s", self.provider.name, step.error)
        if step.skipped is not None:
            self._skipped(step.skipped)
        if step.reset:
            self._stream = None
        if step.text is not None and self._stream is not None:
            await self._stream.add_text(step.text.text, step.text.final, step.text.char_ms)
        frames = step.frames if step.work is None else await self._analyse(step.work)
        for out in frames:
            if isinstance(out, bytes):
                await self._client.send_bytes(out)
            else:
                await self._client.send_str(out)
        if isinstance(step.work, Feed):  # what the client sees, queueing included
            added = time.perf_counter() - arrived
            self._chunk_latency.observe(added)

    def _skipped(self, reason: str) -> None:
        self._metrics.visemes_skipped.labels(self.provider.name, reason).inc()

    async def _analyse(self, work: Work) -> list[Frame]:
        """The frames of a message with engine work: with visemes, or without them
        once its deadline has passed (shed) or the engine could not take it."""
        if isinstance(work, Feed) and not self._load.admits(self._priority):
            self._skipped("saturated")  # passed through: no room for its visemes now
            self._stream = None
            return self.tap.analysed(work, None)
        result, reason = None, await self._prepare(work)
        if reason is None:
            try:
                # The deadline is the engine's: espeak-ng phonemizing a turn's text
                # (an await above) is not shed for, lest every turn's start be.
                async with asyncio.timeout(self._left(time.perf_counter())):
                    result, reason = await self._run(work)
            except TimeoutError:  # the feed was cancelled: its block is abandoned whole
                reason = "deadline"
        if reason is not None:
            if reason != "no_stream":  # a flush with nothing to drain is no loss
                self._skipped(reason)
            self._stream = None  # out of step: the next audio opens a fresh stream
        if isinstance(work, Feed):
            self._load.audio(shed=reason in SHED)
        if result is not None:
            self._injected.inc(len(result.events))
            self.meter.visemes += len(result.events)
            if isinstance(work, Feed):
                self.meter.audio_ms += work.duration_ms
        return self.tap.analysed(work, result)

    def _left(self, since: float) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - (time.perf_counter() - since))

    async def _prepare(self, work: Work) -> str | None:
        """Open the engine stream a feed needs, with the turn's text so far; or why not."""
        if not isinstance(work, Feed):
            return None if self._stream is not None else "no_stream"
        engine = self._engine()  # a session opened while the models loaded picks them up
        if engine is None:
            return "engine_not_ready"
        if work.restart or self._stream is None:
            lipsync = self.tap.lipsync
            use_text = self.tap.use_text
            self._stream = engine.open_stream(self._model, work.format, use_text, lipsync)
            for text in work.texts:  # the turn's text so far, often ahead of its audio
                await self._stream.add_text(text.text, text.final, text.char_ms)
        return None

    async def _run(self, work: Work) -> tuple[Analysis | None, str | None]:
        """The engine's answer for the work, or why there is none."""
        stream = self._stream
        assert stream is not None
        try:
            if isinstance(work, Flush):
                self._stream = None  # a flushed stream takes no more audio
                events = await stream.flush()
            else:
                events = await stream.feed(work.pcm)
        except EngineOverloaded:
            return None, "overloaded"
        except AudioError:
            return None, "bad_audio"
        for drift in stream.take_drifts():
            self._drift[drift < 0].observe(abs(drift))
        return Analysis(events, stream.take_probs()), None


class ClientSocket(web.WebSocketResponse):
    """aiohttp closes a socket whose message is over the limit with 1009 and no
    reason; ours says what happened (docs/protocols.md, "Close codes")."""

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if code == TOO_BIG.code and not message:
            message = TOO_BIG.reason.encode()
        return await super().close(code=code, message=message, drain=drain)


def client_response(provider: Provider[Any]) -> web.WebSocketResponse:
    """The client side: subprotocols echoed, 16 MiB messages, no compression, pings."""
    return ClientSocket(
        protocols=provider.subprotocols,
        max_msg_size=MAX_MESSAGE + 1,  # aiohttp refuses a message as long as its limit
        compress=False,
        heartbeat=20.0,
    )


# websockets logs each handshake at DEBUG, request line and headers included: the
# upstream URL carries Gemini's ?key= and the headers OpenAI's Bearer ek_... So the
# upstream connections get a logger of their own that never goes below INFO.
UPSTREAM_LOG = logging.getLogger("gateway.upstream")
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
