"""Evaluation metrics on hand-checked frames, the eval command, and the baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from viseme_engine import eval as ev
from viseme_engine import phone_errors
from viseme_engine.training import synth_flite
from viseme_engine.training.baseline import PhoneLoopBaseline
from viseme_engine.training.datagen import to_example

# frame:  0  1   2   3   4  5  6  7  8  9
REF = np.array([0, 0, 21, 21, 21, 1, 1, 1, 0, 0])
PRED = np.array([0, 21, 21, 21, 2, 2, 2, 2, 0, 0])


def test_metrics_on_hand_checked_frames() -> None:
    c = ev.Counts()
    c.add(REF, PRED)
    m = c.metrics()
    # speech frames 2-7: only 2 and 3 match exactly
    assert m["acc22_speech"] == pytest.approx(2 / 6)
    # all frames: 0, 2, 3, 8, 9 match
    assert m["acc22_all"] == pytest.approx(5 / 10)
    # visemes 1 and 2 (ae, aa) are both Oculus "aa": frames 5-7 now count, 4 (PP vs aa) does not
    assert m["acc15_speech"] == pytest.approx(5 / 6)
    # one p/b/m segment, and a predicted 21 overlaps it
    assert m["bilabial_recall"] == 1.0
    # reference onsets: 21@2, 1@5, 0@8; predicted: 21@1, 2@4, 0@8
    # 21 matched 10 ms early, 0 matched exactly, 1 never predicted
    assert m["onset_ms"] == pytest.approx(5.0)
    assert m["onset_hit"] == pytest.approx(2 / 3)


def test_bilabial_tolerance_is_30_ms() -> None:
    ref = np.array([2] * 10 + [21] * 5 + [2] * 10)
    near = ref.copy()
    near[10:15] = 2
    near[17] = 21  # 30 ms after the segment ends: a hit
    far = ref.copy()
    far[10:15] = 2
    far[18] = 21  # 40 ms after: a miss
    for pred, want in ((near, 1.0), (far, 0.0)):
        c = ev.Counts()
        c.add(ref, pred)
        assert c.metrics()["bilabial_recall"] == want


def test_prediction_length_is_fitted() -> None:
    assert ev.fit_length(np.array([5, 6, 7]), 5).tolist() == [5, 6, 7, 0, 0]
    assert ev.fit_length(np.array([5, 6, 7]), 2).tolist() == [5, 6]


def _write_set(root: Path) -> None:
    rows = []
    for i, (split, synth, voice) in enumerate(
        [("heldout_sentences", "flite", "awb"), ("heldout_voices", "flite", "rms"),
         ("heldout_voices", "espeak", "en-us+f5"), ("heldout_voices", "espeak", "en+f5"),
         ("train", "flite", "awb")]
    ):  # fmt: skip
        (root / split).mkdir(parents=True, exist_ok=True)
        path = f"{split}/u{i}.npz"
        np.savez(root / path, audio=np.zeros(len(REF) * 160, np.int16), labels=REF.astype(np.uint8))
        rows.append({"id": f"u{i}", "path": path, "lang": "en", "synth": synth, "voice": voice,
                     "split": split, "text": "x", "seconds": 0.1})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_run_groups_sets_and_prints_tables(tmp_path: Path) -> None:
    _write_set(tmp_path)
    results = ev.run([tmp_path], {"en": lambda a: PRED}, max_utts=10, baseline=lambda a: REF)
    names = [r[0] for r in results]
    assert names == ["en heldout_sentences", "en heldout_voices espeak +f5",
                     "en heldout_voices flite rms", "en heldout_voices all"]  # fmt: skip
    assert [r[1] for r in results] == [1, 2, 1, 3]
    assert results[3][3]["acc22_speech"] == pytest.approx(2 / 6)  # pooled: same frames x3
    model, base = results[1][3], results[1][4]
    assert model["acc22_speech"] == pytest.approx(2 / 6)
    assert base is not None
    assert base["acc22_speech"] == 1.0
    md = ev.table(results, markdown=True).splitlines()
    assert len(md) == 6
    assert md[1].startswith("|---|")
    assert "| en heldout_voices flite rms | 1 | 0.0 | 33.3 / 100.0 |" in md[4]


def test_baseline_recognises_a_short_clip() -> None:
    syn = synth_flite.synth("awb", text="Maybe my baby bought a map.")
    ex = to_example(syn, "arpabet")
    pred = PhoneLoopBaseline()(ex["audio"].astype(np.float32) / 32768.0)
    assert len(pred) == len(ex["labels"])
    c = ev.Counts()
    c.add(ex["labels"].astype(np.int64), pred)
    m = c.metrics()
    # a phone recognizer on clean synthetic speech: far above chance (1/21)
    assert m["acc22_speech"] > 0.3
    assert m["bilabial_recall"] >= 0.5


def test_phone_errors_count_wrong_speech_frames_per_phone() -> None:
    # 10 ms frames: pau m m a a a n n pau (phone ends in seconds)
    phones = ["pau", "m", "a", "n", "pau"]
    ends = np.array([0.01, 0.03, 0.06, 0.08, 0.09])
    ref = np.array([0, 21, 21, 2, 2, 2, 19, 19, 0])
    pred = np.array([21, 21, 21, 2, 1, 2, 21, 21, 0])  # the silence error does not count
    errs = phone_errors.PhoneErrors()
    errs.add(phones, ends, ref, pred)
    assert errs.speech == 7
    rows = errs.rows(top=5)
    assert [r[0] for r in rows] == ["n", "a"]  # costliest first; m has no errors
    _, frames, share, cost, confusions = rows[0]
    assert (frames, share) == (2, 1.0)
    assert cost == pytest.approx(100 * 2 / 7)
    assert confusions == [(21, 2)]
    assert rows[1][4] == [(1, 1)]


def test_phone_errors_command_on_a_generated_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_set(tmp_path)
    for npz in tmp_path.glob("*/*.npz"):  # one phone ("x") over the whole clip
        with np.load(npz) as z:
            arrays = dict(z)
        np.savez(npz, **arrays, phones=np.array(["x"]), phone_ends=np.array([9.0], np.float32))
    model = str(Path(ev.__file__).parent / "models" / "default.onnx")
    args = ["--data", str(tmp_path), "--model", model]
    assert phone_errors.main([*args, "--set", "heldout_voices"]) == 2  # matches three sets
    assert phone_errors.main([*args, "--set", "flite rms"]) == 0
    out = capsys.readouterr().out.splitlines()
    speech = int(np.count_nonzero(REF))
    assert out[0] == f"en heldout_voices flite rms: 1 utterances, {speech} speech frames"
    # silent audio: every speech frame is wrong, and all of them belong to "x"
    assert out[1].split()[:4] == ["x", str(speech), "frames", "100%"]


def test_bilabial_precision_and_silence_on_hand_checked_frames() -> None:
    #          0  1  2   3   4  5  6   7  8  9 10 11
    ref = np.array([0, 0, 1, 21, 21, 1, 1, 1, 1, 1, 0, 0])
    pred = np.array([0, 1, 1, 1, 21, 1, 1, 1, 21, 1, 1, 0])
    c = ev.Counts()
    c.add(ref, pred)
    m = c.metrics()
    # predicted closures at 4 (on a labelled one) and 8 (40 ms after it ends at 5): 1 of 2
    assert m["bilabial_precision"] == pytest.approx(1 / 2)
    assert m["bilabial_recall"] == 1.0
    # silence frames 0, 1, 10, 11: 0 and 11 shown as silence
    assert m["silence"] == pytest.approx(2 / 4)


def test_best_shift_is_chosen_within_the_bound(tmp_path: Path) -> None:
    _write_set(tmp_path)  # every utterance is labelled REF
    late = np.concatenate([[0, 0], REF[:-2]])  # a perfect timeline, 20 ms late
    for bound, shift, acc in ((2, -20.0, 1.0), (1, -10.0, None), (0, 0.0, None)):
        results = ev.run([tmp_path], {"en": lambda a: late}, 10, None, max_shift=bound)
        first = results[0][3]
        assert first["shift_ms"] == shift
        if acc is not None:
            assert first["acc15_speech"] == acc
        else:
            assert first["acc15_speech"] < 1.0
    assert ev.shifted(np.array([1, 2, 3]), 1).tolist() == [0, 1, 2]
    assert ev.shifted(np.array([1, 2, 3]), -1).tolist() == [2, 3, 0]


def test_text_table_has_every_condition(tmp_path: Path) -> None:
    from viseme_engine import eval_text

    _write_set(tmp_path)

    def probs(audio: np.ndarray) -> np.ndarray:
        return np.asarray(np.eye(22, dtype=np.float32)[REF] * 0.9 + 0.1 / 22)

    rows = eval_text.run([tmp_path], {"en": probs}, 10, baseline=lambda a: REF)
    assert [r[0] for r in rows][:2] == ["en heldout_sentences", "en heldout_voices espeak +f5"]
    for _, _, counts in rows:
        assert set(counts) == {*eval_text.CONDITIONS, "baseline"}
        for c in counts.values():  # sure audio: no transcript (here "x") changes it
            assert c.metrics()["acc22_all"] == 1.0
    text = eval_text.table(rows, markdown=True)
    assert text.splitlines()[0].startswith("| set | utts | acoustic | text | text-10% |")
