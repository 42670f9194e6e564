"""Text-informed evaluation: acoustic-only beside transcript-guided decoding.

`python -m viseme_engine.eval --text ...` prints this table. Per set, one model
run per utterance gives its frame probabilities; they are then decoded
  acoustic   argmax of the model's probabilities (the plain eval's predictor)
  text       the whole transcript known up front (POST /v1/visemes with `text`)
  text-10%   a transcript with 10% of its words deleted or substituted
  text-wrong another utterance's transcript (the decoder must fall back)
  early/late the transcript arriving word by word, 300 ms before or after each
             word is spoken (a relay's transcript deltas), fed in 100 ms chunks
  chunk      each word arriving with the 100 ms chunk its audio starts in, as
             ElevenLabs sends characters with their audio, its timings unused
  timed      the same with the word onsets as timing priors (text_timing.py),
             each off by a random 30 ms (standard deviation)
  timed+-300 onsets 300 ms early or late (words revealed by them too): the
             prior must not cost accuracy when the provider's clock is off
  utterance  the whole recording force-aligned to its transcript
             (text_utterance.py: POST /v1/visemes with `text`), the forced
             aligner's path (forced_align.py) competing where the language has one
  utt-model  the same with the model's own path only (no forced aligner)
  utt-10%    `utterance` with the corrupted transcript
  utt-wrong  `utterance` with another utterance's transcript (it must fall back)
Word times for early/late are estimated from the labels: the speech span
spread over the words by their length in characters. Onsets for chunk and
timed come from the labels too, more closely: the text's visemes matched to
the labelled segments (`label_onsets`). Each cell is acc15 speech; text's
bilabial recall and precision follow, then the baseline.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .eval import Counts, EvalSet, Predictor, fit_length, load_sets, render
from .forced_align import FORCED_LANGUAGES, AlignerPool
from .phonemes import SILENCE
from .stream import softmax
from .text_align import TextAligner, expected_visemes
from .text_utterance import align_recording

# Float32 16 kHz audio -> per-frame class probabilities [frames, 22]
ProbPredictor = Callable[[np.ndarray], np.ndarray]
CONDITIONS = (
    "acoustic", "text", "text-10%", "text-wrong", "early", "late", "chunk", "timed",
    "timed-300", "timed+300", "utterance", "utt-model", "utt-10%", "utt-wrong",
)  # fmt: skip
_CHUNK = 10  # frames of 10 ms per streamed piece
_FILLERS = ("the", "and", "uh", "well", "so", "then", "very", "of")


def prob_predictor(path: str, threads: int) -> ProbPredictor:
    from .onnx_model import OnnxVisemeModel

    model = OnnxVisemeModel.from_path(path, threads=threads)
    return lambda audio: softmax(model.predict_logits(np.asarray(audio, np.float32)))


def corrupt(text: str, rng: random.Random, share: float = 0.1) -> str:
    """Delete or substitute `share` of the words (at least one)."""
    words = text.split()
    if not words:
        return text
    for i in sorted(rng.sample(range(len(words)), max(1, round(share * len(words)))))[::-1]:
        if rng.random() < 0.5:
            del words[i]
        else:
            words[i] = rng.choice(_FILLERS)
    return " ".join(words)


def word_times(text: str, labels: np.ndarray) -> list[tuple[float, str]]:
    """(estimated start s, word) for each word: the speech span shared by characters."""
    speech = np.flatnonzero(labels != SILENCE)
    words = list(re.finditer(r"\S+", text))
    if not words or speech.size == 0:
        return []
    start, end = speech[0] * 0.01, (speech[-1] + 1) * 0.01
    total = max(len(text), 1)
    return [(start + (end - start) * m.start() / total, m.group()) for m in words]


def decode_streamed(
    probs: np.ndarray, lang: str, timed: Sequence[tuple[float, str]], shift_s: float
) -> np.ndarray:
    """Words revealed at their time + shift_s, audio decoded in 100 ms chunks."""
    aligner = TextAligner(lang)
    out = np.empty(len(probs), np.int64)
    k = 0
    for start in range(0, len(probs), _CHUNK):
        now = (start + _CHUNK) * 0.01
        words = []
        while k < len(timed) and timed[k][0] + shift_s <= now:
            words.append(timed[k][1])
            k += 1
        if words:
            # words complete; the transcript too once its last word is in
            aligner.add_text(" ".join(words) + " ", final=k == len(timed))
        out[start : start + _CHUNK] = aligner.step(probs[start : start + _CHUNK]).argmax(-1)
    return out


def label_onsets(words: Sequence[Sequence[int]], labels: np.ndarray) -> list[float | None]:
    """Per word, the frame its visemes start at in the labels: the text's viseme
    sequence matched to the labels' segments by edit distance; a word none of
    whose visemes matched gets None."""
    change = np.flatnonzero(np.diff(labels, prepend=-1))
    segs = [(int(labels[i]), int(i)) for i in change if labels[i] != SILENCE]
    flat = [(v, w) for w, word in enumerate(words) for v in word]
    n, m = len(flat), len(segs)
    cost = np.zeros((n + 1, m + 1), np.int64)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = cost[i - 1, j - 1] + (flat[i - 1][0] != segs[j - 1][0])
            cost[i, j] = min(sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    onsets: list[float | None] = [None] * len(words)
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (flat[i - 1][0] != segs[j - 1][0]):
            onsets[flat[i - 1][1]] = float(segs[j - 1][1])  # ends at the word's first
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return onsets


def decode_chunked(
    probs: np.ndarray,
    lang: str,
    words: Sequence[Sequence[int]],
    onsets: Sequence[float | None],
    timed: bool,
) -> np.ndarray:
    """Words revealed with the 100 ms chunk their onset falls in (a word without
    one comes with the word before it), onsets passed as priors if `timed`."""
    aligner = TextAligner(lang)
    out = np.empty(len(probs), np.int64)
    k = 0
    for start in range(0, len(probs), _CHUNK):
        first = k
        while k < len(words):
            onset = onsets[k]
            if onset is not None and onset >= start + _CHUNK:
                break  # a later chunk's word
            k += 1
        if k > first:
            given = list(onsets[first:k]) if timed else None
            aligner.add_visemes(words[first:k], final=k == len(words), onsets=given)
        out[start : start + _CHUNK] = aligner.step(probs[start : start + _CHUNK]).argmax(-1)
    return out


def _shifted(
    onsets: Sequence[float | None], frames: float, rng: random.Random, sd: float
) -> list[float | None]:
    return [None if o is None else max(o + frames + rng.gauss(0.0, sd), 0.0) for o in onsets]


def decode_text(probs: np.ndarray, lang: str, text: str) -> np.ndarray:
    aligner = TextAligner(lang)
    aligner.add_visemes(expected_visemes(text, lang), final=True)
    return np.asarray(aligner.step(probs).argmax(-1), np.int64)


def decode_utterance(
    probs: np.ndarray, lang: str, text: str, audio: np.ndarray | None = None
) -> np.ndarray:
    """`align_recording`, with the forced aligner's path when `audio` is given and
    the language has one (as the engine decodes)."""
    forced = None
    if audio is not None and lang in FORCED_LANGUAGES:
        forced = _aligners().path(audio, text)
    aligned = align_recording(probs, expected_visemes(text, lang), lang, forced)
    return np.asarray(aligned.argmax(-1), np.int64)


@functools.cache
def _aligners() -> AlignerPool:
    return AlignerPool(1)  # the evaluation runs in one thread


def evaluate(
    s: EvalSet, texts: Sequence[str], model: ProbPredictor, baseline: Predictor | None
) -> dict[str, Counts]:
    counts = {c: Counts() for c in CONDITIONS}
    others = list(texts[1:]) + list(texts[:1])  # each utterance's "wrong" transcript
    if baseline is not None:
        counts["baseline"] = Counts()
    for i, (path, text, other) in enumerate(zip(s.paths, texts, others, strict=True)):
        with np.load(path) as z:
            audio = z["audio"].astype(np.float32) / 32768.0
            ref = z["labels"].astype(np.int64)
        probs = model(audio).astype(np.float32)
        probs = probs[: len(ref)]
        rng = random.Random(f"{path.name}:{i}")  # noqa: S311  (a fixed corruption per utterance)
        timed = word_times(text, ref)
        corrupted = corrupt(text, rng)
        words = expected_visemes(text, s.lang)
        onsets = label_onsets(words, ref)
        preds = {
            "acoustic": probs.argmax(-1),
            "text": decode_text(probs, s.lang, text),
            "text-10%": decode_text(probs, s.lang, corrupted),
            "text-wrong": decode_text(probs, s.lang, other),
            "early": decode_streamed(probs, s.lang, timed, -0.3),
            "late": decode_streamed(probs, s.lang, timed, 0.3),
            "chunk": decode_chunked(probs, s.lang, words, onsets, False),
            "timed": decode_chunked(probs, s.lang, words, _shifted(onsets, 0, rng, 3.0), True),
            "timed-300": decode_chunked(
                probs, s.lang, words, _shifted(onsets, -30, rng, 3.0), True
            ),
            "timed+300": decode_chunked(probs, s.lang, words, _shifted(onsets, 30, rng, 3.0), True),
            "utterance": decode_utterance(probs, s.lang, text, audio),
            "utt-model": decode_utterance(probs, s.lang, text),
            "utt-10%": decode_utterance(probs, s.lang, corrupted, audio),
            "utt-wrong": decode_utterance(probs, s.lang, other, audio),
        }
        if baseline is not None:
            preds["baseline"] = baseline(audio)
        for name, pred in preds.items():
            counts[name].add(ref, fit_length(pred, len(ref)))
    return counts


def table(rows: Sequence[tuple[str, int, dict[str, Counts]]], markdown: bool) -> str:
    head = ["set", "utts", *CONDITIONS, "text bilab rec", "text bilab prec", "utt bilab rec",
            "utt bilab prec", "baseline"]  # fmt: skip
    lines = []
    for name, n, counts in rows:
        m = {k: c.metrics() for k, c in counts.items()}
        cells = [name, str(n)] + [f"{100 * m[c]['acc15_speech']:.1f}" for c in CONDITIONS]
        for c in ("text", "utterance"):
            cells += [f"{100 * m[c]['bilabial_recall']:.1f}",
                      f"{100 * m[c]['bilabial_precision']:.1f}"]  # fmt: skip
        cells.append(f"{100 * m['baseline']['acc15_speech']:.1f}" if "baseline" in m else "-")
        lines.append(cells)
    return render(head, lines, markdown)


def run(
    data_dirs: Sequence[Path],
    models: dict[str, ProbPredictor],
    max_utts: int,
    baseline: Predictor | None,
) -> list[tuple[str, int, dict[str, Counts]]]:
    """Every set of every data dir whose language has a model."""
    rows = []
    for d in data_dirs:
        manifest = [json.loads(ln) for ln in (d / "manifest.jsonl").read_text().splitlines() if ln]
        text = {d / r["path"]: str(r["text"]) for r in manifest}
        for s in load_sets(d, max_utts):
            model = models.get(s.lang) or models.get("*")
            if model is not None:
                texts = [text[p] for p in s.paths]
                rows.append((s.name, len(s.paths), evaluate(s, texts, model, baseline)))
    return rows
