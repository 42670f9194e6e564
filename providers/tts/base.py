"""The interface every TTS engine implements, its one error, and the text splitter.

An engine turns one sentence into raw s16le mono PCM at its fixed
`sample_rate`, as an async iterator of byte chunks that arrive while the
upstream is still speaking. The route asks for one sentence at a time, so the
first audio leaves before the rest of the text is synthesized, and every
engine's audio goes through the same viseme engine stream.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import aiohttp

from ..base import UrlSetting

# A sentence ends at . ! ? or an ellipsis followed by space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026\u3002])\s+|\s*\n\s*")
_SOFT_BREAK = re.compile(r"(?<=[,;:])\s+|\s+")
MAX_SENTENCE = 300  # longer runs are cut at a comma or space: the first audio comes sooner


class TtsError(Exception):
    """A TTS engine failed; the message is for the client (it names the upstream status)."""


@dataclass(frozen=True)
class Speech:
    """What to say and how; `language` is espeak-ng's language for the viseme model."""

    voice: str | None
    speed: float
    language: str
    api_key: str | None


class TtsEngine(ABC):
    key: ClassVar[str]  # the request's `tts_engine`
    name: ClassVar[str]  # for error messages
    sample_rate: ClassVar[int]
    urls: ClassVar[tuple[UrlSetting, ...]] = ()
    needs_api_key: ClassVar[bool] = False  # the request's `tts_api_key`
    # The voices it takes: a list, or a pattern of voice ids.
    voices: ClassVar[tuple[str, ...] | None] = None
    voice_pattern: ClassVar[str | None] = None

    def __init__(
        self, http: aiohttp.ClientSession, urls: Mapping[str, str], timeout_seconds: float
    ) -> None:
        self._http = http
        self._urls = urls  # this engine's UrlSettings, resolved
        self._timeout_seconds = timeout_seconds
        # sock_read: a stalled upstream fails after this long without a byte,
        # however long a healthy sentence takes to stream in total.
        seconds = timeout_seconds
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)

    @abstractmethod
    def synthesize(
        self, sentence: str, speech: Speech, context: tuple[str, str]
    ) -> AsyncGenerator[bytes, None]:
        """PCM of `sentence`; `context` is the (previous, next) sentence, for prosody."""

    async def _post_stream(
        self, url: str, headers: dict[str, str], body: dict[str, object]
    ) -> AsyncGenerator[bytes, None]:
        """POST JSON, then stream the audio body; failures become TtsError."""
        label = f"{self.name} TTS"
        try:
            async with self._http.post(
                url, json=body, headers=headers, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    detail = _error_detail(await response.content.read(2048))
                    raise TtsError(f"{label} failed: upstream HTTP {response.status}{detail}")
                async for chunk in response.content.iter_any():
                    yield chunk
        except TimeoutError:
            seconds = self._timeout_seconds
            raise TtsError(f"{label} failed: no answer within {seconds:g} s") from None
        except aiohttp.ClientError as exc:
            raise TtsError(f"{label} failed: {type(exc).__name__}") from None


def voice_error(engine: type[TtsEngine], voice: str) -> str | None:
    """Why `engine` cannot take `voice`; None if it can."""
    if engine.voices is not None and voice not in engine.voices:
        return f"voice {voice!r} is not an {engine.name} voice ({', '.join(engine.voices)})"
    if engine.voice_pattern is not None and not re.match(engine.voice_pattern, voice):
        return f"voice {voice!r} is not an {engine.name} voice_id"
    return None


def _error_detail(body: bytes) -> str:
    """A short reason from an upstream error body (ElevenLabs `detail`, OpenAI `error`)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ""
    if not isinstance(data, dict):
        return ""
    inner = data.get("detail") or data.get("error")
    if isinstance(inner, dict):
        inner = inner.get("message") or inner.get("status") or inner.get("code")
    return f": {str(inner)[:200]}" if inner else ""


def split_sentences(text: str) -> list[str]:
    """Sentences to synthesize one by one; a piece with no letter joins its neighbour."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if sentences and not any(c.isalnum() for c in piece):
            sentences[-1] += " " + piece
            continue
        sentences.extend(_cut(piece))
    return sentences or [text.strip()]


def _cut(sentence: str) -> list[str]:
    out: list[str] = []
    while len(sentence) > MAX_SENTENCE:
        breaks = [m.end() for m in _SOFT_BREAK.finditer(sentence, 0, MAX_SENTENCE)]
        at = max((b for b in breaks if b > MAX_SENTENCE // 3), default=MAX_SENTENCE)
        out.append(sentence[:at].strip())
        sentence = sentence[at:].strip()
    if sentence:
        out.append(sentence)
    return out
