"""Each adapter's reading of transcript events, from frames in the providers' shapes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import Settings
from providers.base import Transcript
from providers.elevenlabs import ElevenLabs
from providers.gemini_live import GeminiLive
from providers.openai_realtime import OpenAIRealtime

SETTINGS = Settings()


@pytest.mark.parametrize(
    ("message", "want"),
    [
        ({"type": "response.output_audio_transcript.delta", "delta": " may"}, Transcript(" may")),
        ({"type": "response.audio_transcript.delta", "delta": "Hi"}, Transcript("Hi")),  # beta
        ({"type": "response.output_audio_transcript.done", "transcript": "Hi may"},
         Transcript("", final=True)),
        ({"type": "response.output_audio_transcript.delta", "delta": 5}, None),  # malformed
        ({"type": "response.output_text.delta", "delta": "not speech"}, None),
        ({"type": "brand_new.event"}, None),
    ],
)  # fmt: skip
def test_openai_transcript_events(message: dict[str, Any], want: Transcript | None) -> None:
    assert OpenAIRealtime({"ephemeral_token": "ek_1"}, SETTINGS).transcript(message) == want


def _audio(event_id: int, chars: list[str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"audio_base_64": "AAAA", "event_id": event_id}
    if chars is not None:
        event["alignment"] = {"chars": chars, "char_start_times_ms": [0] * len(chars),
                              "char_durations_ms": [10] * len(chars)}  # fmt: skip
    return {"type": "audio", "audio_event": event}


RESPONSE = {"type": "agent_response", "agent_response_event": {"agent_response": "Hi there."}}
USER = {"type": "user_transcript", "user_transcription_event": {"user_transcript": "hm"}}


def test_elevenlabs_agent_response_waits_for_the_first_audio_event() -> None:
    p = ElevenLabs({"agent_id": "a"}, SETTINGS)
    seen = []
    for m in (RESPONSE, _audio(1), _audio(2), USER, _audio(3), RESPONSE):
        p.observe(m)
        seen.append(p.transcript(m))
    # held until audio without alignment shows the text is needed; after audio, at once
    assert seen == [None, Transcript("Hi there.", final=True), None, None, None,
                    Transcript("Hi there.", final=True)]  # fmt: skip


def test_elevenlabs_alignment_characters_win_over_agent_response() -> None:
    p = ElevenLabs({"agent_id": "a"}, SETTINGS)
    seen = []
    for m in (RESPONSE, _audio(1, list("Hi th")), _audio(2, list("ere.")), USER, RESPONSE):
        p.observe(m)
        seen.append(p.transcript(m))
    assert seen == [None, Transcript("Hi th"), Transcript("ere."), None, None]


@pytest.mark.parametrize(
    ("setup", "asked_key"),
    [
        ({"model": "models/x", "generationConfig": {"responseModalities": ["AUDIO"]}},
         "outputAudioTranscription"),
        ({"model": "models/x", "generation_config": {"response_modalities": ["AUDIO"]}},
         "output_audio_transcription"),
    ],
)  # fmt: skip
def test_gemini_asks_for_transcription_in_the_clients_own_spelling(
    setup: dict[str, Any], asked_key: str
) -> None:
    p = GeminiLive({"api_key": "k"}, SETTINGS)
    out = p.rewrite_client({"setup": setup})
    assert out is not None
    assert out["setup"] == {**setup, asked_key: {}}
    only_text = {"serverContent": {"outputTranscription": {"text": "Hi "}}}
    assert p.transcript(only_text) == Transcript("Hi ")
    assert p.strip(only_text) is None  # the client never asked: never sent
    mixed = {"serverContent": {"outputTranscription": {"text": "x"}, "turnComplete": True}}
    assert p.strip(mixed) == {"serverContent": {"turnComplete": True}}
    audio: dict[str, Any] = {"serverContent": {"modelTurn": {"parts": []}}}
    assert p.strip(audio) is audio


def test_gemini_leaves_a_client_that_asked_alone() -> None:
    p = GeminiLive({"api_key": "k"}, SETTINGS)
    setup = {"model": "models/x", "outputAudioTranscription": {}}
    assert p.rewrite_client({"setup": setup}) is None
    message = {"serverContent": {"outputTranscription": {"text": "Hi "}}}
    assert p.strip(message) is message
    assert p.transcript({"serverContent": {"generationComplete": True}}) == Transcript(
        "", final=True
    )


def test_gemini_with_text_informed_off_changes_nothing() -> None:
    off = Settings(text_informed=False)
    p = GeminiLive({"api_key": "k"}, off)
    assert p.rewrite_client({"setup": {"model": "models/x"}}) is None
