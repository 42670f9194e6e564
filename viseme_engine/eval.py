"""Evaluate viseme models on the held-out splits of generated data sets.

    python -m viseme_engine.eval --data data/en data/id \\
        --model en=viseme_engine/models/en.onnx --model id=viseme_engine/models/id.onnx \\
        [--max-utts 60] [--no-baseline] [--markdown]

Sets: per language, `heldout_sentences` (training voices, unseen sentences),
`heldout_voices` split by voice (voices no training data came from) and
`heldout_real` split by corpus (real recordings of speakers never trained on;
realspeech.py), each capped at --max-utts utterances (the first ones in
manifest order). Several data dirs of one language add their sets side by side.

Metrics, all on 10 ms frames with the labels of the data set as reference:
  acc22 speech   22-class accuracy over frames labelled as speech (label != 0)
  acc22 all      22-class accuracy over all frames, silence included
  acc15 speech   accuracy after mapping both sides to the Meta/Oculus 15 visemes
  bilabial rec.  share of labelled p/b/m segments (runs of viseme 21) with a
                 predicted 21 within 30 ms of the segment (on either side)
  bilabial prec. share of predicted p/b/m segments with a labelled 21 within
                 30 ms of them
  silence        share of frames labelled silence that are predicted silence
  onset ms       median |t_pred - t_ref| over labelled viseme onsets (a frame
                 whose label differs from the previous one, silence included)
                 matched to the nearest predicted onset of the SAME viseme
                 within 100 ms; onsets with no such match are left out and
                 counted in `onset hit`, the matched share
Every set also runs the pocketsphinx phone-loop baseline (Rhubarb's phonetic
recognizer) on the same audio. With --max-offset-ms, each system is scored at
the constant shift of its predictions (in 10 ms steps, within the bound) that
gives it the best acc15 speech on the set, as independent evaluations do,
since reference conventions differ by 10-20 ms between labelled sets; the
`shift ms` column says which. It only has an English acoustic model; on
Indonesian it plays the role Rhubarb's phonetic mode plays for non-English
dialogue (English phones standing in for the language's sounds).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viseme_engine.phonemes import BILABIAL, SAPI_TO_OCULUS, SILENCE

# Float32 16 kHz mono audio in [-1, 1) -> one SAPI viseme per 10 ms frame.
Predictor = Callable[[np.ndarray], np.ndarray]

BILABIAL_TOL = 3  # frames: 30 ms
REAL_CORPORA = frozenset({"ljspeech", "commonvoice", "kokoro"})  # realspeech.py's `synth` names
ONSET_WINDOW = 10  # frames: 100 ms
_OCULUS = np.asarray(SAPI_TO_OCULUS, dtype=np.int64)


@dataclass
class Counts:
    """Sufficient statistics, summed over the utterances of a set."""

    frames: int = 0
    correct: int = 0
    speech: int = 0
    speech_correct: int = 0
    speech_correct15: int = 0
    bilabials: int = 0
    bilabial_hits: int = 0
    pred_bilabials: int = 0
    pred_bilabial_hits: int = 0
    silence: int = 0
    silence_correct: int = 0
    onsets: int = 0
    onset_errors_ms: list[float] = field(default_factory=list)
    shift_ms: int | None = 0  # the shift applied to the predictions; None: several

    def add(self, ref: np.ndarray, pred: np.ndarray) -> None:
        pred = fit_length(pred, len(ref))
        ok = ref == pred
        sp = ref != SILENCE
        self.frames += len(ref)
        self.correct += int(ok.sum())
        self.speech += int(sp.sum())
        self.speech_correct += int((ok & sp).sum())
        self.speech_correct15 += int(((_OCULUS[ref] == _OCULUS[pred]) & sp).sum())
        segs = runs(ref, BILABIAL)
        self.bilabials += len(segs)
        self.bilabial_hits += _near(segs, pred)
        pred_segs = runs(pred, BILABIAL)
        self.pred_bilabials += len(pred_segs)
        self.pred_bilabial_hits += _near(pred_segs, ref)
        self.silence += int((~sp).sum())
        self.silence_correct += int((ok & ~sp).sum())
        ref_on, pred_on = onsets(ref), onsets(pred)
        self.onsets += sum(len(f) for f in ref_on.values())
        self.onset_errors_ms += onset_errors_ms(ref_on, pred_on)

    def merged(self, other: Counts) -> Counts:
        """The statistics of both sets together."""
        out = Counts(onset_errors_ms=self.onset_errors_ms + other.onset_errors_ms)
        out.shift_ms = self.shift_ms if self.shift_ms == other.shift_ms else None
        for f in _COUNT_FIELDS:
            setattr(out, f, getattr(self, f) + getattr(other, f))
        return out

    def metrics(self) -> dict[str, float]:
        def ratio(a: int, b: int) -> float:
            return a / b if b else float("nan")

        errs = self.onset_errors_ms
        return {
            "acc22_speech": ratio(self.speech_correct, self.speech),
            "acc22_all": ratio(self.correct, self.frames),
            "acc15_speech": ratio(self.speech_correct15, self.speech),
            "bilabial_recall": ratio(self.bilabial_hits, self.bilabials),
            "bilabial_precision": ratio(self.pred_bilabial_hits, self.pred_bilabials),
            "silence": ratio(self.silence_correct, self.silence),
            "onset_ms": float(np.median(errs)) if errs else float("nan"),
            "onset_hit": ratio(len(errs), self.onsets),
            "shift_ms": float("nan") if self.shift_ms is None else float(self.shift_ms),
        }


_COUNT_FIELDS = ("frames", "correct", "speech", "speech_correct", "speech_correct15",
                 "bilabials", "bilabial_hits", "pred_bilabials", "pred_bilabial_hits",
                 "silence", "silence_correct", "onsets")  # fmt: skip


def _near(segs: list[tuple[int, int]], other: np.ndarray) -> int:
    """How many of `segs` have a bilabial frame of `other` within 30 ms."""
    return sum(
        bool(np.any(other[max(0, s - BILABIAL_TOL) : e + BILABIAL_TOL] == BILABIAL))
        for s, e in segs
    )


def shifted(pred: np.ndarray, frames: int) -> np.ndarray:
    """Predictions moved `frames` later (earlier if negative), silence filling the gap."""
    if frames == 0:
        return pred
    fill = np.full(abs(frames), SILENCE, pred.dtype)
    if frames > 0:
        return np.concatenate([fill, pred[:-frames]])
    return np.concatenate([pred[-frames:], fill])


def fit_length(pred: np.ndarray, n: int) -> np.ndarray:
    """Predictions trimmed or padded with silence to the reference length."""
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)[:n]
    if len(pred) < n:
        pred = np.concatenate([pred, np.full(n - len(pred), SILENCE, np.int64)])
    return pred


def runs(labels: np.ndarray, value: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges where labels == value."""
    hit = np.concatenate([[False], labels == value, [False]])
    edges = np.flatnonzero(np.diff(hit.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def onsets(labels: np.ndarray) -> dict[int, np.ndarray]:
    """viseme -> frames where it starts (frame 0 counts if it is not silence)."""
    labels = np.asarray(labels, dtype=np.int64)
    prev = np.concatenate([[SILENCE], labels[:-1]])
    idx = np.flatnonzero(labels != prev)
    return {int(v): idx[labels[idx] == v] for v in np.unique(labels[idx])}


def onset_errors_ms(ref: dict[int, np.ndarray], pred: dict[int, np.ndarray]) -> list[float]:
    out: list[float] = []
    for v, frames in ref.items():
        cand = pred.get(v)
        if cand is None or len(cand) == 0:
            continue
        for t in frames:
            d = int(np.min(np.abs(cand - t)))
            if d <= ONSET_WINDOW:
                out.append(10.0 * d)
    return out


@dataclass(frozen=True)
class EvalSet:
    name: str
    lang: str
    paths: list[Path]


def load_sets(data_dir: Path, max_utts: int) -> list[EvalSet]:
    rows = [json.loads(ln) for ln in (data_dir / "manifest.jsonl").read_text().splitlines() if ln]
    if not rows:
        return []
    lang = str(rows[0]["lang"])
    sentences = [r for r in rows if r["split"] == "heldout_sentences"]
    corpora = {str(r["synth"]) for r in sentences} & REAL_CORPORA
    name = f"{lang} heldout_sentences" + "".join(f" {c}" for c in sorted(corpora))
    sets = [EvalSet(name, lang, [data_dir / r["path"] for r in sentences])]
    groups: dict[str, list[Path]] = {}
    for r in rows:
        if r["split"] == "heldout_voices":
            groups.setdefault(voice_group(r["synth"], r["voice"]), []).append(data_dir / r["path"])
    sets += [EvalSet(f"{lang} heldout_voices {g}", lang, p) for g, p in sorted(groups.items())]
    real: dict[str, list[Path]] = {}
    for r in rows:
        if r["split"] == "heldout_real":
            real.setdefault(str(r["synth"]), []).append(data_dir / r["path"])
    sets += [EvalSet(f"{lang} heldout_real {c}", lang, p) for c, p in sorted(real.items())]
    return [EvalSet(s.name, s.lang, s.paths[:max_utts]) for s in sets if s.paths]


def voice_group(synth: str, voice: str) -> str:
    """espeak-ng voices group by variant ("+f5"); others by voice name."""
    if synth == "espeak":
        return f"espeak +{voice.partition('+')[2] or 'default'}"
    return f"{synth} {voice}"


def evaluate(
    paths: Iterable[Path], predictors: Sequence[Predictor], max_shift: int = 0
) -> list[Counts]:
    """Counts per predictor, each at its best shift within +-max_shift frames."""
    shifts = range(-max_shift, max_shift + 1)
    counts = [[Counts() for _ in shifts] for _ in predictors]
    for path in paths:
        with np.load(path) as z:
            audio = z["audio"].astype(np.float32) / 32768.0
            ref = z["labels"].astype(np.int64)
        for per_shift, predict in zip(counts, predictors, strict=True):
            pred = fit_length(predict(audio), len(ref))
            for c, k in zip(per_shift, shifts, strict=True):
                c.add(ref, shifted(pred, k))
    best = []
    for per_shift in counts:
        i = int(np.argmax([np.nan_to_num(c.metrics()["acc15_speech"]) for c in per_shift]))
        per_shift[i].shift_ms = 10 * shifts[i]
        best.append(per_shift[i])
    return best


COLUMNS = (("acc22_speech", "acc22 sp", True), ("acc22_all", "acc22 all", True),
           ("acc15_speech", "acc15 sp", True), ("bilabial_recall", "bilab rec", True),
           ("bilabial_precision", "bilab prec", True), ("silence", "silence", True),
           ("onset_ms", "onset ms", False), ("onset_hit", "onset hit", True),
           ("shift_ms", "shift ms", False))  # fmt: skip


def _fmt(v: float, pct: bool) -> str:
    if v != v:  # NaN: no baseline for this set or nothing to count
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.0f}"


# (set name, utterances, minutes, model metrics, baseline metrics or None)
Result = tuple[str, int, float, dict[str, float], dict[str, float] | None]


def table(results: Sequence[Result], markdown: bool) -> str:
    """One row per set; each metric as `model / baseline` (percent, except onset ms)."""
    head = ["set", "utts", "min"] + [label for _, label, _ in COLUMNS]
    lines: list[list[str]] = []
    for name, n, minutes, model, base in results:
        cells = [name, str(n), f"{minutes:.1f}"]
        for key, _, pct in COLUMNS:
            b = _fmt(base[key], pct) if base is not None else "-"
            cells.append(f"{_fmt(model[key], pct)} / {b}")
        lines.append(cells)
    return render(head, lines, markdown)


def render(head: list[str], lines: list[list[str]], markdown: bool) -> str:
    """A table as Markdown, or as aligned plain-text columns."""
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c) + " |" for c in lines]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in [head, *lines])  # fmt: skip


def predictor_from_path(path: str, threads: int) -> Predictor:
    from viseme_engine.onnx_model import OnnxVisemeModel  # onnxruntime only when a model is given

    model = OnnxVisemeModel.from_path(path, threads=threads)
    return lambda audio: np.asarray(model.predict(audio), dtype=np.int64)


def _silence(audio: np.ndarray) -> np.ndarray:
    return np.zeros(-(-len(audio) // 160), dtype=np.int64)


def run(
    data_dirs: Sequence[Path],
    models: dict[str, Predictor],
    max_utts: int,
    baseline: Predictor | None,
    max_shift: int = 0,
) -> list[Result]:
    """Evaluate every set of every data dir, with the baseline where one is given.

    After a language's per-voice held-out rows comes their pooled row
    ("heldout_voices all"), summed from the same predictions.
    """
    results: list[Result] = []
    for d in data_dirs:
        pooled: list[Counts] = []
        n_pooled = 0
        lang = ""
        for s in load_sets(d, max_utts):
            lang = s.lang
            model = models.get(s.lang) or models.get("*") or _silence
            preds = [model] + ([baseline] if baseline is not None else [])
            counts = evaluate(s.paths, preds, max_shift)
            results.append(_result(s.name, len(s.paths), counts))
            if " heldout_voices " in s.name:
                if pooled:
                    pooled = [a.merged(b) for a, b in zip(pooled, counts, strict=True)]
                else:
                    pooled = counts
                n_pooled += len(s.paths)
        if pooled:
            results.append(_result(f"{lang} heldout_voices all", n_pooled, pooled))
    return results


def _result(name: str, n: int, counts: Sequence[Counts]) -> Result:
    base = counts[1].metrics() if len(counts) > 1 else None
    return (name, n, counts[0].frames / 6000.0, counts[0].metrics(), base)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate viseme models on held-out data.")
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="data set dirs")
    ap.add_argument("--model", action="append", default=[],
                    help="[LANG=]model.onnx; without LANG for every language")  # fmt: skip
    ap.add_argument("--max-utts", type=int, default=60, help="utterances per set")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per model")
    ap.add_argument(
        "--max-offset-ms",
        type=int,
        default=0,
        help="score each system at its best constant shift within this bound",
    )
    ap.add_argument("--text", action="store_true",
                    help="text-informed table: acoustic, transcript, corrupted and shifted "
                    "transcripts (eval_text.py)")  # fmt: skip
    args = ap.parse_args(argv)
    models: dict[str, Predictor] = {}
    for spec in [] if args.text else args.model:
        lang, sep, path = spec.partition("=")
        models[lang if sep else "*"] = predictor_from_path(path if sep else spec, args.threads)
    baseline: Predictor | None = None
    if not args.no_baseline:
        from viseme_engine.training.baseline import PhoneLoopBaseline

        baseline = PhoneLoopBaseline()
    if args.text:
        from viseme_engine import eval_text

        probs = {}
        for spec in args.model:
            lang, sep, path = spec.partition("=")
            probs[lang if sep else "*"] = eval_text.prob_predictor(path if sep else spec, 1)
        rows = eval_text.run(args.data, probs, args.max_utts, baseline)
        print(eval_text.table(rows, args.markdown))
        return 0
    if not models:
        print("no --model: the model column is the all-silence predictor", file=sys.stderr)
    results = run(args.data, models, args.max_utts, baseline, args.max_offset_ms // 10)
    print(table(results, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
