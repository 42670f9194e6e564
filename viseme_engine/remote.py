"""A live source of visemes computed by a gateway: its streaming endpoint.

The same interface and answers as `viseme_engine.live.LiveVisemes`, for a process
that should not hold the models itself (many agents sharing one GPU gateway). The
wire protocol is docs/protocols.md, "The streaming endpoint": a JSON config, then
binary audio frames, each answered in order; `flush` and `reset` as control messages.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict
from typing import Any

import aiohttp

from .audio import AudioFormat
from .lipsync import LipsyncConfig
from .live import Answer


class RemoteError(Exception):
    """The gateway refused or ended the stream (its error code and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class RemoteVisemes:
    """One timeline over a gateway connection, opened on the first frame (and again
    when the audio format changes or the connection was lost).

    A reader task takes every message off the socket as it comes (so the gateway's
    heartbeat pings are answered while the agent is silent) and queues the answers.
    Any failure (a refused or lost connection, an answer later than `timeout_s`, a
    caller's cancel) drops the connection, so no late answer is ever taken for the
    next frame's; after a refused connection the next attempt waits (1 s, doubling to
    30 s) and frames meanwhile fail at once. The timeline counts every frame given,
    answered or not.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        model: str = "default",
        lipsync: LipsyncConfig | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        """`url`: the endpoint, `ws[s]://host/v1/visemes/stream`, or a signed URL
        (then no `api_key`); `lipsync` unset takes the gateway's defaults."""
        self._url = url
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._config: dict[str, Any] = {"model": model}
        if lipsync is not None:
            self._config["lipsync"] = asdict(lipsync)
        self._session = session
        self._own_session = session is None
        self._timeout = timeout_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._answers: asyncio.Queue[dict[str, Any] | RemoteError] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._format: AudioFormat | None = None
        self._base_ms = 0.0  # the timeline's time when this connection opened
        self.at_ms = 0.0
        self._lock = asyncio.Lock()
        self._backoff = 0.0
        self._retry_at = 0.0  # monotonic time before which no connection is tried
        self._held: list[dict[str, Any]] = []  # text messages before there is a connection

    async def feed(self, pcm: bytes, fmt: AudioFormat) -> Answer:
        async with self._lock:
            try:
                ws = await self._connected(fmt)
                await self._call(ws.send_bytes(pcm))
                return await self._answer()
            finally:
                self.at_ms += fmt.duration_ms(len(pcm))

    async def flush(self) -> Answer:
        async with self._lock:
            if self._ws is None:
                self._held = []  # an utterance with text but no audio
                return {"type": "visemes", "audio_offset_ms": round(self.at_ms), "final": True,
                        "visemes": []}  # fmt: skip
            await self._call(self._ws.send_str(json.dumps({"type": "flush"})))
            return await self._answer()

    async def add_text(
        self, text: str, final: bool = False, char_ms: Sequence[float] | None = None
    ) -> None:
        """The utterance's transcript (`LiveVisemes.add_text`): sent at once, or with
        the connection the next frame opens."""
        message: dict[str, Any] = {"type": "text", "text": text, "final": final}
        if char_ms is not None:
            message["char_ms"] = list(char_ms)  # on this timeline until sent
        async with self._lock:
            if self._ws is None or self._ws.closed:
                self._held.append(message)
                return
            await self._call(self._ws.send_str(self._text_frame(message)))

    def _text_frame(self, message: dict[str, Any]) -> str:
        """The message with its times on the connection's timeline."""
        if "char_ms" in message:
            message = {**message, "char_ms": [t - self._base_ms for t in message["char_ms"]]}
        return json.dumps(message, separators=(",", ":"))

    async def reset(self) -> None:
        async with self._lock:
            self._held = []
            if self._ws is not None:
                await self._call(self._ws.send_str(json.dumps({"type": "reset"})))

    async def aclose(self) -> None:
        async with self._lock:
            ws = self._drop()
            if ws is not None:
                await ws.close()
            if self._own_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _connected(self, fmt: AudioFormat) -> aiohttp.ClientWebSocketResponse:
        if self._ws is not None and not self._ws.closed and fmt == self._format:
            return self._ws
        self._drop()
        if time.monotonic() < self._retry_at:
            raise RemoteError("unavailable", "the gateway refused the last attempt; waiting")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(self._timeout):  # the whole handshake
                ws = await self._session.ws_connect(self._url, headers=self._headers)
                config = {**self._config, "sample_rate": fmt.sample_rate, "encoding": fmt.encoding}
                await ws.send_str(json.dumps(config))
                ready = _parse(await ws.receive())
            if ready.get("type") != "ready":
                await ws.close()
                raise RemoteError("bad_reply", f"expected ready, got {ready.get('type')!r}")
        except (aiohttp.ClientError, TimeoutError, RemoteError):
            self._backoff = min(max(1.0, 2 * self._backoff), 30.0)
            self._retry_at = time.monotonic() + self._backoff
            raise
        self._backoff = 0.0
        self._answers = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(ws, self._answers))
        self._ws, self._format, self._base_ms = ws, fmt, self.at_ms
        held, self._held = self._held, []
        for message in held:
            await self._call(ws.send_str(self._text_frame(message)))
        return ws

    async def _call(self, sending: Awaitable[None]) -> None:
        try:
            await sending
        except BaseException:
            self._drop()
            raise

    async def _answer(self) -> Answer:
        """The next visemes message, on this timeline."""
        try:
            async with asyncio.timeout(self._timeout):
                item = await self._answers.get()
        except BaseException:  # late, or the caller gave up: its answer must not be the next
            self._drop()
            raise
        if isinstance(item, RemoteError):
            self._drop()
            raise item
        offset = item.get("audio_offset_ms", 0)
        return {**item, "audio_offset_ms": round(self._base_ms + offset)}

    @staticmethod
    async def _read(
        ws: aiohttp.ClientWebSocketResponse, answers: asyncio.Queue[dict[str, Any] | RemoteError]
    ) -> None:
        while True:
            try:
                message = _parse(await ws.receive())
            except RemoteError as exc:
                answers.put_nowait(exc)
                return
            if message.get("type") == "visemes":
                answers.put_nowait(message)

    def _drop(self) -> aiohttp.ClientWebSocketResponse | None:
        """Forget the connection (its reader stops; closing it is left to a task)."""
        ws, self._ws, self._format = self._ws, None, None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if ws is not None and not ws.closed:
            task = asyncio.ensure_future(ws.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)
        return ws


_CLOSING: set[asyncio.Future[bool]] = set()  # closes under way, kept until done


def _parse(message: aiohttp.WSMessage) -> dict[str, Any]:
    if message.type != aiohttp.WSMsgType.TEXT:
        raise RemoteError(
            "closed", f"the gateway closed the stream: {message.data} {message.extra}"
        )
    try:
        body = json.loads(message.data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RemoteError("bad_reply", "not a JSON object")
    if body.get("type") == "error":
        raise RemoteError(str(body.get("code")), str(body.get("message")))
    return body
