"""festival: audio plus the Segment relation's end times, many utterances per run.

A scheme script synthesizes each text, saves the wave and prints
"phone:end" for every segment; one festival process handles a whole batch
because its start-up costs more than a short utterance.

Indonesian is read by the Italian, Finnish, Czech and Catalan voices after
respelling it in their orthography: the four languages spell nearly
phonemically, so their letter-to-sound rules then produce Indonesian-like
phones. Whatever a voice makes of a text, the labels are its own segments, so
they always match its audio.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from viseme_engine.training.synth_espeak import Synthesis
from viseme_engine.training.synth_flite import _read_wav

# voice -> phone table in viseme_engine.phonemes
VOICES: dict[str, str] = {
    "kal_diphone": "arpabet",
    "ked_diphone": "arpabet",
    "cmu_us_slt_arctic_hts": "arpabet",
    "lp_diphone": "festival-it",
    "pc_diphone": "festival-it",
    "suo_fi_lj_diphone": "festival-fi",
    "hy_fi_mv_diphone": "festival-fi",
    "czech_dita": "festival-cs",
    "czech_krb": "festival-cs",
    "czech_machac": "festival-cs",
    "upc_ca_ona_hts": "festival-ca",
}


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_batch(
    voice: str, texts: Sequence[str], stretch: Sequence[float]
) -> list[Synthesis | None]:
    """Speak each text with `voice`; `stretch` scales durations per text.

    festival's `Utterance Text` puts no pause at a sentence end, so each
    sentence is its own utterance (each starts and ends with a pause) and the
    parts are joined here. A text festival fails on (its Italian letter-to-sound
    rules crash on some letter sequences) gives None; the rest still come back.
    """
    try:
        return list(_synth_texts(voice, texts, stretch))
    except subprocess.CalledProcessError:
        out: list[Synthesis | None] = []
        for text, st in zip(texts, stretch, strict=True):
            try:
                out += _synth_texts(voice, [text], [st])
            except subprocess.CalledProcessError:
                out.append(None)
        return out


def _synth_texts(voice: str, texts: Sequence[str], stretch: Sequence[float]) -> list[Synthesis]:
    parts: list[tuple[int, str, float]] = []
    for i, (text, st) in enumerate(zip(texts, stretch, strict=True)):
        parts += [(i, s, st) for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    synths = _synth_parts(voice, [p[1] for p in parts], [p[2] for p in parts])
    out: list[Synthesis] = []
    for i in range(len(texts)):
        mine = [s for (j, _, _), s in zip(parts, synths, strict=True) if j == i]
        out.append(_join(mine))
    return out


def _join(parts: Sequence[Synthesis]) -> Synthesis:
    phones: list[str] = []
    ends: list[float] = []
    offset = 0.0
    for p in parts:
        phones += p.phones
        ends += [e + offset for e in p.ends]
        offset += len(p.audio) / p.rate
    audio = np.concatenate([p.audio for p in parts])
    return Synthesis(audio=audio, rate=parts[0].rate, phones=phones, ends=ends)


def _synth_parts(voice: str, texts: Sequence[str], stretch: Sequence[float]) -> list[Synthesis]:
    if voice not in VOICES:
        raise ValueError(f"unsupported festival voice {voice!r}")
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{voice})"]
        for i, (text, st) in enumerate(zip(texts, stretch, strict=True)):
            wav = Path(tmp) / f"{i}.wav"
            lines += [
                f"(Parameter.set 'Duration_Stretch {st:.3f})",
                f"(set! utt (Utterance Text {_scheme_string(text)}))",
                "(utt.synth utt)",
                f'(utt.save.wave utt "{wav}" \'riff)',
                f'(format t "@@{i} ")',
                '(mapcar (lambda (s) (format t "%s:%.4f " (item.name s) '
                '(item.feat s "end"))) (utt.relation.items utt \'Segment))',
                '(format t "\\n")',
            ]
        script = Path(tmp) / "batch.scm"
        # the Czech voices read ISO-8859-2 (UTF-8 "č" would be spelt out letter by letter)
        encoding = "iso-8859-2" if VOICES[voice] == "festival-cs" else "utf-8"
        script.write_text("\n".join(lines) + "\n", encoding=encoding, errors="replace")
        res = subprocess.run(  # noqa: S603
            ["festival", "--batch", str(script)],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            timeout=60 + 20 * len(texts),
        )
        segs: dict[int, tuple[list[str], list[float]]] = {}
        for line in res.stdout.splitlines():
            m = re.search(r"@@(\d+) (.*)$", line)
            if not m:
                continue
            phones: list[str] = []
            ends: list[float] = []
            for tok in m.group(2).split():
                name, _, end = tok.rpartition(":")
                if name:
                    phones.append(name)
                    ends.append(float(end))
            segs[int(m.group(1))] = (phones, ends)
        out: list[Synthesis] = []
        for i in range(len(texts)):
            audio, rate = _read_wav(Path(tmp) / f"{i}.wav")
            phones, ends = segs[i]
            out.append(Synthesis(audio=audio, rate=rate, phones=phones, ends=ends))
    return out


def _sub_all(text: str, rules: Sequence[tuple[str, str]]) -> str:
    for pat, rep in rules:
        text = re.sub(pat, rep, text)
    return text


_V = "aeiou"
# Indonesian spelling -> Italian spelling of the same sounds.
_TO_ITALIAN = (
    (r"ny", "gn"), (r"sy", "sci"), (r"kh", "k"), (r"c(?=[aou])", "ci"),
    (r"j(?=[aou])", "gi"), (r"j", "g"), (r"g(?=[ei])", "gh"), (r"k(?=[ei])", "ch"),
    (r"k", "c"), (r"y", "i"), (r"w", "u"), (r"h(?![" + _V + "])", ""), (r"h", ""),
    (r"f", "f"), (r"v", "v"),
)  # fmt: skip
# Indonesian spelling -> Finnish spelling (y is a vowel in Finnish).
_TO_FINNISH = (
    (r"sy", "sh"), (r"kh", "h"), (r"c", "tsh"), (r"j(?![" + _V + "])", "t"),
    (r"j", "dj"), (r"y", "j"),
)  # fmt: skip

# Indonesian spelling -> Czech spelling (c is ts and j is y in Czech).
_TO_CZECH = (
    (r"c", "č"), (r"ny", "ň"), (r"sy", "š"), (r"kh", "ch"), (r"j", "dž"), (r"y", "j"),
    (r"w", "u"), (r"q", "k"), (r"x", "ks"),
)  # fmt: skip
# Indonesian spelling -> central Catalan spelling (ny is ɲ in both).
_TO_CATALAN = (
    (r"sy", "x"), (r"kh", "k"), (r"c", "tx"), (r"j", "tj"), (r"(?<!n)y", "i"), (r"w", "u"),
    (r"g(?=[ei])", "gu"), (r"k(?=[ei])", "qu"), (r"k", "c"), (r"(?<![" + _V + "])h", ""),
)  # fmt: skip


def respell_indonesian(text: str, voice: str) -> str:
    """Indonesian text spelled so that `voice`'s letter-to-sound reads it right."""
    lower = text.lower()
    if VOICES.get(voice) == "festival-it":
        # the Italian voices' question intonation crashes on some phrases ("paiung biru?")
        return _sub_all(lower.replace("?", "."), _TO_ITALIAN)
    if VOICES.get(voice) == "festival-fi":
        # "nj" from "ny" must survive the j rule: protect it first
        return _sub_all(lower.replace("ny", "\x01"), _TO_FINNISH).replace("\x01", "nj")
    if VOICES.get(voice) == "festival-cs":
        return _sub_all(lower, _TO_CZECH)
    if VOICES.get(voice) == "festival-ca":
        return _sub_all(lower, _TO_CATALAN)
    raise ValueError(f"no Indonesian respelling for {voice!r}")
