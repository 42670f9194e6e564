"""The per-session tap, table by table: frames in the providers' own shapes, what
the tap makes of each (forward as is, change, hide, analyse, flush, reset)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from providers.base import Options, Provider
from providers.elevenlabs import ElevenLabs, ElevenLabsConfig
from providers.gemini_live import GeminiConfig, GeminiLive
from providers.openai_realtime import OpenAIConfig, OpenAIRealtime
from providers.tap import Analysis, Feed, Flush, FrameTooDeep, Tap, splice
from viseme_engine.lipsync import LipsyncConfig
from viseme_engine.smoothing import VisemeEvent

PCM = base64.b64encode(b"\1\0" * 2400).decode()  # 100 ms at 24 kHz, 50 ms at 48 kHz
ULAW = base64.b64encode(b"\x7f" * 800).decode()  # 100 ms at 8 kHz
# What the engine "answers" for every piece of work: one viseme 10 ms into it.
EVENT_MS = 10
NO_PROBS = np.zeros((0, 22), np.float32)


@dataclass(frozen=True)
class Want:
    out: str = "same"  # same (verbatim), changed, hidden
    work: str | None = None  # feed, flush
    restart: bool = False  # the feed opens a new engine stream
    rate: int | None = None  # the feed's sample rate
    texts: tuple[str, ...] = ()  # a new stream gets the turn's text so far
    text: str | None = None  # text for the live stream
    char_ms: tuple[float, ...] | None = None  # its characters' times on the stream's clock
    reset: bool = False
    skipped: str | None = None
    where: str | None = None  # visemes: "message" (a field of it) or "extra" (a message after)
    start_ms: float = 0.0  # the feed's place in the stream
    engine_fails: bool = False  # the engine answers nothing (overload): audio goes bare


def frame(message: dict[str, Any]) -> str:
    return json.dumps(message)


def run(tap: Tap, table: list[tuple[str | bytes, Want]]) -> None:
    for number, (sent, want) in enumerate(table):
        step = tap.from_upstream(sent)
        seen = f"row {number}: {str(sent)[:70]}"
        assert step.reset == want.reset, seen
        assert step.skipped == want.skipped, seen
        assert (step.text.text if step.text else None) == want.text, seen
        assert (step.text.char_ms if step.text else None) == want.char_ms, seen
        work = step.work
        assert (None if work is None else "feed" if isinstance(work, Feed) else "flush") == (
            want.work
        ), seen
        if work is None:
            frames = list(step.frames)
        else:
            assert not step.frames, seen
            if isinstance(work, Feed):
                assert work.restart == want.restart, seen
                assert work.format.sample_rate == want.rate, seen
                assert tuple(t.text for t in work.texts) == want.texts, seen
                assert work.start_ms == want.start_ms, seen
            event = VisemeEvent(21, round(work.start_ms) + EVENT_MS)
            result = None if want.engine_fails else Analysis([event], NO_PROBS)
            frames = tap.analysed(work, result)
        if want.out == "hidden":
            assert frames == [], seen
            continue
        if want.engine_fails:
            assert frames == [sent], seen  # the audio still flows, without visemes
            continue
        if want.out == "same" and want.where is None:
            assert frames == [sent], seen
        if want.where == "message":
            (out,) = frames
            injected = json.loads(out)["mascotVisemes"]
            assert injected["visemes"] == [{"visemeId": 21, "offset": EVENT_MS}], seen
        elif want.where == "extra":
            first, extra = frames
            assert first == sent, seen  # the audio message itself goes out untouched
            assert json.loads(extra)["type"] == "visemes", seen
        elif want.out == "changed":
            (out,) = frames
            assert out != sent, seen
            assert "mascotVisemes" not in json.loads(out), seen


def _options(text_informed: bool = True) -> Options:
    return Options(urls={}, text_informed=text_informed)


def _session(**session: Any) -> dict[str, Any]:
    return {"type": "session.updated", "event_id": "event_2", "session": session}


def _openai_audio(delta: str = PCM) -> str:
    ids = {"event_id": "e", "response_id": "r", "item_id": "i", "output_index": 0}
    return frame({"type": "response.output_audio.delta", **ids, "content_index": 0, "delta": delta})


OPENAI_TABLE: list[tuple[str | bytes, Want]] = [
    (frame({"type": "session.created", "event_id": "event_1", "session": {
        "type": "realtime", "id": "sess_1", "model": "gpt-realtime",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
    }}), Want()),
    (frame({"type": "response.created", "response": {"id": "r", "status": "in_progress"}}),
     Want(reset=True)),
    (frame({"type": "response.output_item.added", "item": {"type": "message"}}), Want()),
    (frame({"type": "response.output_audio_transcript.delta", "delta": "Bob may"}), Want()),
    (_openai_audio(), Want(work="feed", restart=True, rate=24000, texts=("Bob may",),
                           where="message")),
    (frame({"type": "response.output_audio_transcript.delta", "delta": " pay"}),
     Want(text=" pay")),
    (_openai_audio(), Want(work="feed", rate=24000, where="message", start_ms=100.0)),
    (_openai_audio("not base64!"), Want(skipped="bad_audio")),
    (frame({"type": "response.output_audio.done", "item_id": "i"}), Want(work="flush",
                                                                         where="message")),
    (frame({"type": "response.function_call_arguments.delta", "call_id": "c", "delta": "{\""}),
     Want()),  # a tool call: the provider's business
    (frame({"type": "input_audio_buffer.speech_started", "audio_start_ms": 900}),
     Want(reset=True)),
    (frame(_session(audio={"output": {"format": {"type": "audio/pcm", "rate": "abc"}}})),
     Want(skipped="adapter_error")),
    (frame(_session(audio={"output": "pcm16"})), Want(skipped="adapter_error")),
    (frame({"type": "response.output_audio_transcript.delta", "delta": {"nested": 1}}),
     Want(skipped="adapter_error")),
    (_openai_audio(), Want(work="feed", restart=True, rate=24000, where="message")),
    (frame(_session(audio={"output": {"format": {"type": "audio/pcm", "rate": 32000}}})), Want()),
    (_openai_audio(), Want(work="feed", restart=True, rate=32000, where="message")),
    (frame(_session(audio={"output": {"format": {"type": "audio/pcmu"}}})), Want()),
    (_openai_audio(ULAW), Want(work="feed", restart=True, rate=8000, where="message")),
    (_openai_audio(), Want(work="feed", rate=8000, where="message", engine_fails=True,
                           start_ms=100.0)),
    (_openai_audio(ULAW), Want(work="feed", restart=True, rate=8000, where="message")),
    (frame(_session(audio={"output": {"format": {"type": "audio/pcma"}}})), Want()),
    (_openai_audio(), Want()),  # a-law: no visemes rather than wrong ones
    (frame({"type": "brand_new.event", "payload": {"n": [1, 2, 3]}}), Want()),
    (b"\x00\x01 not json", Want()),
    ("[" * 100_000, Want()),  # too deep to parse: the provider's own business
]  # fmt: skip


def test_openai_session() -> None:
    provider = OpenAIRealtime(OpenAIConfig(ephemeral_token="ek_1"), _options())
    run(Tap(provider, use_text=True), OPENAI_TABLE)


def _el_audio(event_id: int, chars: list[str] | None = None) -> str:
    event: dict[str, Any] = {"audio_base_64": PCM, "event_id": event_id}
    if chars is not None:
        # times from the start of this chunk's audio (docs/protocols.md)
        starts = [10 * i for i in range(len(chars))]
        event["alignment"] = {"chars": chars, "char_start_times_ms": starts,
                              "char_durations_ms": [10] * len(chars)}  # fmt: skip
    return frame({"type": "audio", "audio_event": event})


EL_RESPONSE = frame({"type": "agent_response",
                     "agent_response_event": {"agent_response": "Bob may pay."}})  # fmt: skip
ELEVENLABS_TABLE: list[tuple[str | bytes, Want]] = [
    (_el_audio(1), Want()),  # before the handshake the SDKs must see first: no visemes
    (frame({"type": "conversation_initiation_metadata",
            "conversation_initiation_metadata_event": {
                "conversation_id": "c1", "agent_output_audio_format": "pcm_48000",
                "user_input_audio_format": "pcm_16000"}}), Want()),
    (frame({"type": "ping", "ping_event": {"event_id": 1, "ping_ms": None}}), Want()),
    (EL_RESPONSE, Want()),  # held: the first audio event says whether alignment comes
    (_el_audio(2), Want(work="feed", restart=True, rate=48000, texts=("Bob may pay.",),
                        where="extra")),
    (_el_audio(3), Want(work="feed", rate=48000, where="extra", start_ms=50.0)),
    (frame({"type": "client_tool_call", "client_tool_call": {
        "tool_name": "wave", "tool_call_id": "t1", "parameters": {}}}), Want()),
    (frame({"type": "interruption", "interruption_event": {"event_id": 4}}), Want(reset=True)),
    (_el_audio(4), Want()),  # in flight when the user interrupted: never played
    (_el_audio(5, list("Hi")), Want(work="feed", restart=True, rate=48000, texts=("Hi",),
                                    where="extra")),
    # the characters' times move onto the stream's clock: this audio starts at 50 ms
    (_el_audio(6, list(" you")), Want(work="feed", rate=48000, where="extra", text=" you",
                                      char_ms=(50.0, 60.0, 70.0, 80.0), start_ms=50.0)),
    (EL_RESPONSE, Want()),  # alignment came: agent_response is not needed
    (frame({"type": "interruption", "interruption_event": {"event_id": "abc"}}),
     Want(skipped="adapter_error")),
    (frame({"type": "audio", "audio_event": {"event_id": 7}}), Want(skipped="adapter_error")),
    (frame({"type": "user_transcript",
            "user_transcription_event": {"user_transcript": "hm"}}), Want(reset=True)),
    (frame({"type": "vad_score", "vad_score_event": {"vad_score": 0.9}}), Want()),
]  # fmt: skip


def test_elevenlabs_session() -> None:
    provider = ElevenLabs(ElevenLabsConfig(agent_id="a"), _options())
    run(Tap(provider, use_text=True), ELEVENLABS_TABLE)


def _gemini_audio(mime: str = "audio/pcm;rate=24000") -> str:
    part = {"inlineData": {"mimeType": mime, "data": PCM}}
    return frame({"serverContent": {"modelTurn": {"parts": [part]}}})


GEMINI_TABLE: list[tuple[str | bytes, Want]] = [
    (_gemini_audio(), Want()),  # before setupComplete
    (frame({"setupComplete": {}}), Want()),
    (frame({"serverContent": {"outputTranscription": {"text": "Bob "}}}), Want(out="hidden")),
    (_gemini_audio(), Want(work="feed", restart=True, rate=24000, texts=("Bob ",),
                           where="message")),
    (frame({"serverContent": {"outputTranscription": {"text": "may"}, "turnComplete": False}}),
     Want(out="changed", text="may")),  # the gateway's transcription taken out, the rest kept
    # a new stream mid-turn: no replay of words already spoken (later pieces still come)
    (_gemini_audio("audio/pcm;rate=48000"), Want(work="feed", restart=True, rate=48000,
                                                 where="message")),
    (frame({"toolCall": {"functionCalls": [{"name": "f", "id": "1", "args": {}}]}}), Want()),
    (frame({"serverContent": {"generationComplete": True}}), Want(work="flush", text="",
                                                                  where="message")),
    (frame({"serverContent": {"turnComplete": True}}), Want(reset=True)),
    (_gemini_audio("audio/opus"), Want()),  # not PCM: no visemes rather than wrong ones
    (frame({"serverContent": {"interrupted": True}}), Want(reset=True)),
    (frame({"serverContent": {"modelTurn": {"parts": "not a list"}}}),
     Want(skipped="adapter_error")),
    (frame({"goAway": {"timeLeft": "10s"}}), Want()),
]  # fmt: skip


def test_gemini_session() -> None:
    provider = GeminiLive(GeminiConfig(api_key="k"), _options())
    tap = Tap(provider, use_text=True)
    setup = tap.from_client(frame({"setup": {"model": "models/x"}}))
    assert json.loads(setup)["setup"]["outputAudioTranscription"] == {}
    run(tap, GEMINI_TABLE)


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
    tap = Tap(GeminiLive(GeminiConfig(api_key="k"), _options()), use_text=True)
    assert json.loads(tap.from_client(frame({"setup": setup})))["setup"] == {**setup, asked_key: {}}


def test_gemini_leaves_a_client_that_asked_alone() -> None:
    tap = Tap(GeminiLive(GeminiConfig(api_key="k", model="gemini-live"), _options()))
    sent = frame({"setup": {"model": "models/x", "outputAudioTranscription": {}}})
    assert json.loads(tap.from_client(sent))["setup"]["model"] == "models/gemini-live"
    transcription = frame({"serverContent": {"outputTranscription": {"text": "Hi "}}})
    assert tap.from_upstream(transcription).frames == (transcription,)


def test_gemini_with_text_informed_off_changes_nothing() -> None:
    tap = Tap(GeminiLive(GeminiConfig(api_key="k"), _options(text_informed=False)))
    sent = frame({"setup": {"model": "models/x"}})
    assert tap.from_client(sent) is sent


def test_client_frames() -> None:
    config = ElevenLabsConfig(agent_id="a", dynamic_variables={"name": "Ann"})
    tap = Tap(ElevenLabs(config, _options()))
    initiation = frame({"type": "conversation_initiation_client_data",
                        "dynamic_variables": {"name": "Eve", "city": "Oslo"}})  # fmt: skip
    merged = json.loads(tap.from_client(initiation))["dynamic_variables"]
    assert merged == {"name": "Ann", "city": "Oslo"}  # signed variables win
    audio = frame({"user_audio_chunk": PCM})
    assert tap.from_client(audio) is audio
    assert tap.from_client(b"\x00binary") == b"\x00binary"
    with pytest.raises(FrameTooDeep):
        tap.from_client("[" * 100_000)


def test_a_plain_relay_reads_but_never_analyses() -> None:
    tap = Tap(OpenAIRealtime(OpenAIConfig(ephemeral_token="ek_1"), _options()), inject=False)
    for sent, want in OPENAI_TABLE:
        step = tap.from_upstream(sent)
        assert step.work is None
        assert step.reset == want.reset


@pytest.mark.parametrize("provider_cls", [ElevenLabs, OpenAIRealtime, GeminiLive])
def test_unknown_events_pass_through_every_provider(provider_cls: type[Provider[Any]]) -> None:
    config = {"elevenlabs": ElevenLabsConfig(agent_id="a"),
              "openai": OpenAIConfig(ephemeral_token="ek"),
              "gemini": GeminiConfig(api_key="k")}[provider_cls.name]  # fmt: skip
    tap = Tap(provider_cls(config, _options()))
    for sent in ('{"type":"x.y","a":[1]}', '{"novel":{"deep":{"er":1}}}', "[1,2]", '"s"', "1e999"):
        step = tap.from_upstream(sent)
        assert (step.frames, step.work, step.skipped) == ((sent,), None, None)


def test_flush_without_audio_is_no_work() -> None:
    tap = Tap(OpenAIRealtime(OpenAIConfig(ephemeral_token="ek_1"), _options()))
    done = frame({"type": "response.output_audio.done"})
    assert tap.from_upstream(done).frames == (done,)


def test_a_failed_flush_sends_the_message_bare() -> None:
    tap = Tap(OpenAIRealtime(OpenAIConfig(ephemeral_token="ek_1"), _options()))
    feed = tap.from_upstream(_openai_audio()).work
    assert isinstance(feed, Feed)
    tap.analysed(feed, Analysis([], NO_PROBS))
    done = frame({"type": "response.output_audio.done"})
    flush = tap.from_upstream(done).work
    assert isinstance(flush, Flush)
    assert tap.analysed(flush, None) == [done]


def test_the_lipsync_format_shapes_what_is_injected() -> None:
    oculus = LipsyncConfig(format="oculus")
    tap = Tap(OpenAIRealtime(OpenAIConfig(ephemeral_token="ek"), _options()), lipsync=oculus)
    feed = tap.from_upstream(_openai_audio()).work
    assert isinstance(feed, Feed)
    (out,) = tap.analysed(feed, Analysis([VisemeEvent(21, 10)], NO_PROBS))
    assert json.loads(out)["mascotVisemes"]["visemes"] == [{"viseme": "PP", "offset": 10}]

    arkit = LipsyncConfig(format="arkit", fps=30)
    tap = Tap(ElevenLabs(ElevenLabsConfig(agent_id="a"), _options()), lipsync=arkit)
    tap.from_upstream(ELEVENLABS_TABLE[1][0])  # the metadata: 48 kHz
    feed = tap.from_upstream(_el_audio(1)).work
    assert isinstance(feed, Feed)
    probs = np.zeros((5, 22), np.float32)
    probs[:, 21] = 1.0  # 50 ms of closed lips
    _, extra = tap.analysed(feed, Analysis([VisemeEvent(21, 0)], probs))
    shapes = json.loads(extra)["blendshapes"]
    assert (shapes["fps"], shapes["offset"], len(shapes["names"])) == (30, 0, 52)
    assert all(len(frame) == 52 for frame in shapes["frames"])
    assert "visemes" not in json.loads(extra)  # the blendshapes replace the list


@pytest.mark.parametrize(
    "sent",
    [
        '{"type":"response.output_audio.delta","delta":"AAAA"}',
        b'{"serverContent":{"modelTurn":{"parts":[]}}}',  # Gemini's binary JSON
        '{ "a" : "é\\u00e9" , "n": [1, {"b": null}] }\n ',
        "{}",
        '{"mascotVisemes": "old", "x": 1}',  # replaced, never repeated
        '{"x": 1}'.encode("utf-16"),  # json.loads reads it; splicing must not touch it
        '{"x": 1}'.encode("utf-16-le"),  # no BOM: its first byte is "{" all the same
    ],
)
def test_splicing_a_field_is_the_same_json_as_adding_it(sent: str | bytes) -> None:
    message = json.loads(sent)
    value = {"visemes": [{"visemeId": 21, "offset": -3}], "audio_event_id": 7, "é": "ü"}
    out = splice(sent, message, "mascotVisemes", value)
    assert type(out) is type(sent)
    assert json.loads(out) == {**message, "mascotVisemes": value}
    assert (
        out.count(b"mascotVisemes") if isinstance(out, bytes) else out.count("mascotVisemes")
    ) == 1
