"""Generate a labelled viseme data set from speech synthesizers.

    python -m viseme_engine.training.datagen --lang en|id --out DIR \
        [--hours H] [--jobs N] [--seed S]

Output (the training code reads exactly this):
  DIR/manifest.jsonl  one JSON object per utterance:
      {"id", "path" (relative .npz), "lang", "synth", "voice", "split", "text", "seconds"}
  DIR/<split>/<id>.npz  audio int16 16 kHz mono, labels uint8 (one SAPI viseme per
      10 ms frame, len = ceil(len(audio)/160)), phones (str), phone_ends (float32 s),
      phone_visemes (uint8)

Splits:
  train              training voices, training sentences; English adds festival's
      Italian, Finnish, Czech and Catalan real-speaker voices reading respelt
      Indonesian ("festival-id"): more human vocal tracts, labelled by their own phones
  heldout_sentences  training voices, sentences never used in training (hash split)
  heldout_voices     voices never used in training, held-out sentences:
      en: flite rms (male, clustergen), festival ked_diphone (male, diphone),
          espeak-ng variants f5 and klatt4 (any English accent)
      id: festival hy_fi_mv_diphone (Finnish male reading respelt Indonesian),
          flite rms reading Indonesian phone strings, espeak-ng id+f5 / id+klatt4
  rms and ked are real speakers whose recordings no training voice uses.

Work is cut into units (one synthesizer configuration, a few utterances);
unit k depends only on (seed, k), so a larger --hours run reuses the units an
earlier run finished (DIR/units/k.jsonl) and the manifest only grows.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soxr

from viseme_engine.audio import to_pcm16
from viseme_engine.labels import RATE, example, fix_closures
from viseme_engine.phonemes import phones_to_visemes
from viseme_engine.training import corpus, synth_festival, synth_flite
from viseme_engine.training.synth_espeak import Espeak, Synthesis

log = logging.getLogger("viseme_engine.datagen")

_EN_ACCENTS = ("en-us", "en-us", "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029",
               "en-us-nyc", "en-gb-x-gbclan")  # fmt: skip
_TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4",
                   "klatt", "klatt2", "klatt3", "adam", "Andy", "anika", "belinda", "david",
                   "linda", "steph", "michel", "grandma", "grandpa", "Annie", "quincy")  # fmt: skip
_HELDOUT_VARIANTS = ("f5", "klatt4")
# (synth, voice, weight) per language and split
_VOICES: dict[str, dict[str, list[tuple[str, str, float]]]] = {
    "en": {
        "train": [("espeak", "*", 0.30), ("flite", "slt", 0.06), ("flite", "awb", 0.06),
                  ("flite", "kal16", 0.06), ("flite", "kal", 0.04),
                  ("festival", "kal_diphone", 0.10), ("festival", "cmu_us_slt_arctic_hts", 0.14),
                  # real speakers of other languages reading respelt Indonesian
                  ("festival-id", "lp_diphone", 0.04), ("festival-id", "pc_diphone", 0.04),
                  ("festival-id", "suo_fi_lj_diphone", 0.04), ("festival-id", "czech_dita", 0.04),
                  ("festival-id", "czech_krb", 0.04), ("festival-id", "czech_machac", 0.04),
                  ("festival-id", "upc_ca_ona_hts", 0.04)],
        "heldout_voices": [("flite", "rms", 1.0), ("festival", "ked_diphone", 1.0),
                           ("espeak", "*", 1.0)],
    },
    "id": {
        "train": [("espeak", "*", 0.32), ("festival", "lp_diphone", 0.08),
                  ("festival", "pc_diphone", 0.08), ("festival", "suo_fi_lj_diphone", 0.08),
                  ("festival", "czech_dita", 0.06), ("festival", "czech_krb", 0.06),
                  ("festival", "czech_machac", 0.06), ("festival", "upc_ca_ona_hts", 0.06),
                  ("flite-p", "awb", 0.06), ("flite-p", "slt", 0.06), ("flite-p", "kal16", 0.06)],
        "heldout_voices": [("festival", "hy_fi_mv_diphone", 1.0), ("flite-p", "rms", 1.0),
                           ("espeak", "*", 1.0)],
    },
}  # fmt: skip
_UTTS_PER_UNIT = 8
_AVG_UTT_S = 5.0  # planning estimate; the report counts real seconds
_HELDOUT_UNITS = {"heldout_sentences": 24, "heldout_voices": 36}  # ~16 / ~24 min


@dataclass(frozen=True)
class Unit:
    index: int
    lang: str
    split: str
    synth: str
    voice: str
    seed: int
    n_utts: int = _UTTS_PER_UNIT


def plan(
    lang: str,
    hours: float,
    seed: int,
    heldout_units: int | None = None,
    utts_per_unit: int = _UTTS_PER_UNIT,
) -> list[Unit]:
    """Held-out units first (small, fixed), then train units up to `hours`."""
    units: list[Unit] = []
    n_train = max(1, round(hours * 3600 / (_AVG_UTT_S * utts_per_unit)))
    n_sent, n_voice = (
        (heldout_units, heldout_units)
        if heldout_units is not None
        else (_HELDOUT_UNITS["heldout_sentences"], _HELDOUT_UNITS["heldout_voices"])
    )
    schedule = [("heldout_sentences", n_sent), ("heldout_voices", n_voice), ("train", n_train)]
    k = 0
    for split, count in schedule:
        choices = _VOICES[lang]["train" if split != "heldout_voices" else split]
        for j in range(count):
            rng = random.Random(f"{seed}:{k}")  # noqa: S311  (data generation)
            if split == "heldout_voices":  # round-robin: equal time per held-out voice
                synth, voice, _ = choices[j % len(choices)]
            else:
                synth, voice, _ = rng.choices(choices, weights=[w for *_, w in choices])[0]
            units.append(Unit(k, lang, split, synth, voice, rng.randrange(2**31), utts_per_unit))
            k += 1
    return units


def _espeak_voice(lang: str, split: str, rng: random.Random) -> str:
    base = rng.choice(_EN_ACCENTS) if lang == "en" else "id"
    variant = rng.choice(_HELDOUT_VARIANTS if split == "heldout_voices" else _TRAIN_VARIANTS)
    return f"{base}+{variant}" if variant else base


_ESPEAK: Espeak | None = None


def _synthesize(
    unit: Unit, texts: list[str], rng: random.Random
) -> list[tuple[str, str, Synthesis | None]]:
    """(voice name, phone table, synthesis or None where it failed) per text."""
    global _ESPEAK  # one libespeak-ng per worker process: the library is a singleton
    out: list[tuple[str, str, Synthesis | None]] = []
    if unit.synth == "espeak":
        if _ESPEAK is None:
            _ESPEAK = Espeak()
        for text in texts:
            voice = _espeak_voice(unit.lang, unit.split, rng)
            wpm = rng.randint(120, 240)
            pitch, prange = rng.randint(15, 85), rng.randint(10, 90)
            syn = _ESPEAK.synth(text, voice, wpm=wpm, pitch=pitch, pitch_range=prange)
            out.append((voice, f"espeak-{unit.lang}", syn))
    elif unit.synth in ("flite", "flite-p"):
        for text in texts:
            stretch = rng.uniform(0.8, 1.25)
            f0 = rng.uniform(80, 130) if unit.voice != "slt" else rng.uniform(150, 220)
            if unit.synth == "flite-p":
                phones = synth_flite.indonesian_phone_string(synth_flite.espeak_id_words(text))
                # phone strings carry no prosody: flite's default durations are slow
                syn = synth_flite.synth(
                    unit.voice, phones=phones, stretch=stretch * 0.7, f0_mean=f0
                )
            else:
                syn = synth_flite.synth(unit.voice, text=text, stretch=stretch, f0_mean=f0)
            out.append((unit.voice, "arpabet", syn))
    elif unit.synth in ("festival", "festival-id"):
        table = synth_festival.VOICES[unit.voice]
        if _text_lang(unit) == "id":
            texts = [synth_festival.respell_indonesian(t, unit.voice) for t in texts]
        stretches = [rng.uniform(0.8, 1.25) for _ in texts]
        for maybe in synth_festival.synth_batch(unit.voice, texts, stretches):
            out.append((unit.voice, table, maybe))
    else:
        raise ValueError(unit.synth)
    return out


def alignment_ok(audio: np.ndarray, labels: np.ndarray) -> bool:
    """Silence labels must sit on quiet audio: catches shifted phone times."""
    n = len(labels)
    pad = np.zeros(n * 160, np.float64)
    pad[: len(audio)] = audio[: n * 160]
    db = 10 * np.log10(np.mean(pad.reshape(n, 160) ** 2, axis=1) + 1.0)
    sil, speech = db[labels == 0], db[labels != 0]
    if len(speech) < 10:
        return False
    if len(sil) < 5:
        return True
    return bool(np.median(speech) - np.median(sil) > 15.0)


def to_example(syn: Synthesis, table: str) -> dict[str, np.ndarray]:
    """Resample to 16 kHz and label frames; closures fixed on the native audio."""
    visemes = phones_to_visemes(table, syn.phones)
    ends = fix_closures(syn.audio, syn.rate, syn.phones, syn.ends, visemes)
    audio = syn.audio.astype(np.float32) / 32768.0
    if syn.rate != RATE:
        audio = soxr.resample(audio, syn.rate, RATE, quality="HQ")
    return example(to_pcm16(audio), syn.phones, ends, visemes)


_POOLS: dict[tuple[str, int], tuple[list[str], list[str]]] = {}


def _text_lang(unit: Unit) -> str:
    """The language of the sentences a unit reads ("festival-id": Indonesian)."""
    return "id" if unit.synth == "festival-id" else unit.lang


def run_unit(unit: Unit, out: Path, base_seed: int) -> list[dict[str, object]]:
    """Synthesize one unit's utterances and write their .npz files; manifest rows back."""
    key = (_text_lang(unit), base_seed)
    if key not in _POOLS:
        _POOLS[key] = corpus.sentences(*key)
    train_pool, held_pool = _POOLS[key]
    rng = random.Random(unit.seed)  # noqa: S311
    pool = train_pool if unit.split == "train" else held_pool
    texts = [t for t, _ in zip(corpus.chunks(pool, rng), range(unit.n_utts), strict=False)]
    rows: list[dict[str, object]] = []
    (out / unit.split).mkdir(parents=True, exist_ok=True)
    try:
        synths = _synthesize(unit, texts, rng)
    except Exception:  # one broken synthesizer call must not stop hours of generation
        log.exception("unit %d (%s %s) failed", unit.index, unit.synth, unit.voice)
        return rows
    for j, ((voice, table, syn), text) in enumerate(zip(synths, texts, strict=True)):
        if syn is None:
            log.warning("unit %d utt %d: %s could not speak %r", unit.index, j, voice, text)
            continue
        try:
            ex = to_example(syn, table)
        except KeyError as e:
            log.warning("unit %d: %s", unit.index, e)
            continue
        if not alignment_ok(ex["audio"], ex["labels"]):
            log.warning("unit %d utt %d (%s): labels do not match audio, dropped",
                        unit.index, j, voice)  # fmt: skip
            continue
        uid = f"{unit.lang}-{unit.index:05d}-{j}"
        rel = f"{unit.split}/{uid}.npz"
        np.savez_compressed(out / rel, **ex)  # type: ignore[arg-type]  # numpy stubs want one positional array
        rows.append({"id": uid, "path": rel, "lang": unit.lang, "synth": unit.synth,
                     "voice": voice, "split": unit.split, "text": text,
                     "seconds": round(len(ex["audio"]) / RATE, 3)})  # fmt: skip
    return rows


def _do(args: tuple[Unit, Path, int]) -> tuple[int, list[dict[str, object]]]:
    unit, out, seed = args
    done = out / "units" / f"{unit.index}.jsonl"
    if done.exists():
        return unit.index, [json.loads(ln) for ln in done.read_text().splitlines() if ln]
    rows = run_unit(unit, out, seed)
    tmp = done.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    tmp.replace(done)  # written after the .npz files: a listed unit is complete
    return unit.index, rows


def generate(
    lang: str,
    out: Path,
    hours: float,
    jobs: int,
    seed: int,
    heldout_units: int | None = None,
    utts_per_unit: int = _UTTS_PER_UNIT,
) -> Iterator[int]:
    """Run the plan; yields the number of manifest rows after each finished unit."""
    (out / "units").mkdir(parents=True, exist_ok=True)
    units = plan(lang, hours, seed, heldout_units, utts_per_unit)
    rows: list[dict[str, object]] = []
    manifest = out / "manifest.jsonl"
    work = [(u, out, seed) for u in units]
    with Pool(jobs) as pool:
        for _, unit_rows in pool.imap(_do, work):  # ordered: the manifest is deterministic
            rows.extend(unit_rows)
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            tmp.replace(manifest)
            yield len(rows)


def summary(manifest: Path) -> str:
    """Minutes of audio per split and voice (espeak-ng voices grouped by engine)."""
    minutes: dict[tuple[str, str], float] = {}
    for line in manifest.read_text().splitlines():
        r = json.loads(line)
        espeak = r["synth"] == "espeak"
        voice = "espeak-ng (all variants)" if espeak else f"{r['synth']} {r['voice']}"
        key = (r["split"], voice)
        minutes[key] = minutes.get(key, 0.0) + r["seconds"] / 60
    lines = [f"{s:18s} {v:34s} {m:7.1f} min" for (s, v), m in sorted(minutes.items())]
    for split in ("train", "heldout_sentences", "heldout_voices"):
        total = sum(m for (s, _), m in minutes.items() if s == split)
        lines.append(f"{split:18s} {'TOTAL':34s} {total:7.1f} min")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--lang", choices=("en", "id"), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hours", type=float, default=1.0, help="train audio to plan")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--heldout-units",
        type=int,
        default=None,
        help="units per held-out split (default 24 and 36; tests use fewer)",
    )
    ap.add_argument(
        "--utts-per-unit",
        type=int,
        default=_UTTS_PER_UNIT,
        help="utterances per work unit (changes the plan; tests use fewer)",
    )
    ap.add_argument("--summary", action="store_true", help="print minutes per split and voice")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.out / "manifest.jsonl"))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    n = 0
    gen = generate(args.lang, args.out, args.hours, args.jobs, args.seed,
                   args.heldout_units, args.utts_per_unit)  # fmt: skip
    for n in gen:
        if n and n % 200 < args.utts_per_unit:
            log.info("%d utterances", n)
    log.info("done: %d utterances in %s", n, args.out / "manifest.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
