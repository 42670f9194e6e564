"""A live source of visemes computed by a gateway: its streaming endpoint.

The same interface and answers as `viseme_engine.live.LiveVisemes`, for a process
that should not hold the models itself (many agents sharing one GPU gateway). The
wire protocol is docs/protocols.md, "The streaming endpoint": a JSON config, then
binary audio frames, each answered in order; `flush` and `reset` as control messages.
"""

from __future__ import annotations

import asyncio
import json
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
    when the audio format changes or the connection was lost)."""

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
        self._format: AudioFormat | None = None
        self._base_ms = 0.0  # the timeline's time when this connection opened
        self.at_ms = 0.0
        self._lock = asyncio.Lock()

    async def feed(self, pcm: bytes, fmt: AudioFormat) -> Answer:
        async with self._lock:
            ws = await self._connected(fmt)
            await ws.send_bytes(pcm)
            answer = await self._answer(ws)
            self.at_ms += fmt.duration_ms(len(pcm))
            return answer

    async def flush(self) -> Answer:
        async with self._lock:
            if self._ws is None:
                return {"type": "visemes", "audio_offset_ms": round(self.at_ms), "final": True,
                        "visemes": []}  # fmt: skip
            await self._ws.send_str(json.dumps({"type": "flush"}))
            return await self._answer(self._ws)

    async def reset(self) -> None:
        async with self._lock:
            if self._ws is not None and not self._ws.closed:
                await self._ws.send_str(json.dumps({"type": "reset"}))

    async def aclose(self) -> None:
        async with self._lock:
            await self._disconnect()
            if self._own_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _connected(self, fmt: AudioFormat) -> aiohttp.ClientWebSocketResponse:
        if self._ws is not None and not self._ws.closed and fmt == self._format:
            return self._ws
        await self._disconnect()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timeout)
            )
        timeout = aiohttp.ClientWSTimeout(ws_close=self._timeout)
        ws = await self._session.ws_connect(self._url, headers=self._headers, timeout=timeout)
        try:
            config = {**self._config, "sample_rate": fmt.sample_rate, "encoding": fmt.encoding}
            await ws.send_str(json.dumps(config))
            ready = await self._receive(ws)
            if ready.get("type") != "ready":
                raise RemoteError("bad_reply", f"expected ready, got {ready.get('type')!r}")
        except BaseException:
            await ws.close()
            raise
        self._ws, self._format, self._base_ms = ws, fmt, self.at_ms
        return ws

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse) -> Answer:
        """The next visemes message, on this timeline. A lost connection raises; the
        next frame connects afresh."""
        try:
            while True:
                message = await self._receive(ws)
                if message.get("type") == "visemes":
                    offset = message.get("audio_offset_ms", 0)
                    return {**message, "audio_offset_ms": round(self._base_ms + offset)}
        except BaseException:
            await self._disconnect()
            raise

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        message = await ws.receive(timeout=self._timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            reason = ws.close_code, message.extra
            raise RemoteError("closed", f"the gateway closed the stream: {reason}")
        body = json.loads(message.data)
        if not isinstance(body, dict):
            raise RemoteError("bad_reply", "not a JSON object")
        if body.get("type") == "error":
            raise RemoteError(str(body.get("code")), str(body.get("message")))
        return body

    async def _disconnect(self) -> None:
        ws, self._ws, self._format = self._ws, None, None
        if ws is not None:
            await ws.close()
