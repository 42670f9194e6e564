"""Forced alignment and the real-speech data sets, on speech with known phone timings.

flite speaks a sentence and reports its own phone timings; pocketsphinx
aligns the same words to that audio. The two must agree on the phones and,
within a frame or two, on where they are.
"""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from viseme_engine import eval as ev
from viseme_engine import forced_align as align
from viseme_engine.labels import RATE
from viseme_engine.phonemes import phone_viseme
from viseme_engine.training import realspeech, synth_flite

TEXT = "Bob may pay my mom a penny for the big blue map."


@pytest.fixture(scope="module")
def aligner() -> align.ForcedAligner:
    return align.ForcedAligner()


def _flite(text: str, voice: str = "slt") -> tuple[np.ndarray, list[str], list[float]]:
    syn = synth_flite.synth(voice, text=text)
    audio = soxr.resample(syn.audio.astype(np.float32) / 32768.0, syn.rate, RATE)
    return audio.astype(np.float32), syn.phones, syn.ends


def _starts(phones: list[str], ends: list[float]) -> list[tuple[str, float]]:
    out, prev = [], 0.0
    for p, e in zip(phones, ends, strict=True):
        if p not in ("sil", "pau"):
            out.append((p, prev))
        prev = e
    return out


def test_alignment_finds_the_phones_where_flite_put_them(aligner: align.ForcedAligner) -> None:
    audio, phones, ends = _flite(TEXT)
    result = aligner.align(audio, align.words_of(TEXT))
    assert result is not None
    assert [w for w, _, _ in result.words] == align.words_of(TEXT)
    ref, got = _starts(phones, ends), _starts(result.phones, result.ends)
    # cmudict and flite's lexicon agree on these words, mouth shape for mouth shape
    assert len(got) == len(ref)
    same = [phone_viseme("arpabet", a) == phone_viseme("arpabet", b)
            for (a, _), (b, _) in zip(ref, got, strict=True)]  # fmt: skip
    assert np.mean(same) >= 0.9, (ref, got)
    errors = np.abs([a - b for (_, a), (_, b) in zip(ref, got, strict=True)])
    assert np.median(errors) <= 0.020, errors
    assert result.ends == sorted(result.ends)


def test_out_of_vocabulary_words_are_spelt_by_letter_to_sound(
    aligner: align.ForcedAligner,
) -> None:
    assert align.t2p("blorptastic")  # not in cmudict
    audio, _, _ = _flite("The blorptastic map.")
    result = aligner.align(audio, align.words_of("The blorptastic map."))
    assert result is not None
    assert [w for w, _, _ in result.words] == ["the", "blorptastic", "map"]


def test_given_pronunciations_align_indonesian(aligner: align.ForcedAligner) -> None:
    words = align.words_of("Saya makan nasi goreng di rumah.")
    prons = realspeech.indonesian_pronunciations(words)
    assert prons["makan"] == ["M", "AA", "K", "AA", "N"]
    phones = synth_flite.indonesian_phone_string(synth_flite.espeak_id_words(" ".join(words)))
    syn = synth_flite.synth("awb", phones=phones, stretch=0.7)
    audio = soxr.resample(syn.audio.astype(np.float32) / 32768.0, syn.rate, RATE)
    result = aligner.align(audio.astype(np.float32), words, prons)
    assert result is not None
    assert [w for w, _, _ in result.words] == words


def test_words_of_keeps_apostrophes_and_drops_punctuation() -> None:
    assert align.words_of("Don\u2019t stop -- it's 5 o'clock!") == [
        "don't", "stop", "it's", "5", "o'clock"
    ]  # fmt: skip


def test_textgrid_phones_merge_pauses(tmp_path: Path) -> None:
    intervals = [(0.0, 0.1, ""), (0.1, 0.2, "HH"), (0.2, 0.35, "AH0"), (0.35, 0.4, "sp"),
                 (0.4, 0.5, ""), (0.5, 0.7, "spn")]  # fmt: skip
    body = "".join(
        f"            intervals [{i}]:\n                xmin = {a}\n                xmax = {b}\n"
        f'                text = "{t}"\n'
        for i, (a, b, t) in enumerate(intervals, 1)
    )
    (tmp_path / "x.TextGrid").write_text(
        'item [1]:\n    name = "words"\n            intervals [1]:\n                xmin = 0\n'
        '                xmax = 0.7\n                text = "hi"\n'
        f'item [2]:\n    name = "phones"\n{body}'
    )
    phones, ends = realspeech.read_textgrid_phones(tmp_path / "x.TextGrid")
    assert phones == ["sil", "hh", "ah0", "sil", "spn"]
    assert ends == [0.1, 0.2, 0.35, 0.5, 0.7]


def _transcribed_corpus(root: Path) -> None:
    """clips/*.wav + transcripts.tsv, as synth_kokoro.py writes them (flite speaking)."""
    (root / "clips").mkdir(parents=True)
    rows = []
    for i, (voice, split, text) in enumerate(
        [("slt", "train", TEXT), ("awb", "train", "Pick up the big blue box."),
         ("kal16", "heldout_real", "My mom made a map of the moon.")]
    ):  # fmt: skip
        syn = synth_flite.synth(voice, text=text)
        with wave.open(str(root / "clips" / f"{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(syn.rate)
            w.writeframes(syn.audio.astype("<i2").tobytes())
        rows.append({"file": f"{i}.wav", "voice": voice, "split": split, "speed": "1.0",
                     "sentence": text})  # fmt: skip
    with open(root / "transcripts.tsv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_transcribed_corpus_to_labelled_data_and_eval(tmp_path: Path) -> None:
    _transcribed_corpus(tmp_path / "corpus")
    out = tmp_path / "data"
    rc = realspeech.main(["--lang", "en", "--out", str(out), "--transcribed",
                          str(tmp_path / "corpus"), "--corpus", "kokoro"])  # fmt: skip
    assert rc == 0
    rows = [json.loads(ln) for ln in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["split"], r["voice"], r["synth"]) for r in rows] == [
        ("train", "slt", "kokoro"), ("train", "awb", "kokoro"), ("heldout_real", "kal16", "kokoro")
    ]  # fmt: skip
    with np.load(out / rows[2]["path"]) as z:
        labels, audio = z["labels"], z["audio"]
        assert len(labels) == -(-len(audio) // 160)
        assert {0, 21} <= set(labels.tolist())  # pauses and closed lips (my mom made a map)
    sets = ev.load_sets(out, 10)
    assert [s.name for s in sets] == ["en heldout_real kokoro"]  # no heldout_sentences here
    results = ev.run([out], {"en": lambda a: np.zeros(-(-len(a) // 160), np.int64)}, 10, None)
    by_name = {r[0]: r[3] for r in results}
    assert by_name["en heldout_real kokoro"]["silence"] == 1.0  # all-silence predictor
    assert by_name["en heldout_real kokoro"]["acc22_speech"] == 0.0


def test_other_languages_are_pronounced_through_espeak_mnemonics() -> None:
    prons = align.espeak_pronunciations(["hola", "señor", "mamá"], "es")
    assert prons["hola"] == ["OW", "L", "AA"]
    assert prons["señor"] == ["S", "EY", "N", "Y", "OW", "R"]
    assert prons["mamá"] == ["M", "AA", "M", "AA"]
    assert align.foreign_arpabet("'A:") == ["aa"]  # stress and length marks go
    assert align.foreign_arpabet("y") == ["uw"]  # a rounded front vowel: rounded lips
    assert align.foreign_arpabet("&U~") == ["aw"]  # Portuguese nasal diphthong
    assert align.foreign_arpabet("?") == []  # nothing fits: left out
