"""Where a model's errors are: wrong speech frames per labelled phone, for one eval set.

    python -m viseme_engine.phone_errors --data data/en --model viseme_engine/models/default.onnx \\
        --set "flite rms" [--max-utts 30] [--top 10] [--baseline]

A frame belongs to the phone of the data set's own phone timings at the frame
centre (the phone set is the synthesizer's). Each row: phone, speech frames,
share wrong (22-class), the points of the set's speech accuracy those errors
cost, and the visemes predicted instead. --baseline adds the pocketsphinx
phone loop's row for the same phone, to tell a hard voice from a model that
does not generalise.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viseme_engine.eval import Predictor, fit_length, load_sets, predictor_from_path
from viseme_engine.labels import frame_phones
from viseme_engine.phonemes import SILENCE


@dataclass
class PhoneErrors:
    speech: int = 0
    frames: Counter[str] = field(default_factory=Counter)
    wrong: dict[str, Counter[int]] = field(default_factory=dict)

    def add(self, phones: list[str], ends: np.ndarray, ref: np.ndarray, pred: np.ndarray) -> None:
        at = np.minimum(frame_phones(len(ref), ends), len(phones) - 1)
        for i in np.flatnonzero(ref != SILENCE):
            phone = phones[at[i]]
            self.speech += 1
            self.frames[phone] += 1
            if pred[i] != ref[i]:
                self.wrong.setdefault(phone, Counter())[int(pred[i])] += 1

    def rows(self, top: int) -> list[tuple[str, int, float, float, list[tuple[int, int]]]]:
        """(phone, frames, share wrong, accuracy points lost, top confusions), costliest first."""
        out = []
        for phone, conf in self.wrong.items():
            n_wrong = sum(conf.values())
            out.append((phone, self.frames[phone], n_wrong / self.frames[phone],
                        100.0 * n_wrong / self.speech, conf.most_common(4)))  # fmt: skip
        return sorted(out, key=lambda r: -r[3])[:top]


def analyse(paths: list[Path], predict: Predictor) -> PhoneErrors:
    errs = PhoneErrors()
    for path in paths:
        with np.load(path) as z:
            audio = z["audio"].astype(np.float32) / 32768.0
            ref = z["labels"].astype(np.int64)
            phones = [str(p) for p in z["phones"]]
            ends = z["phone_ends"].astype(np.float64)
        errs.add(phones, ends, ref, fit_length(predict(audio), len(ref)))
    return errs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--set", required=True, help='part of a set name, e.g. "flite rms"')
    ap.add_argument("--max-utts", type=int, default=30)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--baseline", action="store_true")
    args = ap.parse_args(argv)
    sets = [s for s in load_sets(args.data, args.max_utts) if args.set in s.name]
    if len(sets) != 1:
        names = [s.name for s in load_sets(args.data, 1)]
        print(f"--set must match exactly one of {names}", file=sys.stderr)
        return 2
    model = analyse(sets[0].paths, predictor_from_path(args.model, 1))
    base: PhoneErrors | None = None
    if args.baseline:
        from viseme_engine.training.baseline import PhoneLoopBaseline

        base = analyse(sets[0].paths, PhoneLoopBaseline())
    print(f"{sets[0].name}: {len(sets[0].paths)} utterances, {model.speech} speech frames")
    for phone, n, share, cost, conf in model.rows(args.top):
        line = f"{phone:6s} {n:5d} frames  {100 * share:3.0f}% wrong  -{cost:4.1f} pt  as "
        line += " ".join(f"{v}:{c}" for v, c in conf)
        if base is not None:
            base_wrong = sum(base.wrong.get(phone, Counter()).values())
            line += f"   baseline {100 * base_wrong / max(1, n):3.0f}% wrong"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
