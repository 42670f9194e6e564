"""Sentence sources for English and Indonesian, built offline.

English: the `fortunes` Debian package (quotes, jokes, literature) split into
sentences, plus a small template generator for conversational lines.
Indonesian: prose from `debian-reference-id` kept only where the words are
Indonesian (checked against `hunspell-id`), plus a template generator with
everyday vocabulary that an avatar would speak.

Sentences are split into train and held-out by a hash of their text, so the
split does not depend on the order or the seed.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
DEBREF_ID = Path("/usr/share/debian-reference/debian-reference.id.txt.gz")
HUNSPELL_ID = Path("/usr/share/hunspell/id_ID.dic")

_MIN_WORDS, _MAX_WORDS = 4, 22
_WORD = re.compile(r"^[A-Za-z][a-z]*(?:['-][a-z]+)*[,.;:!?]?$")
_SENT_END = re.compile(r"(?<=[.!?])\s+")


def is_heldout_sentence(text: str, percent: int = 8) -> bool:
    """True for the stable `percent`% of sentences kept out of training."""
    digest = hashlib.sha1(text.lower().encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def _clean(sentence: str) -> str | None:
    for ch in '"()`':
        sentence = sentence.replace(ch, "")
    words = sentence.replace("--", " ").split()
    if not _MIN_WORDS <= len(words) <= _MAX_WORDS:
        return None
    if not all(_WORD.match(w) for w in words):
        return None
    return " ".join(words)


def english_fortunes() -> list[str]:
    """Sentences from the fortune files, deduplicated, in a stable order."""
    seen: set[str] = set()
    out: list[str] = []
    for path in sorted(FORTUNE_DIR.glob("*")):
        if path.suffix or not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace")
        for cookie in text.split("\n%\n"):
            # attributions ("-- Mark Twain") and indented verse read badly
            lines = [ln for ln in cookie.splitlines() if ln and not ln[0].isspace()]
            for raw in _SENT_END.split(" ".join(" ".join(lines).split())):
                s = _clean(raw)
                if s and s.lower() not in seen:
                    seen.add(s.lower())
                    out.append(s)
    return out


def _indonesian_lexicon() -> set[str]:
    words: set[str] = set()
    for line in HUNSPELL_ID.read_text("utf-8", errors="replace").splitlines()[1:]:
        words.add(line.split("/")[0].lower())
    return words


_ID_PREFIXES = ("meng", "meny", "mem", "men", "me", "ber", "be", "di", "ter", "per", "pe",
                "ke", "se")  # fmt: skip
_ID_SUFFIXES = ("kannya", "kan", "annya", "nya", "an", "i", "lah", "kah", "pun")


def _is_indonesian(word: str, lexicon: set[str]) -> bool:
    w = word.lower().strip(",.;:!?")
    if w in lexicon:
        return True
    stems = {w}
    for suf in _ID_SUFFIXES:
        if w.endswith(suf):
            stems.add(w[: -len(suf)])
    for stem in list(stems):
        for pre in _ID_PREFIXES:
            if stem.startswith(pre):
                stems.add(stem[len(pre) :])
    return any(len(s) >= 3 and s in lexicon for s in stems)


def indonesian_prose() -> list[str]:
    """Sentences of debian-reference-id whose words are all Indonesian."""
    lexicon = _indonesian_lexicon()
    with gzip.open(DEBREF_ID, "rt", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    out: list[str] = []
    seen: set[str] = set()
    for para in re.split(r"\n\s*\n", text):
        if "|" in para or "$" in para:
            continue  # tables and shell examples
        for raw in _SENT_END.split(" ".join(para.split())):
            s = _clean(raw)
            # one foreign word is fine: Indonesians read loanwords the same way
            foreign = sum(not _is_indonesian(w, lexicon) for w in s.split()) if s else 99
            if s and s.lower() not in seen and foreign <= 1:
                seen.add(s.lower())
                out.append(s)
    return out


_ID_SUBJ = (
    "saya",
    "kami",
    "kita",
    "dia",
    "mereka",
    "ibu saya",
    "adik saya",
    "teman saya",
    "bapak guru",
    "pak dokter",
    "nenek",
    "anak-anak",
    "tetangga kami",
    "kakak",
)
_ID_VERB = (
    "makan",
    "membeli",
    "membaca",
    "menulis",
    "mencari",
    "membawa",
    "memasak",
    "menjual",
    "melihat",
    "menyukai",
    "memesan",
    "membuka",
    "menutup",
    "mencuci",
)
_ID_OBJ = (
    "nasi goreng",
    "buku baru",
    "surat panjang",
    "kopi hitam",
    "sepatu merah",
    "pisang goreng",
    "jendela kamar",
    "mobil bapak",
    "baju batik",
    "ikan bakar",
    "sayur bayam",
    "payung biru",
    "kue cokelat",
    "tiket pesawat",
    "sambal terasi",
)
_ID_PLACE = (
    "di pasar",
    "di rumah",
    "di kantor",
    "di sekolah",
    "di warung",
    "di pantai",
    "di Jakarta",
    "di Bandung",
    "di kampung",
    "di toko itu",
    "di dapur",
)
_ID_TIME = (
    "tadi pagi",
    "kemarin sore",
    "besok malam",
    "setiap hari",
    "minggu depan",
    "nanti siang",
    "sekarang",
    "tahun lalu",
)
_ID_LINES = (
    "selamat pagi, apa kabar?",
    "terima kasih banyak atas bantuannya.",
    "maaf, saya tidak mengerti.",
    "boleh saya bertanya sesuatu?",
    "tolong ulangi sekali lagi.",
    "sampai jumpa besok!",
    "silakan duduk dulu.",
    "berapa harganya?",
    "di mana kamar mandinya?",
    "saya sangat senang bertemu anda.",
)


def indonesian_templates(n: int, seed: int) -> list[str]:
    """`n` generated everyday sentences (many repeat greetings on purpose)."""
    rng = random.Random(seed)  # noqa: S311  (data generation, not security)
    out: list[str] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.15:
            out.append(rng.choice(_ID_LINES))
            continue
        s = f"{rng.choice(_ID_SUBJ)} {rng.choice(_ID_VERB)} {rng.choice(_ID_OBJ)}"
        if kind < 0.6:
            s += f" {rng.choice(_ID_PLACE)}"
        if rng.random() < 0.5:
            s += f" {rng.choice(_ID_TIME)}"
        out.append(s.capitalize() + rng.choice((".", ".", "?", "!")))
    return out


def sentences(lang: str, seed: int) -> tuple[list[str], list[str]]:
    """(train, heldout) sentence lists for `lang`, shuffled by `seed`."""
    if lang == "en":
        pool = english_fortunes()
    elif lang == "id":
        pool = indonesian_prose() + indonesian_templates(4000, seed=1)
    else:
        raise ValueError(f"unknown language {lang!r}")
    pool = list(dict.fromkeys(pool))
    rng = random.Random(seed)  # noqa: S311
    rng.shuffle(pool)
    train = [s for s in pool if not is_heldout_sentence(s)]
    held = [s for s in pool if is_heldout_sentence(s)]
    return train, held


def chunks(pool: list[str], rng: random.Random, max_words: int = 30) -> Iterator[str]:
    """Endless utterance texts: one to three sentences joined, at most max_words."""
    while True:
        k = rng.choice((1, 1, 2, 2, 3))
        text = " ".join(rng.choice(pool) for _ in range(k))
        yield " ".join(text.split()[:max_words])
