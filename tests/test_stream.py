"""The Sans-I/O stream on the shipped models: any chunking gives the whole-file result."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.speech import espeak_pcm
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import MODELS_DIR
from viseme_engine.onnx_model import OnnxVisemeModel
from viseme_engine.smoothing import VisemeEvent
from viseme_engine.stream import VisemeStream


@pytest.fixture(scope="module")
def model() -> OnnxVisemeModel:
    return OnnxVisemeModel.from_path(MODELS_DIR / "default.onnx")


def events_for(model: OnnxVisemeModel, fmt: AudioFormat, chunks: list[bytes]) -> list[VisemeEvent]:
    stream = VisemeStream(model, fmt)
    events: list[VisemeEvent] = []
    for chunk in chunks:
        events += stream.feed(chunk)
    return events + stream.flush()


def random_chunks(data: bytes, rng: np.random.Generator, lo: int, hi: int) -> list[bytes]:
    chunks, pos = [], 0
    while pos < len(data):
        size = int(rng.integers(lo, hi))
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_random_chunking_equals_whole_file(model: OnnxVisemeModel, rate: int) -> None:
    import soxr

    data, native = espeak_pcm("Maybe we should bob for apples, mom.")
    audio = np.frombuffer(data, "<i2").astype(np.float32)
    resampled = soxr.resample(audio, native, rate).clip(-32768, 32767).astype("<i2").tobytes()
    fmt = AudioFormat("pcm_s16le", rate)
    whole = events_for(model, fmt, [resampled])
    assert whole, "the model produced no events at all"
    rng = np.random.default_rng(rate)
    for _ in range(3):
        # Odd byte counts too: a sample split across chunks must be reassembled.
        chunks = random_chunks(resampled, rng, 1, rate // 2)
        assert events_for(model, fmt, chunks) == whole


def test_mulaw_stream(model: OnnxVisemeModel) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    import soxr

    data, native = espeak_pcm("Hello there, my friend.")
    audio = np.frombuffer(data, "<i2").astype(np.float32)
    pcm8k = soxr.resample(audio, native, 8000).clip(-32768, 32767).astype("<i2").tobytes()
    ulaw = audioop.lin2ulaw(pcm8k, 2)
    fmt = AudioFormat("mulaw", 8000)
    whole = events_for(model, fmt, [ulaw])
    chunks = random_chunks(ulaw, np.random.default_rng(0), 160, 2000)
    assert events_for(model, fmt, chunks) == whole


def test_event_offsets_cover_the_audio(model: OnnxVisemeModel) -> None:
    data, rate = espeak_pcm("One two three.")
    events = events_for(model, AudioFormat("pcm_s16le", rate), [data])
    offsets = [e.offset_ms for e in events]
    assert offsets == sorted(offsets)
    duration_ms = len(data) // 2 * 1000 // rate
    assert offsets[0] >= 0
    assert offsets[-1] <= duration_ms
    assert all(0 <= e.viseme_id <= 21 for e in events)
    # Consecutive events always change the viseme.
    assert all(a.viseme_id != b.viseme_id for a, b in itertools.pairwise(events))


def test_flush_twice_is_an_error(model: OnnxVisemeModel) -> None:
    stream = VisemeStream(model, AudioFormat("pcm_s16le", 16000))
    stream.feed(b"\x00\x00" * 1600)
    stream.flush()
    with pytest.raises(RuntimeError):
        stream.feed(b"\x00\x00")


def test_a_block_ends_once_and_an_abandoned_one_runs_first_next_time(
    model: OnnxVisemeModel,
) -> None:
    fmt = AudioFormat("pcm_s16le", 22050)
    pcm, _ = espeak_pcm("Bob may pay my mom.")
    chunks = [pcm[i : i + 4410] for i in range(0, len(pcm), 4410)]
    whole = VisemeStream(model, fmt)
    want = [e for c in chunks for e in whole.feed(c)] + whole.flush()

    stream = VisemeStream(model, fmt)
    got = []
    for index, chunk in enumerate(chunks):
        block = stream.prepare(chunk)
        with pytest.raises(RuntimeError):
            stream.prepare(chunk)  # one block in flight at a time
        if index % 3 == 1:  # an overload: the block's inference never happened
            stream.abandon(block)
            continue
        logits, state = model.run(block.audio[None, :], stream.state)
        got += stream.complete(block, logits[0], state)
        with pytest.raises(RuntimeError):
            stream.complete(block, logits[0], state)  # a block completes once
    block = stream.prepare_flush()
    stream.abandon(block)  # a failed flush may be asked for again
    got += stream.flush()
    assert got == want
