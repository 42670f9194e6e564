"""What a provider adapter is: where to connect, what to rewrite, where audio lives.

The relay core (`providers.relay`) does all the I/O; an adapter only looks at
parsed JSON messages and says what they mean. Anything an adapter does not
recognise is relayed untouched (docs/protocols.md, "The relay endpoints").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

from gateway.settings import Settings
from viseme_engine.audio import AudioFormat

Message = dict[str, Any]


class UpstreamRefused(Exception):
    """The provider would not let us connect (bad credentials, unknown agent...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Transcript:
    """Text of the agent's speech, as a provider streams it beside the audio."""

    text: str
    final: bool = False  # the response's text is complete: its last word too


@dataclass(frozen=True)
class Audio:
    """An output-audio message: the base64 audio it carries and how it is encoded."""

    b64: str
    format: AudioFormat
    chunk_id: int  # ties the visemes to this audio message


class Provider(ABC):
    name: ClassVar[str]
    # Subprotocols a browser SDK asks for that we echo; never one carrying a key.
    subprotocols: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any], settings: Settings) -> None:
        self.config = config
        self.settings = settings

    @abstractmethod
    async def target(self, http: aiohttp.ClientSession, client_path: str) -> Target:
        """Where and how to connect upstream (may call the provider's REST API)."""

    def opening_messages(self) -> list[Message]:
        """Messages to send upstream right after connecting."""
        return []

    def rewrite_client(self, message: Message) -> Message | None:
        """A client message to change before it goes upstream; None = send as is."""
        return None

    @abstractmethod
    def gate_opens(self, message: Message) -> bool:
        """Whether this upstream message is the one after which injecting is allowed."""

    @abstractmethod
    def audio(self, message: Message) -> Audio | None:
        """The output audio in an upstream message, if any."""

    @abstractmethod
    def resets(self, message: Message) -> bool:
        """Whether this upstream message ends a turn or interrupts it (engine state resets)."""

    def observe(self, message: Message) -> None:  # noqa: B027  # optional hook, empty by design
        """See every upstream message (formats announced in session/metadata events)."""

    def completes(self, message: Message) -> bool:
        """Whether this message ends the response's audio: the stream's last visemes
        (held back by the model's lookahead) go out with it."""
        return False

    def transcript(self, message: Message) -> Transcript | None:
        """The agent's transcript this message carries, for text-informed visemes."""
        return None

    def strip(self, message: Message) -> Message | None:
        """The message as the client should see it: what the gateway asked for on its
        own behalf removed (None: nothing is left to send). Default: unchanged."""
        return message

    @abstractmethod
    def inject(self, message: Message, visemes: Message) -> tuple[Message, Message | None]:
        """Place visemes: the audio message to send (maybe changed) and an extra one after it."""
