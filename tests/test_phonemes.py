"""Every phone the synthesizers can emit has a viseme, and the tables agree with SAPI."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from viseme_engine import phonemes as P
from viseme_engine.training import synth_festival

PHONTAB_DIRS = (Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"), Path("/usr/share/espeak-ng-data"))


def _phontab() -> dict[str, tuple[int, list[str]]]:
    """espeak-ng's compiled phoneme tables: name -> (parent index, mnemonics).

    Layout (espeak-ng src/libespeak-ng/synthdata.c): a count byte, 3 pad bytes,
    then per table: n_phonemes, includes (parent index + 1), 2 pad, a 32-byte
    name and n_phonemes 16-byte entries whose first 4 bytes pack the mnemonic.
    """
    path = next(d / "phontab" for d in PHONTAB_DIRS if (d / "phontab").exists())
    data = path.read_bytes()
    tables: dict[str, tuple[int, list[str]]] = {}
    pos = 4
    for _ in range(data[0]):
        n, includes = data[pos], data[pos + 1]
        name = data[pos + 4 : pos + 36].split(b"\0")[0].decode()
        pos += 36
        names = []
        for _k in range(n):
            (mnemonic,) = struct.unpack_from("<I", data, pos)
            pos += 16
            names.append(struct.pack("<I", mnemonic).split(b"\0")[0].decode("latin-1"))
        tables[name] = (includes, [s for s in names if s])
    return tables


def _emittable(table: str) -> set[str]:
    tables = _phontab()
    order = list(tables)
    out: set[str] = set()
    while True:
        includes, names = tables[table]
        out.update(names)
        if includes == 0:
            return out
        table = order[includes - 1]


EN_TABLES = ("en", "en-us", "en-rp", "en-sc", "en-us-nyc", "en-wi", "en-n", "en-wm")


@pytest.mark.parametrize("table", EN_TABLES)
def test_every_espeak_english_phoneme_has_a_viseme(table: str) -> None:
    missing = sorted(p for p in _emittable(table) if p not in P.ESPEAK_EN)
    assert missing == []


def test_every_espeak_indonesian_phoneme_has_a_viseme() -> None:
    missing = sorted(p for p in _emittable("id") if p not in P.ESPEAK_ID)
    assert missing == []


# CMU's 39 phones plus flite's pause
ARPABET_39 = [
    "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g", "hh",
    "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
    "uh", "uw", "v", "w", "y", "z", "zh", "pau",
]  # fmt: skip


def _festival_phone_set(voice: str) -> list[str]:
    script = (f"(voice_{voice})\n(format t \"%l\" (mapcar car (cadr (assoc 'phones "
              "(PhoneSet.description '(phones))))))\n")  # fmt: skip
    out = subprocess.run(
        ["festival", "--pipe"], input=script, capture_output=True, text=True, check=True
    ).stdout
    return out.strip().strip("()").split()


@pytest.mark.parametrize("voice", sorted(synth_festival.VOICES))
def test_every_festival_voice_phone_has_a_viseme(voice: str) -> None:
    phones = _festival_phone_set(voice)
    assert len(phones) > 20  # the voice loaded and listed its phone set
    table = synth_festival.VOICES[voice]
    missing = []
    for phone in phones:
        try:
            P.phone_viseme(table, phone)
        except KeyError:
            missing.append(phone)
    assert missing == []


def test_every_arpabet_phone_has_a_viseme() -> None:
    assert [p for p in ARPABET_39 if p not in P.ARPABET] == []


@pytest.mark.parametrize(
    ("table", "phone", "viseme"),
    [
        ("arpabet", "p", 21), ("arpabet", "m", 21), ("arpabet", "f", 18), ("arpabet", "th", 17),
        ("arpabet", "ch", 16), ("arpabet", "ow", 8), ("arpabet", "ay", 11), ("arpabet", "er", 5),
        ("espeak-en", "D", 17), ("espeak-en", "tS", 16), ("espeak-en", "aI", 11),
        ("espeak-en", "oU", 8), ("espeak-en", "N", 20), ("espeak-en", "_:", 0),
        ("espeak-id", "a", 2), ("espeak-id", "n^", 19), ("espeak-id", "C", 16),
        ("festival-it", "a1", 2), ("festival-it", "tS", 16), ("festival-fi", "t:", 19),
        ("festival-cs", "c~", 16), ("festival-cs", "a:", 2), ("festival-cs", "n*", 20),
        ("festival-cs", "r~*", 13), ("festival-ca", "ax", 1), ("festival-ca", "O1", 3),
        ("festival-ca", "J", 19),
    ],
)  # fmt: skip
def test_known_phones(table: str, phone: str, viseme: int) -> None:
    assert P.phone_viseme(table, phone) == viseme


def test_modifier_takes_previous_viseme() -> None:
    assert P.phones_to_visemes("espeak-en", ["_", "m", ":", "A:"]) == [0, 21, 21, 2]
    # Czech hiatus stroke ("_" between two vowels) keeps the vowel before it
    assert P.phones_to_visemes("festival-cs", ["#", "a", "_", "o", "#"]) == [0, 2, 2, 8, 0]


def test_unknown_phone_raises() -> None:
    with pytest.raises(KeyError):
        P.phone_viseme("arpabet", "qq")


def test_every_viseme_in_range_and_oculus_total() -> None:
    for table in P.TABLES.values():
        assert all(0 <= v < P.NUM_VISEMES or v == P.SAME_AS_PREVIOUS for v in table.values())
    assert len(P.SAPI_TO_OCULUS) == 22
    assert set(P.SAPI_TO_OCULUS) == set(range(15))  # every Oculus viseme is reachable
    assert P.to_oculus([0, 21, 18, 14]) == [0, 1, 2, 8]
