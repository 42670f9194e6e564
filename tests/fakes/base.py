"""What every fake provider shares: a real WebSocket server on 127.0.0.1 port 0.

A fake speaks one provider's protocol from a script, records every frame and
handshake it saw, and can misbehave the ways real services do (refuse at the
handshake, drop the TCP connection, close with a code of its own).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import soxr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from tests.speech import espeak_pcm

MAX_MESSAGE = 16 * 1024 * 1024 + 4096
Frame = str | bytes
Message = dict[str, Any]
# talk: the full script; hold: opening only, then listen; drop: one audio message,
# then the TCP connection dies; custom_close: a close frame with a code of our own;
# echo: every client frame goes back as it came; refuse: HTTP 403 at the handshake;
# transcribed: one uninterrupted response whose transcript comes before its audio.
Scenario = Literal["talk", "hold", "drop", "custom_close", "echo", "refuse", "transcribed"]
# 123 bytes, the most a close frame carries, with two-byte characters to cut wrongly.
CUSTOM_CLOSE = (4321, "agent went home " + "é" * 53 + "!")
SENTENCE = "Bob may pay my mom"
TRANSCRIPT = SENTENCE + "."  # what the agent's transcript events say, in the provider's shape
UNKNOWN_EVENT: Message = {"type": "brand_new.event", "payload": {"n": [1, 2, 3], "s": "é"}}


@functools.cache
def speech_chunks(rate: int, chunk_ms: int = 100, text: str = SENTENCE) -> tuple[bytes, ...]:
    """Real espeak-ng speech as s16le at `rate`, cut into `chunk_ms` messages."""
    pcm, source_rate = espeak_pcm(text)
    samples = np.frombuffer(pcm, "<i2")
    if source_rate != rate:
        samples = soxr.resample(samples, source_rate, rate)
    data = np.asarray(samples).clip(-32768, 32767).astype("<i2").tobytes()
    step = rate * chunk_ms // 1000 * 2
    return tuple(data[i : i + step] for i in range(0, len(data), step))


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for state that an SDK or a server fills in without telling anyone."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  # nothing to wait on but the state itself
            await asyncio.sleep(0.01)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(eq=False)
class Seen:
    """One upstream connection as the fake saw it."""

    path: str
    headers: Headers
    subprotocol: str | None
    received: list[Frame] = field(default_factory=list)
    inbox: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def messages(self) -> list[Message]:
        return [json.loads(frame) for frame in self.received]

    async def next_message(self) -> Message:
        async with asyncio.timeout(5.0):
            value = json.loads(await self.inbox.get())
        assert isinstance(value, dict)
        return value


class FakeProvider(ABC):
    subprotocols: tuple[str, ...] = ()
    rate = 24000  # output audio sample rate

    def __init__(self, scenario: Scenario = "talk", chunk_ms: int = 100) -> None:
        self.scenario: Scenario = scenario
        self.chunk_ms = chunk_ms
        self.connections: list[Seen] = []
        self.sent_audio: list[bytes] = []  # the PCM of every audio message, in order
        self.rest_calls: list[Request] = []
        self._server: Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            max_size=MAX_MESSAGE,
            compression=None,
            ping_interval=None,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    def url(self, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def last(self) -> Seen:
        return self.connections[-1]

    async def wait_connected(self, count: int = 1) -> Seen:
        await until(lambda: len(self.connections) >= count, within=5.0)
        return self.connections[count - 1]

    def _select_subprotocol(
        self, conn: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # Like the real services: a subprotocol is optional, a known one is echoed.
        return next((p for p in offered if p in self.subprotocols), None)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.scenario == "refuse":
            return conn.respond(403, "Forbidden\n")
        return self.check(conn, request)

    @abstractmethod
    def check(self, conn: ServerConnection, request: Request) -> Response | None:
        """Answer REST calls and refuse a bad handshake as the real service does."""

    @abstractmethod
    async def opening(self, conn: ServerConnection, seen: Seen) -> None:
        """The protocol's first exchange (metadata, session.created, setupComplete)."""

    @abstractmethod
    async def talk(self, conn: ServerConnection, seen: Seen) -> None:
        """The full script: pings, unknown events, audio, a tool call, an interruption."""

    async def transcribed(self, conn: ServerConnection, seen: Seen) -> None:
        """One response: its transcript events, then all its audio, then its end."""
        raise NotImplementedError(type(self).__name__)

    @abstractmethod
    def audio_message(self, pcm: bytes, index: int) -> Frame:
        """One output-audio message carrying `pcm`."""

    def chunks(self) -> tuple[bytes, ...]:
        return speech_chunks(self.rate, self.chunk_ms)

    async def send_audio(self, conn: ServerConnection, pcm: bytes, index: int) -> None:
        self.sent_audio.append(pcm)
        await conn.send(self.audio_message(pcm, index))

    async def _handle(self, conn: ServerConnection) -> None:
        request = conn.request
        assert request is not None
        seen = Seen(request.path, request.headers, conn.subprotocol)
        self.connections.append(seen)
        reader = asyncio.create_task(self._read(conn, seen))
        try:
            await self.opening(conn, seen)
            await self._play(conn, seen)
            await reader
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            seen.close_code = conn.close_code
            seen.closed.set()

    async def _play(self, conn: ServerConnection, seen: Seen) -> None:
        if self.scenario == "talk":
            await self.talk(conn, seen)
        elif self.scenario == "transcribed":
            await self.transcribed(conn, seen)
        elif self.scenario == "drop":
            await self.send_audio(conn, self.chunks()[0], 1)
            await asyncio.sleep(0.05)
            assert conn.transport is not None
            conn.transport.abort()  # no close frame: the TCP connection just dies
        elif self.scenario == "custom_close":
            await conn.close(*CUSTOM_CLOSE)

    async def _read(self, conn: ServerConnection, seen: Seen) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in conn:
                seen.received.append(frame)
                seen.inbox.put_nowait(frame)
                if self.scenario == "echo":
                    await conn.send(frame)
