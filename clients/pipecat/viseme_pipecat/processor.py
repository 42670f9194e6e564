"""`VisemeProcessor`: the TTS audio it sees through the viseme engine, the visemes to
the client as RTVI server messages, just ahead of the audio they belong to.

Placed after a TTS service, it passes every frame on unchanged and in order. For
each `TTSAudioRawFrame` it first pushes an `OutputTransportMessageFrame` holding

    {"label": "rtvi-ai", "type": "server-message",
     "data": {"type": "visemes", "audio_offset_ms": 1200, "audio_duration_ms": 40,
              "visemes": [{"visemeId": 21, "offset": 12}, ...]}}

(the streaming endpoint's answer, docs/protocols.md), then the audio. Both are data
frames: the output transport queues them together and sends them as playback
reaches them, so a client sees each viseme message when its audio starts to play.
An interruption resets the stream (nothing computed before it goes out after it);
`TTSStoppedFrame`, the end of a TTS turn, flushes the lookahead's last visemes.

The words, too: a TTS service announces the text it is about to speak (an
`AggregatedTextFrame` with `will_be_spoken`: a turn's first sentence just before
its `TTSStartedFrame`, later ones as they are sent to the TTS), and that text
goes to the engine for the audio of the turn, so the visemes follow its words
(text_align.py). In token-streaming mode pipecat announces a sentence once the
next one begins, which can be after its audio has started: late text, which the
aligner lets go of sooner. The `TTSTextFrame`s that name words as, or after,
they are spoken come too late to help and are not used.

Visemes never hold up a conversation: if the engine or the gateway fails, or its
answer is later than the deadline, the audio goes on without them and that is
logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pipecat.frames.frames import (
    AggregatedTextFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputTransportMessageFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.models import ServerMessage

from viseme_engine.audio import AudioFormat
from viseme_engine.lipsync import LipsyncConfig
from viseme_engine.live import Answer, LiveVisemes, VisemeSource, mono_s16, shared_engine
from viseme_engine.remote import RemoteVisemes

log = logging.getLogger("viseme_pipecat")
VISEMES_TYPE = "visemes"  # data.type of the RTVI server messages this processor sends


def rtvi_message(answer: Answer) -> dict[str, Any]:
    """The RTVI server message that carries one answer."""
    return ServerMessage(data=answer).model_dump()


class VisemeProcessor(FrameProcessor):
    def __init__(
        self,
        *,
        model: str = "default",
        lipsync: LipsyncConfig | None = None,
        gateway_url: str | None = None,
        api_key: str | None = None,
        source: VisemeSource | None = None,
        deadline_ms: float = 20.0,
        text: bool = True,
        **kwargs: Any,
    ) -> None:
        """In this process's engine by default; with `gateway_url`
        (`ws[s]://host/v1/visemes/stream`) and `api_key`, through a gateway's
        streaming endpoint (one GPU shared by many agents); or any `source`.

        `deadline_ms`: how long a frame's audio may wait for its visemes (at least
        half the frame's own length, so the audio never falls behind real time);
        past it the audio goes on without them, as the relay does. `text`: give
        the engine the text the TTS service announces (False: the audio alone)."""
        super().__init__(**kwargs)
        self._deadline_s = deadline_ms / 1000
        self._text = text
        if source is None and gateway_url is not None:
            source = RemoteVisemes(gateway_url, api_key, model=model, lipsync=lipsync)
        self._source = source
        self._model, self._lipsync = model, lipsync

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, TTSAudioRawFrame):
                await self._visemes(frame)
            elif isinstance(frame, TTSStoppedFrame):
                await self._flush()
            elif self._text and _announced(frame):
                assert isinstance(frame, AggregatedTextFrame)
                # Whole words, not the turn's end (more sentences may follow; the
                # TTSStoppedFrame ends it). A source only queues text: this is quick.
                await self._call("add_text", f"{frame.text} ", within=self._deadline_s)
            elif isinstance(frame, InterruptionFrame):
                await self._call("reset", within=self._deadline_s)
            elif isinstance(frame, EndFrame | CancelFrame):
                await self._call("aclose")
        await self.push_frame(frame, direction)

    async def _visemes(self, frame: TTSAudioRawFrame) -> None:
        seconds = len(frame.audio) / 2 / max(frame.num_channels, 1) / max(frame.sample_rate, 1)
        answer = await self._call("feed", frame, within=max(self._deadline_s, seconds / 2))
        if answer is not None:
            await self.push_frame(OutputTransportMessageFrame(message=rtvi_message(answer)))

    async def _flush(self) -> None:
        # "final": the client knows the turn's audio ended
        answer = await self._call("flush", within=self._deadline_s)
        if answer is not None:
            await self.push_frame(OutputTransportMessageFrame(message=rtvi_message(answer)))

    async def _call(self, name: str, *args: Any, within: float | None = None) -> Answer | None:
        """One call on the source, within its deadline; a failure or a late answer costs
        this frame its visemes, never its audio."""
        if self._source is None and name not in ("feed", "add_text"):
            return None  # nothing was ever fed: nothing to flush, reset or close
        try:
            async with asyncio.timeout(within):
                if self._source is None:
                    engine = await shared_engine()  # loads once; a timeout leaves it loading
                    self._source = LiveVisemes(engine, self._model, self._lipsync)
                if args and isinstance(args[0], TTSAudioRawFrame):
                    # in here, so audio the engine cannot take costs visemes, not the frame
                    frame = args[0]
                    pcm = mono_s16(frame.audio, frame.num_channels)
                    args = (pcm, AudioFormat("pcm_s16le", frame.sample_rate))
                result: Answer | None = await getattr(self._source, name)(*args)
                return result
        except TimeoutError:
            log.warning("visemes: %s took over %.0f ms; the audio goes on without them",
                        name, 1000 * (within or 0))  # fmt: skip
        except Exception:
            log.exception("visemes: %s failed; the audio goes on without them", name)
        return None


def _announced(frame: Frame) -> bool:
    """Text a TTS service is about to speak (not a word it is speaking or has spoken)."""
    return (
        isinstance(frame, AggregatedTextFrame)
        and not isinstance(frame, TTSTextFrame)
        and bool(frame.will_be_spoken)
    )
