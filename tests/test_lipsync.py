"""Lip-sync output formats: pose table, continuity, frame counts, chunking, config."""

from __future__ import annotations

import json
import math
from typing import cast

import numpy as np
import numpy.typing as npt
import pytest

from viseme_engine.lipsync import (
    ARKIT_NAMES,
    FORMATS,
    BlendshapeBlock,
    Entry,
    LipsyncConfig,
    LipsyncTrack,
    SapiEntry,
    blendshapes_message,
    rebase,
)
from viseme_engine.phonemes import SAPI_TO_OCULUS_NAME
from viseme_engine.poses import POSES
from viseme_engine.smoothing import Smoother, SmoothingConfig, VisemeEvent

Probs = npt.NDArray[np.float32]
JAW = ARKIT_NAMES.index("jawOpen")
OPEN_VOWELS = [v for v, name in SAPI_TO_OCULUS_NAME.items() if name == "aa"]  # 1 2 9 11


def col(name: str) -> int:
    return ARKIT_NAMES.index(name)


def one_hot(ids: list[int], strength: float = 0.9) -> Probs:
    probs = np.full((len(ids), 22), (1 - strength) / 21, np.float32)
    probs[np.arange(len(ids)), ids] = strength
    return probs


def speech_like(rng: np.random.Generator, rows: int) -> Probs:
    """Runs of visemes 10-150 ms long, with noisy, soft probabilities."""
    ids: list[int] = []
    while len(ids) < rows:
        ids += [int(rng.integers(0, 22))] * int(rng.integers(1, 16))
    logits = rng.normal(0, 1, (rows, 22)) + 4 * np.eye(22)[ids[:rows]]
    probs = np.exp(logits)
    out: Probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def random_splits(rng: np.random.Generator, rows: int) -> list[int]:
    """Chunk sizes summing to rows, with empty and one-row chunks among them."""
    sizes: list[int] = []
    while sum(sizes) < rows:
        sizes.append(int(rng.choice([0, 1, 1, 2, 3, 7, 10, 16, 33])))
    sizes[-1] -= sum(sizes) - rows
    return sizes


def run(config: LipsyncConfig, probs: Probs, sizes: list[int] | None = None) -> list[Entry]:
    """What a stream would do: its Smoother's events and probabilities, chunk by chunk."""
    smoother = Smoother(config.smoothing_config())
    track = LipsyncTrack(config)
    out: list[Entry] = []
    start = 0
    for size in sizes or [len(probs)]:
        chunk = probs[start : start + size]
        start += size
        out += track.push(chunk, smoother.push(chunk))
    out += track.flush(smoother.flush())
    return out


def frames_of(entries: list[Entry], fps: int = 60) -> npt.NDArray[np.float64]:
    """The blocks' frames end to end, checking each block's offset and fps."""
    frames: list[list[float]] = []
    for entry in entries:
        block = cast(BlendshapeBlock, entry)
        assert block["fps"] == fps
        assert block["offset"] == round(1000 * len(frames) / fps)  # 50 i / 3: never a tie
        assert all(len(frame) == 52 for frame in block["frames"])
        frames += block["frames"]
    out: npt.NDArray[np.float64] = np.array(frames).reshape(-1, 52)
    return out


def arkit(fps: int = 60, smoothing: float = 0.1, intensity: float = 1.0) -> LipsyncConfig:
    return LipsyncConfig(format="arkit", fps=fps, smoothing=smoothing, intensity=intensity)


def sapi_ids(entries: list[Entry]) -> list[int]:
    return [e["visemeId"] for e in cast(list[SapiEntry], entries)]


# --- the pose table ---------------------------------------------------------


def test_arkit_names_are_apples_52_in_order() -> None:
    assert len(ARKIT_NAMES) == len(set(ARKIT_NAMES)) == 52
    assert ARKIT_NAMES[:2] == ("eyeBlinkLeft", "eyeLookDownLeft")
    assert ARKIT_NAMES[7] == "eyeBlinkRight"
    assert ARKIT_NAMES[14:21] == (
        "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    )  # fmt: skip
    assert ARKIT_NAMES[41] == "browDownLeft"
    assert ARKIT_NAMES[46] == "cheekPuff"
    assert ARKIT_NAMES[-1] == "tongueOut"


def test_pose_table_follows_articulation() -> None:
    assert POSES.shape == (22, 52)
    assert POSES.min() >= 0
    assert POSES.max() <= 1
    assert not POSES[0].any()  # silence is the neutral face
    for v in OPEN_VOWELS:
        assert POSES[v, JAW] >= 0.4, v
    pbm = POSES[21]
    assert pbm[JAW] <= 0.1
    assert max(pbm[col("mouthClose")], pbm[col("mouthPressLeft")]) >= 0.4
    assert pbm[col("mouthPressLeft")] == pbm[col("mouthPressRight")]
    for v in (7, 8, 3):  # u w, o, open o
        assert max(POSES[v, col("mouthFunnel")], POSES[v, col("mouthPucker")]) >= 0.5, v
    assert POSES[18, col("mouthRollLower")] >= 0.4  # f v: lower lip under the teeth
    assert POSES[17, col("tongueOut")] > 0  # th
    # vowel height orders the jaw: father > cat > bed > see > p
    jaw = POSES[:, JAW]
    assert jaw[2] > jaw[1] > jaw[4] > jaw[6] > jaw[21]


def test_non_mouth_shapes_stay_zero() -> None:
    frames = frames_of(run(arkit(), speech_like(np.random.default_rng(1), 300)))
    still = [i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("eye", "brow", "cheek", "nose"))]
    assert len(still) == 24
    assert not frames[:, still].any()
    assert frames[:, JAW].max() > 0.3  # and the mouth does move


@pytest.mark.parametrize("fps", [30, 60])
def test_held_visemes_reach_their_poses(fps: int) -> None:
    def held(v: int) -> npt.NDArray[np.float64]:
        probs = one_hot([0] * 20 + [v] * 40 + [0] * 20, strength=1.0)
        frames = frames_of(run(arkit(fps=fps), probs), fps)
        frame: npt.NDArray[np.float64] = frames[round(0.5 * fps)]
        return frame  # 500 ms: 300 ms into the viseme

    for v in OPEN_VOWELS:
        assert held(v)[JAW] >= 0.4
    pbm = held(21)
    assert pbm[JAW] <= 0.1
    assert max(pbm[col("mouthClose")], pbm[col("mouthPressLeft")]) >= 0.4
    for v in (7, 8, 3):
        shape = held(v)
        assert max(shape[col("mouthFunnel")], shape[col("mouthPucker")]) >= 0.5
    np.testing.assert_allclose(held(2), POSES[2], atol=0.0015)


def test_coarticulation_blends_poses() -> None:
    probs = np.zeros((100, 22), np.float32)
    probs[:, 2] = probs[:, 7] = 0.5  # half 'father', half 'too': in between the poses
    frame = frames_of(run(arkit(), probs))[-1]
    np.testing.assert_allclose(frame, (POSES[2] + POSES[7]) / 2, atol=0.0015)


# --- smoothing and timing -------------------------------------------------------


@pytest.mark.parametrize(("fps", "bound"), [(60, 0.315), (30, 0.628)])
def test_default_smoothing_bounds_every_step(fps: int, bound: float) -> None:
    config = arkit(fps=fps)
    assert config.step_bound() <= bound  # the documented numbers
    step = one_hot([0] * 30 + [2] * 50 + [21] * 30 + [0] * 30, strength=1.0)
    rng = np.random.default_rng(2)
    flicker = one_hot([int(v) for v in rng.integers(0, 22, 400)], strength=1.0)  # worst case
    for probs in (step, flicker, speech_like(rng, 400)):
        frames = frames_of(run(config, probs), fps)
        assert np.abs(np.diff(frames, axis=0)).max() <= config.step_bound() + 1e-9
    if fps == 60:  # the filter is what keeps it there: unsmoothed, a full jaw step jumps
        raw = frames_of(run(arkit(smoothing=0.0, intensity=2.0), step))
        assert np.abs(np.diff(raw[:, JAW])).max() >= 0.5


def test_step_bound_is_reached_by_a_full_step() -> None:
    # targets 0 -> 1 in one shape (p/b/m has none at 1.0, so scale the jaw up)
    probs = one_hot([0] * 30 + [2] * 60, strength=1.0)
    config = arkit(intensity=2.0)  # the jaw of 2 is 0.7: x 2, clipped to 1
    jaw = frames_of(run(config, probs))[:, JAW]
    assert np.abs(np.diff(jaw)).max() >= 0.9 * config.step_bound()  # the bound is tight


def test_arkit_timing_is_true_to_the_audio() -> None:
    # viseme 2 from 500 ms on: the filter's delay is made up, so the jaw is
    # about halfway at the onset, not 30 ms later
    probs = one_hot([0] * 50 + [2] * 50, strength=1.0)
    jaw = frames_of(run(arkit(), probs))[:, JAW]
    final = POSES[2, JAW]
    assert 0.3 * final <= jaw[30] <= 0.7 * final  # frame 30 is at 500 ms
    assert jaw[21] <= 0.05  # 350 ms: still closed
    assert jaw[-1] == pytest.approx(final, abs=0.001)


def test_more_smoothing_is_slower_and_none_is_instant() -> None:
    probs = one_hot([0] * 50 + [2] * 50, strength=1.0)
    steps = [
        np.abs(np.diff(frames_of(run(arkit(smoothing=s), probs))[:, JAW])).max()
        for s in (0.0, 0.1, 0.3, 1.0)
    ]
    assert steps == sorted(steps, reverse=True)
    assert len(set(steps)) == 4
    assert steps[-1] < 0.1


def test_intensity_scales_the_opening_only() -> None:
    probs = one_hot([0] * 20 + [1] * 60, strength=1.0)  # æ: jaw 0.45, stretch 0.15
    last = {i: frames_of(run(arkit(intensity=i), probs))[-1] for i in (0.5, 1.0, 2.0)}
    assert last[1.0][JAW] == pytest.approx(0.45, abs=0.001)
    assert last[0.5][JAW] == pytest.approx(0.225, abs=0.001)
    assert last[2.0][JAW] == pytest.approx(0.9, abs=0.001)
    for i in (0.5, 2.0):
        assert last[i][col("mouthStretchLeft")] == last[1.0][col("mouthStretchLeft")]
    wide = frames_of(run(arkit(intensity=2.0), one_hot([2] * 60, strength=1.0)))
    assert wide[:, JAW].max() == 1.0  # 0.7 x 2 clipped


# --- frame counts and chunking ------------------------------------------------


@pytest.mark.parametrize("fps", [30, 60])
@pytest.mark.parametrize("rows", [0, 1, 2, 3, 4, 5, 7, 10, 33, 99, 100, 101, 257])
def test_frame_count_is_every_frame_before_the_end(fps: int, rows: int) -> None:
    # frames at i / fps s for i / fps < rows * 10 ms: ceil(rows * 10 * fps / 1000)
    probs = speech_like(np.random.default_rng(rows), rows)
    expected = math.ceil(rows * 10 * fps / 1000)
    assert len(frames_of(run(arkit(fps=fps), probs), fps)) == expected
    track = LipsyncTrack(arkit(fps=fps))
    for row in probs:
        track.push(row[None], [])
    assert track.frames_emitted <= expected
    track.flush([])
    assert track.frames_emitted == expected
    if rows == 100:
        assert expected == fps  # one second


@pytest.mark.parametrize(
    "config",
    [
        LipsyncConfig(),
        LipsyncConfig(format="oculus"),
        LipsyncConfig(format="oculus", min_hold_ms=0, smoothing=0.0),
        LipsyncConfig(format="sapi", min_hold_ms=80, smoothing=0.5),
        arkit(),
        arkit(fps=30),
        arkit(smoothing=0.0),
        arkit(fps=30, smoothing=1.0, intensity=1.7),
        arkit(smoothing=0.35, intensity=0.4),
    ],
    ids=repr,
)
def test_chunked_equals_whole(config: LipsyncConfig) -> None:
    rng = np.random.default_rng(7)
    for trial in range(4):
        probs = speech_like(rng, int(rng.integers(50, 400)))
        whole = run(config, probs)
        chunked = run(config, probs, random_splits(rng, len(probs)))
        if config.format == "arkit":
            whole_frames = frames_of(whole, config.fps)
            assert np.array_equal(frames_of(chunked, config.fps), whole_frames), trial
            assert len(whole_frames) == math.ceil(len(probs) * config.fps / 100)
        else:
            assert chunked == whole, trial
            assert len(whole) >= 3


def test_arkit_is_emitted_as_the_audio_arrives() -> None:
    config = arkit()
    assert config.lead_ms == 31  # the default filter's mean delay
    track = LipsyncTrack(config)
    probs = speech_like(np.random.default_rng(3), 100)
    times = 1000 * np.arange(60) / 60
    for end in range(10, 101, 10):  # 100 ms chunks
        track.push(probs[end - 10 : end], [])
        # a frame at t shows the rows around t + lead: it is out within lead + 15 ms,
        # and never before the audio it shows has arrived
        latest = end * 10 - config.lead_ms
        assert track.frames_emitted >= np.count_nonzero(times <= latest - 15)
        assert track.frames_emitted <= np.count_nonzero(times <= latest - 5)
    track.flush([])
    assert track.frames_emitted == 60


# --- sapi and oculus ----------------------------------------------------------


def test_default_is_todays_output_byte_for_byte() -> None:
    config = LipsyncConfig()
    assert config.format == "sapi"
    assert config.smoothing_config() == SmoothingConfig(min_frames=3, margin=0.1)
    assert config.smoothing_config() == SmoothingConfig()
    assert LipsyncConfig.from_json(None) == LipsyncConfig.from_json({}) == config
    probs = speech_like(np.random.default_rng(4), 500)
    smoother = Smoother(SmoothingConfig(min_frames=3, margin=0.1))
    today = [e.as_json() for e in smoother.push(probs) + smoother.flush()]
    assert len(today) > 10
    assert json.dumps(run(config, probs)) == json.dumps(today)


def test_min_hold_and_smoothing_mapping() -> None:
    def cfg(ms: int, smoothing: float = 0.1) -> SmoothingConfig:
        return LipsyncConfig(min_hold_ms=ms, smoothing=smoothing).smoothing_config()

    assert cfg(0).min_frames == 1
    assert cfg(9).min_frames == 1
    assert cfg(25).min_frames == 2  # floor, as VISEME_GATEWAY_VISEME_MIN_MS
    assert cfg(400).min_frames == 40
    assert cfg(30, 0.0).margin == 0.0
    assert cfg(30, 0.37).margin == 0.37
    assert cfg(30, 1.0).margin == 0.99
    assert cfg(0).instant == frozenset({21})  # p/b/m still shown at once
    # min_hold_ms 0 shows a one-frame viseme
    probs = one_hot([0] * 5 + [7] + [0] * 5)
    assert sapi_ids(run(LipsyncConfig(min_hold_ms=0), probs)) == [0, 7, 0]
    assert sapi_ids(run(LipsyncConfig(), probs)) == [0]


def test_oculus_names_and_merges_neighbours() -> None:
    track = LipsyncTrack(LipsyncConfig(format="oculus"))
    empty = np.zeros((0, 22), np.float32)
    events = [VisemeEvent(0, 0), VisemeEvent(1, 40), VisemeEvent(2, 90), VisemeEvent(21, 150)]
    assert track.push(empty, events) == [
        {"viseme": "sil", "offset": 0},
        {"viseme": "aa", "offset": 40},  # 1 and 2 are both aa: one entry, at the first
        {"viseme": "PP", "offset": 150},
    ]
    # across pushes too: 21 was the last shown
    assert track.push(empty, [VisemeEvent(21, 300)]) == []
    assert track.push(empty, [VisemeEvent(3, 320), VisemeEvent(8, 400)]) == [
        {"viseme": "oh", "offset": 320}
    ]
    assert track.flush([VisemeEvent(12, 500), VisemeEvent(4, 560)]) == [
        {"viseme": "E", "offset": 500}
    ]


def test_oculus_is_the_sapi_stream_renamed() -> None:
    # speech, then neighbours that share an Oculus name: 1 2 9 (aa), 3 8 (oh)
    merging = one_hot([0] * 8 + [1] * 8 + [2] * 8 + [9] * 8 + [0] * 8 + [3] * 8 + [8] * 8)
    probs = np.concatenate([speech_like(np.random.default_rng(5), 600), merging])
    sapi = run(LipsyncConfig(), probs)
    oculus = run(LipsyncConfig(format="oculus"), probs)
    expected: list[dict[str, object]] = []
    for entry in cast(list[SapiEntry], sapi):
        name = SAPI_TO_OCULUS_NAME[entry["visemeId"]]
        if not expected or expected[-1]["viseme"] != name:
            expected.append({"viseme": name, "offset": entry["offset"]})
    assert oculus == expected
    assert len(oculus) <= len(sapi) - 3  # the neighbours did merge


# --- config and wire shapes ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "mp3"),
        ("format", None),
        ("fps", 24),
        ("fps", 60.0),
        ("fps", True),
        ("min_hold_ms", -1),
        ("min_hold_ms", 401),
        ("min_hold_ms", 30.5),
        ("min_hold_ms", False),
        ("smoothing", 1.01),
        ("smoothing", -0.1),
        ("smoothing", float("nan")),
        ("smoothing", "0.1"),
        ("intensity", 2.5),
        ("intensity", True),
    ],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^lipsync\.{field}: "):
        LipsyncConfig(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"^lipsync\.{field}: "):
        LipsyncConfig.from_json({"format": "arkit", field: value})


def test_from_json() -> None:
    config = LipsyncConfig.from_json({"format": "arkit", "fps": 30, "smoothing": 0, "intensity": 2})
    assert config == LipsyncConfig("arkit", 30, 30, 0.0, 2.0)
    assert isinstance(config.smoothing, float)
    with pytest.raises(ValueError, match=r"^lipsync\.speed: unknown field"):
        LipsyncConfig.from_json({"speed": 2})
    with pytest.raises(ValueError, match=r"^lipsync: must be an object"):
        LipsyncConfig.from_json(["arkit"])
    assert set(FORMATS) == {"sapi", "oculus", "arkit"}


def test_wire_shapes_and_rebase() -> None:
    entries = run(arkit(), one_hot([0] * 10 + [2] * 40))
    block = cast(BlendshapeBlock, entries[-1])
    message = blendshapes_message(block, start_ms=block["offset"])
    assert list(message) == ["blendshapes"]
    inner = message["blendshapes"]
    assert list(inner) == ["fps", "offset", "names", "frames"]
    assert inner["fps"] == 60
    assert inner["offset"] == 0
    assert inner["names"] == list(ARKIT_NAMES)
    json.dumps(message)  # plain JSON types
    assert all(isinstance(w, float) for frame in inner["frames"] for w in frame)
    assert all(w == round(w, 3) for frame in inner["frames"] for w in frame)
    events = run(LipsyncConfig(), one_hot([0] * 10 + [2] * 40))
    assert rebase(events, 100) == [
        {"visemeId": 0, "offset": -100},
        {"visemeId": 2, "offset": 0},
    ]
    assert events[1]["offset"] == 100  # rebase copies


def test_track_lifecycle() -> None:
    track = LipsyncTrack(arkit())
    with pytest.raises(ValueError, match="probs"):
        track.push(np.zeros((3, 15), np.float32), [])
    assert track.push(np.zeros((0, 22), np.float32), []) == []
    assert track.flush([]) == []  # no audio, no frames
    with pytest.raises(RuntimeError, match="flushed"):
        track.push(one_hot([0]), [])
    with pytest.raises(RuntimeError, match="flushed"):
        track.flush([])
