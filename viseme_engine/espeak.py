"""espeak-ng's phoneme mnemonics: the one subprocess call the text aligner
(text_align.py) and the forced aligner's pronunciations (forced_align.py) share."""

from __future__ import annotations

import shutil
import subprocess


def espeak_lines(text: str, voice: str) -> list[str]:
    """espeak-ng's `-x --sep=_` mnemonics of `text` with `voice`, a non-empty line each
    (one input line, a word say, gives one output line)."""
    espeak = shutil.which("espeak-ng") or "espeak-ng"
    res = subprocess.run(  # noqa: S603
        [espeak, "-v", voice, "-q", "-x", "--sep=_"],
        input=text, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return [line for line in res.stdout.splitlines() if line.strip()]
