"""A labelled data set from recordings with transcripts: LJSpeech, Common Voice, neural TTS.

    python -m viseme_engine.training.realspeech --lang en --out data/en-real \
        --ljspeech corpora/LJSpeech-1.1 --lj-textgrids corpora/ljtg/.../TextGrid/LJSpeech \
        --commonvoice corpora/cv/en
    python -m viseme_engine.training.realspeech --lang id --out data/id-real \
        --commonvoice corpora/cv/id
    python -m viseme_engine.training.realspeech --lang en --out data/en-kokoro \
        --transcribed corpora/kokoro-en --corpus kokoro
    python -m viseme_engine.training.realspeech --lang other --out data/cv-world \
        --commonvoice corpora/cv/de corpora/cv/es ...   # other languages' speakers

Writes the layout datagen writes (manifest.jsonl, <split>/<id>.npz; see
datagen.py), so train.py and eval.py read both alike. Labels:
  LJSpeech      the Montreal Forced Aligner's phone TextGrids (ARPAbet);
                `spn` (unknown word) frames get UNKNOWN and are not trained on
  Common Voice  pocketsphinx forced alignment of the clip's transcript
                (viseme_engine/forced_align.py); Indonesian words are pronounced
                through espeak-ng's `id` phones mapped to ARPAbet, since only
                an English acoustic model exists. Clips it cannot align are dropped and counted.
  transcribed   a directory of clips/*.wav and transcripts.tsv (file, voice,
                split, sentence), e.g. synth_kokoro.py's neural TTS: aligned
                like Common Voice; the split is the directory's own.
Stop closures are fixed with the same rules as synthesized speech (viseme_engine/labels.py).

Splits (deterministic hashes, so reruns agree):
  train              training speakers
  heldout_sentences  LJSpeech clips for checkpoint selection (same speaker)
  heldout_real       never trained on or selected on: Common Voice speakers
                     (by client_id) no training clip comes from, LJSpeech
                     clips (a weaker, same-speaker set), held-out TTS voices
LJ001-0002 is left out altogether: it is reserved for independent evaluation.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import subprocess
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from viseme_engine.audio import to_pcm16
from viseme_engine.forced_align import Alignment, ForcedAligner, espeak_pronunciations, words_of
from viseme_engine.labels import RATE, example, fix_closures
from viseme_engine.phonemes import phone_viseme
from viseme_engine.training import synth_flite
from viseme_engine.training.datagen import alignment_ok

log = logging.getLogger("viseme_engine.realspeech")

UNKNOWN = 255  # frame label of an unknown stretch (MFA's spn): masked in training
_LETTERS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # words of any alphabet
_RESERVED = frozenset({"LJ001-0002"})
_LJ_VAL, _LJ_TEST = 0.10, 0.12  # shares of LJSpeech clips
_CV_HELDOUT = {"en": 0.5, "id": 0.45}  # share of Common Voice speakers held out


@dataclass(frozen=True)
class Clip:
    uid: str
    corpus: str
    speaker: str
    split: str
    text: str
    audio: np.ndarray  # float32 16 kHz
    phones: list[str]  # lower-case ARPAbet, "sil" for pauses, "spn" unknown
    ends: list[float]


def _unit(key: str) -> float:
    """A stable number in [0, 1) for a key."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32


def read_wav(path: Path) -> np.ndarray:
    """16-bit PCM WAV, any rate, as float32 16 kHz mono."""
    with wave.open(str(path)) as w:
        rate, ch = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    if ch > 1:
        pcm = pcm.reshape(-1, ch).mean(axis=1)
    return soxr.resample(pcm, rate, RATE, quality="HQ") if rate != RATE else pcm


def decode_ffmpeg(path: Path) -> np.ndarray:
    """Any file ffmpeg reads (Common Voice's MP3) as float32 16 kHz mono."""
    res = subprocess.run(  # noqa: S603
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE),  # noqa: S607
         "-f", "s16le", "-"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return np.frombuffer(res.stdout, np.int16).astype(np.float32) / 32768.0


def read_textgrid_phones(path: Path) -> tuple[list[str], list[float]]:
    """The `phones` tier of an MFA TextGrid: lower-case phones and their ends."""
    text = path.read_text()
    tier = text[text.index('name = "phones"') :]
    phones: list[str] = []
    ends: list[float] = []
    for xmax, label in re.findall(r'xmax = ([\d.]+)\s+text = "([^"]*)"', tier):
        ph = label.lower() if label not in ("", "sp", "sil") else "sil"
        if phones and ph == "sil" == phones[-1]:
            ends[-1] = float(xmax)
            continue
        phones.append(ph)
        ends.append(float(xmax))
    return phones, ends


def _lj_split(uid: str) -> str:
    u = _unit("lj:" + uid)
    if u < _LJ_VAL:
        return "heldout_sentences"
    return "heldout_real" if u < _LJ_VAL + _LJ_TEST else "train"


def ljspeech(root: Path, textgrids: Path) -> Iterator[Clip]:
    with open(root / "metadata.csv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("|") for line in f if line.strip()]
    for uid, _, text in rows:
        wav, tg = root / "wavs" / f"{uid}.wav", textgrids / f"{uid}.TextGrid"
        if uid in _RESERVED or not wav.exists() or not tg.exists():
            continue
        phones, ends = read_textgrid_phones(tg)
        yield Clip(uid, "ljspeech", "LJ", _lj_split(uid), text, read_wav(wav), phones, ends)


def indonesian_pronunciations(words: list[str]) -> dict[str, list[str]]:
    """ARPAbet (upper case) for Indonesian words, from espeak-ng's `id` voice."""
    out: dict[str, list[str]] = {}
    for word in words:
        espeak = synth_flite.espeak_id_words(word)
        arpabet = synth_flite.indonesian_phone_string(espeak).split()
        out[word] = [p.upper() for p in arpabet if p != "pau"]
    return out


def _align(aligner: ForcedAligner, audio: np.ndarray, sentence: str, lang: str) -> Alignment | None:
    """The transcript's words aligned to the clip (not English: espeak-ng pronunciations)."""
    if lang == "en":
        words = words_of(sentence)
        return aligner.align(audio, words) if words else None
    if lang == "id":
        words = words_of(sentence)
        return aligner.align(audio, words, indonesian_pronunciations(words)) if words else None
    words = list(dict.fromkeys(_LETTERS.findall(sentence.lower())))
    prons = espeak_pronunciations(words, lang) if words else {}
    if not words or set(words) - set(prons):
        return None
    return aligner.align(audio, _LETTERS.findall(sentence.lower()), prons)


def commonvoice(root: Path, lang: str, aligner: ForcedAligner) -> Iterator[Clip]:
    with open(root / "validated.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    dropped = 0
    for row in rows:
        path = root / "clips" / row["path"]
        if not path.exists():
            continue
        audio = decode_ffmpeg(path)
        al = _align(aligner, audio, row["sentence"], lang)
        if al is None:
            dropped += 1
            log.warning("%s: not aligned, dropped", row["path"])
            continue
        held = _unit(f"cv:{row['client_id']}") < _CV_HELDOUT.get(lang, 0.0)  # others: all train
        yield Clip(Path(row["path"]).stem, "commonvoice", row["client_id"][:12],
                   "heldout_real" if held else "train", row["sentence"], audio,
                   al.phones, al.ends)  # fmt: skip
    log.info("commonvoice %s: %d clips not aligned, dropped", lang, dropped)


def transcribed(root: Path, corpus: str, lang: str, aligner: ForcedAligner) -> Iterator[Clip]:
    with open(root / "transcripts.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows:
        path = root / "clips" / row["file"]
        if not path.exists():
            continue
        audio = read_wav(path)
        al = _align(aligner, audio, row["sentence"], lang)
        if al is None:
            log.warning("%s: not aligned, dropped", row["file"])
            continue
        yield Clip(Path(row["file"]).stem, corpus, row["voice"], row["split"], row["sentence"],
                   audio, al.phones, al.ends)  # fmt: skip


def to_example(clip: Clip) -> dict[str, np.ndarray]:
    """Frame labels for a clip; closures fixed as for synthesized speech."""
    visemes = [UNKNOWN if p == "spn" else phone_viseme("arpabet", p) for p in clip.phones]
    pcm16 = to_pcm16(clip.audio)
    return example(pcm16, clip.phones, fix_closures(pcm16, RATE, clip.phones, clip.ends, visemes),
                   visemes)  # fmt: skip


def write(clips: Iterator[Clip], out: Path, lang: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for clip in clips:
        ex = to_example(clip)
        known = ex["labels"] != UNKNOWN
        if not alignment_ok(ex["audio"][: int(known.sum()) * 160], ex["labels"][known]):
            log.warning("%s: labels do not match audio, dropped", clip.uid)
            continue
        if clip.split != "train" and not known.all():
            continue  # evaluation sets hold fully labelled clips only
        rel = f"{clip.split}/{clip.uid}.npz"
        (out / clip.split).mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / rel, **ex)  # type: ignore[arg-type]  # numpy stubs want one positional array
        rows.append({"id": clip.uid, "path": rel, "lang": lang, "synth": clip.corpus,
                     "voice": clip.speaker, "split": clip.split, "text": clip.text,
                     "seconds": round(len(ex["audio"]) / RATE, 3)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument(
        "--lang",
        required=True,
        help="en or id; or `other`: Common Voice locales of other languages, each read "
        "with the espeak-ng voice its folder names (sv-SE: sv), all of them train",
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ljspeech", type=Path, help="LJSpeech-1.1 directory (metadata.csv, wavs/)")
    ap.add_argument("--lj-textgrids", type=Path, help="MFA TextGrids, one per LJSpeech id")
    ap.add_argument("--commonvoice", type=Path, nargs="+", default=[],
                    help="Common Voice locale folders (validated.tsv, clips/)")  # fmt: skip
    ap.add_argument("--transcribed", type=Path, help="clips/*.wav + transcripts.tsv (synth_kokoro)")
    ap.add_argument("--corpus", default="tts", help="corpus name of --transcribed clips")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    if args.ljspeech is not None:
        if args.lj_textgrids is None:
            ap.error("--ljspeech needs --lj-textgrids")
        rows += write(ljspeech(args.ljspeech, args.lj_textgrids), args.out, args.lang)
    aligner = ForcedAligner() if args.commonvoice or args.transcribed else None
    for folder in args.commonvoice:
        assert aligner is not None
        lang = folder.name.split("-")[0] if args.lang == "other" else args.lang
        rows += write(commonvoice(folder, lang, aligner), args.out, lang)
    if args.transcribed is not None:
        assert aligner is not None
        rows += write(transcribed(args.transcribed, args.corpus, args.lang, aligner), args.out,
                      args.lang)  # fmt: skip
    (args.out / "manifest.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )
    for split in ("train", "heldout_sentences", "heldout_real"):
        sel = [r for r in rows if r["split"] == split]
        minutes = sum(float(str(r["seconds"])) for r in sel) / 60
        log.info("%s: %d clips, %.1f min, %d speakers", split, len(sel), minutes,
                 len({(r["synth"], r["voice"]) for r in sel}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
