# ruff: noqa: RUF002  (IPA letters in docstrings are the subject of this module)
"""Phoneme -> viseme tables: the one place that decides which mouth shape a phone gets.

Viseme IDs are Microsoft SAPI / Azure's 0-21 (docs/protocols.md):
0 silence, 1 æ ə ʌ, 2 ɑ, 3 ɔ, 4 ɛ ʊ (ey eh uh), 5 ɝ, 6 j i ɪ, 7 w u, 8 o, 9 aʊ,
10 ɔɪ, 11 aɪ, 12 h, 13 ɹ, 14 l, 15 s z, 16 ʃ tʃ dʒ ʒ, 17 ð θ, 18 f v,
19 d t n, 20 k g ŋ, 21 p b m.

Phone sets covered: espeak-ng mnemonics (as libespeak-ng reports them in
phoneme events, English and Indonesian tables), ARPAbet as flite and
festival's English voices print it, and the phone sets of the festival
Italian (lp/pc diphone), Finnish (suopuhe), Czech (Brailcom) and Catalan (UPC)
voices. Mouth shapes follow
articulation, so a phone of any language maps by where the lips and tongue are.

Pure Python on purpose: the runtime may import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SILENCE = 0
BILABIAL = 21
NUM_VISEMES = 22
# A phone that only modifies its neighbour (length mark, stress, syllabic
# marker) keeps the previous phone's viseme.
SAME_AS_PREVIOUS = 255

# The Meta/Oculus 15-viseme names, in Oculus' order.
OCULUS_NAMES = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
)  # fmt: skip

# SAPI 0-21 -> Oculus name. SAPI merges n into 19 (DD), so Oculus "nn" only
# receives l; h has no Oculus viseme and takes E, the neutral half-open mouth;
# r-coloured ɝ goes to RR because the lips shape it like r.
SAPI_TO_OCULUS_NAME: Mapping[int, str] = {
    0: "sil", 1: "aa", 2: "aa", 3: "oh", 4: "E", 5: "RR", 6: "ih", 7: "ou", 8: "oh",
    9: "aa", 10: "oh", 11: "aa", 12: "E", 13: "RR", 14: "nn", 15: "SS", 16: "CH",
    17: "TH", 18: "FF", 19: "DD", 20: "kk", 21: "PP",
}  # fmt: skip
SAPI_TO_OCULUS: tuple[int, ...] = tuple(
    OCULUS_NAMES.index(SAPI_TO_OCULUS_NAME[v]) for v in range(NUM_VISEMES)
)

# --- consonants shared by all languages (espeak-ng mnemonics) -------------
_ESPEAK_PAUSES = ("_", "_:", "_!", "_^_", "_X1", "_|", "_::", "_;_", "||", "_\x01")
# stress and length marks, syllable and tone markers
_ESPEAK_MODIFIERS = (":", "-", "*", "#X1", "#@", "#a", "#e", "#i", "#o", "#u", "'", ",", "%",
                     "=", "%%", "'!", "''", ",,", "1")  # fmt: skip
_ESPEAK_CONSONANTS: dict[str, int] = {
    # lips closed
    "p": 21, "b": 21, "m": 21, "m-": 21, "B": 21,
    # lip-teeth
    "f": 18, "v": 18, "v#": 18,
    # tongue between teeth
    "T": 17, "D": 17,
    # tongue tip: t d n (and the alveolar/dental/retroflex variants)
    "t": 19, "d": 19, "t#": 19, "t2": 19, "d#": 19, "t[": 19, "d[": 19, "n": 19,
    "n-": 19, "n.": 19, "n^": 19,
    # tongue back: k g ŋ, palatal and uvular stops and fricatives, glottal stop
    # (mouth held as for k: Indonesian writes its final glottal stop as k)
    "k": 20, "g": 20, "N": 20, "N-": 20, "c": 20, "J": 20, "q": 20, "x": 20, "Q": 20,
    "Q^": 20, "Q\"": 20, "X": 20, "?": 20,
    "h": 12,
    "s": 15, "z": 15, "s.": 15, "z.": 15, "s;": 15, "z;": 15, "z#": 15, "z/2": 15,
    "S": 16, "Z": 16, "S;": 16, "Z;": 16, "tS": 16, "dZ": 16, "tS;": 16, "dZ;": 16,
    # ç: Indonesian "sy" is spoken ʃ and espeak's id table prints it as C
    "C": 16,
    "l": 14, "l/": 14, "l/2": 14, "l/3": 14, "l^": 14, "l.": 14, "L/": 14, "L": 14,
    "l-": 14, "l#": 14,
    "r": 13, "r/": 13, "R": 13, "R2": 13, "R3": 13, "r-": 13, "r\"": 13, "r.": 13,
    "**": 13,
    "j": 6, ";": 6, "J^": 6, "w": 7, "w#": 7, "w2": 7, "ts": 15,
    # the generic vowels of espeak-ng's base tables, inherited by both languages
    "@-": 1, "a/": 1, "EI": 4, "U": 4, "Y": 7, "y": 7, "eU": 4, "iU": 6, "oI": 10,
    "uI": 7, "aI2": 11,
}  # fmt: skip

_ESPEAK_EN_VOWELS: dict[str, int] = {
    "@": 1, "@2": 1, "@5": 1, "@#": 1, "a": 1, "a#": 1, "a2": 1, "aa": 1, "a#2": 1,
    "V": 1, "VR": 1,
    "A:": 2, "A@": 2, "A#": 2, "A~": 2, "0": 2, "0#": 2, "02": 2,
    "O": 3, "O:": 3, "O2": 3, "O@": 3, "o@": 3, "O~": 3,
    "E": 4, "E#": 4, "E2": 4, "e": 4, "e#": 4, "e:": 4, "e@": 4, "eI": 4, "U": 4, "U@": 4,
    "3": 5, "3:": 5,
    "I": 6, "I#": 6, "I2": 6, "I2#": 6, "i": 6, "i:": 6, "i@": 6, "i@3": 6, "IR": 6,
    "u:": 7, "u": 7,
    "o": 8, "o:": 8, "oU": 8, "oU#": 8,
    "aU": 9, "aU@": 9, "OI": 10, "aI": 11, "aI@": 11, "aI3": 11,
    # syllabic dark l ("bottle"): the tongue gesture is what shows
    "@L": 14,
}  # fmt: skip

# Indonesian has five vowels plus schwa; its open a is spoken with the jaw
# lower than English æ, hence 2 rather than 1.
_ESPEAK_ID_VOWELS: dict[str, int] = {
    "a": 2, "a/": 2, "@": 1, "e": 4, "E": 4, "E2": 4, "eI": 4, "i": 6, "o": 8, "O": 3, "u": 7,
    "aU": 9, "aI": 11, "OI": 10, "@U": 8,
}  # fmt: skip


def _espeak_table(vowels: Mapping[str, int]) -> dict[str, int]:
    table = dict(_ESPEAK_CONSONANTS)
    table.update(vowels)
    table.update({p: SILENCE for p in _ESPEAK_PAUSES})
    table.update({p: SAME_AS_PREVIOUS for p in _ESPEAK_MODIFIERS})
    return table


ESPEAK_EN: Mapping[str, int] = _espeak_table(_ESPEAK_EN_VOWELS)
ESPEAK_ID: Mapping[str, int] = _espeak_table(_ESPEAK_ID_VOWELS)

# --- ARPAbet (flite cmu_us_*, festival radio phoneset) --------------------
ARPABET: Mapping[str, int] = {
    "pau": 0, "h#": 0, "brth": 0, "sil": 0,
    "ae": 1, "ax": 1, "ah": 1, "aa": 2, "ao": 3, "ey": 4, "eh": 4, "uh": 4,
    "er": 5, "axr": 5, "y": 6, "iy": 6, "ih": 6, "ix": 6, "w": 7, "uw": 7, "ow": 8,
    "aw": 9, "oy": 10, "ay": 11, "hh": 12, "hv": 12, "r": 13, "l": 14, "el": 14,
    "s": 15, "z": 15, "sh": 16, "ch": 16, "jh": 16, "zh": 16, "th": 17, "dh": 17,
    "f": 18, "v": 18, "d": 19, "t": 19, "n": 19, "dx": 19, "en": 19, "nx": 19,
    "k": 20, "g": 20, "ng": 20, "p": 21, "b": 21, "m": 21, "em": 21,
}  # fmt: skip

# --- festival Italian (lp/pc diphone) and Finnish (suopuhe) voices --------
# Stressed vowels carry a trailing 1 ("a1") and Finnish long phones a ":";
# `phone_viseme` strips both.
FESTIVAL_IT: Mapping[str, int] = {
    "#": 0, "a": 2, "e": 4, "E": 4, "i": 6, "o": 8, "O": 3, "u": 7,
    "p": 21, "b": 21, "m": 21, "f": 18, "v": 18, "t": 19, "d": 19, "n": 19, "nf": 19,
    "ng": 20, "k": 20, "g": 20, "s": 15, "z": 15, "ts": 15, "dz": 15, "S": 16,
    "tS": 16, "dZ": 16, "Z": 16, "l": 14, "L": 14, "r": 13, "j": 6, "w": 7, "J": 19,
    "gn": 19, "ll": 14,
}  # fmt: skip
FESTIVAL_FI: Mapping[str, int] = {
    "#": 0, "##": 0, "a": 2, "e": 4, "i": 6, "o": 8, "u": 7, "y": 7, "ä": 1, "ö": 4,
    "@": 1, "7": 4, "&": 3, "T": 17, "D": 17, "L": 14, "Z": 16,
    "p": 21, "b": 21, "m": 21, "f": 18, "v": 18, "t": 19, "d": 19, "n": 19, "N": 20,
    "k": 20, "g": 20, "s": 15, "z": 15, "S": 16, "h": 12, "l": 14, "r": 13, "j": 6,
    "c": 20, "x": 20, "w": 7, "q": 20,
}  # fmt: skip

# --- festival Czech (Brailcom dita/krb/machac diphone) voices -------------
# "~" marks palatal/postalveolar phones (t~ = ť, c~ = č, s~ = š, r~ = ř),
# "*" an allophone (n* = ŋ before k/g, r~* = voiceless ř); "_" is the stroke
# between two vowels in hiatus and keeps the mouth of the vowel before it.
FESTIVAL_CS: Mapping[str, int] = {
    "#": 0, "_": SAME_AS_PREVIOUS, "a": 2, "e": 4, "i": 6, "o": 8, "u": 7,
    "p": 21, "b": 21, "m": 21, "f": 18, "v": 18, "t": 19, "d": 19, "n": 19, "t~": 19,
    "d~": 19, "n~": 19, "n*": 20, "k": 20, "g": 20, "ch": 20, "h": 12, "c": 15,
    "dz": 15, "s": 15, "z": 15, "c~": 16, "dz~": 16, "s~": 16, "z~": 16, "j": 6, "l": 14,
    "r": 13, "r~": 13, "r~*": 13,
}  # fmt: skip
# --- festival Catalan (upc_ca_ona_hts, central Catalan) --------------------
FESTIVAL_CA: Mapping[str, int] = {
    "pau": 0, "#": 0, "_": 0, "ax": 1, "a": 2, "e": 4, "E": 4, "i": 6, "j": 6, "o": 8,
    "O": 3, "u": 7, "w": 7, "p": 21, "b": 21, "m": 21, "f": 18, "t": 19, "d": 19,
    "n": 19, "J": 19, "k": 20, "g": 20, "l": 14, "L": 14, "r": 13, "rr": 13, "s": 15,
    "z": 15, "S": 16, "Z": 16,
}  # fmt: skip

TABLES: Mapping[str, Mapping[str, int]] = {
    "espeak-en": ESPEAK_EN,
    "espeak-id": ESPEAK_ID,
    "arpabet": ARPABET,
    "festival-it": FESTIVAL_IT,
    "festival-fi": FESTIVAL_FI,
    "festival-cs": FESTIVAL_CS,
    "festival-ca": FESTIVAL_CA,
}

# Oral stops: espeak counts their silent closure in the phone before them, and
# every synthesizer's burst follows a closure the mouth already shows.
STOPS: frozenset[str] = frozenset(
    {"p", "b", "t", "d", "k", "g", "t#", "t2", "d#", "t[", "d[", "c", "J", "q", "?",
     "tS", "dZ", "ch", "jh", "dx", "ts", "dz", "t~", "d~", "c~", "dz~"}
)  # fmt: skip


def phone_viseme(table: str, phone: str) -> int:
    """Viseme of one phone; may be SAME_AS_PREVIOUS. KeyError if unknown."""
    mapping = TABLES[table]
    if phone in mapping:
        return mapping[phone]
    # festival's lexical stress digit ("a1", "ey1") does not change the mouth
    # and neither does a length mark ("a:"; Finnish "7:" is a long ö)
    for stripped in (phone.rstrip(":"), phone.rstrip("0123456789:")):
        if stripped and stripped in mapping:
            return mapping[stripped]
    raise KeyError(f"{table}: no viseme for phone {phone!r}")


def phones_to_visemes(table: str, phones: Sequence[str]) -> list[int]:
    """Visemes of a phone sequence, with modifiers resolved to their neighbour."""
    out: list[int] = []
    for phone in phones:
        v = phone_viseme(table, phone)
        out.append((out[-1] if out else SILENCE) if v == SAME_AS_PREVIOUS else v)
    return out


def to_oculus(visemes: Sequence[int]) -> list[int]:
    """Map SAPI IDs to indices into OCULUS_NAMES."""
    return [SAPI_TO_OCULUS[v] for v in visemes]
