"""Text-informed decoding: the transcript pins the viseme sequence, audio places it.

Acoustic recognition alone confuses visemes that sound alike (m and n,
aa and E). When the words are known, the order of visemes is known too, and
the model's per-frame probabilities only have to say where each one starts.
`TextAligner` does that online:

- The text becomes states, one per viseme of each word (repeats merged), with
  an optional pause state between words (`expected_visemes`, espeak-ng's
  phonemes through the same tables the training labels use).
- A forward (filtering) pass of a left-to-right HMM over those states: stay,
  advance, or skip one state (a dropped phone); emissions are the model's
  probabilities of each state's viseme, floored so an inserted or
  mispronounced phone costs little. Only past and current frames are used:
  no latency beyond the model's own lookahead.
- The state posterior gives a text prior over visemes; the output is the
  model's probabilities times that prior (floored, raised to a weight), so
  the text settles what the audio leaves open but cannot outvote audio that
  is sure. The weight follows a running
  agreement between what the text predicted for a frame and what the model
  heard, so where the text is missing, late, or wrong the output falls back
  to acoustic-only decoding, stretch by stretch.
- Text may arrive in pieces (a provider's transcript deltas): `add_text`
  appends words; an unfinished last word waits for the next piece (or
  `final=True`). Past the end of the known text the alignment sits in an
  open "free" state that pulls the blend weight to zero, and new words take
  their mass from it, spread over their first states, so text that arrives
  late catches up with audio already under way.
- Where the provider says when each word starts (ElevenLabs' character
  timings), the onsets are a soft prior on where the alignment may be, and
  their drift is measured and followed (text_timing.py).

See docs/architecture.md ("Text-informed lip sync").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .espeak import espeak_lines
from .phonemes import SAME_AS_PREVIOUS, SILENCE, phone_viseme
from .text_kernel import band, forward
from .text_timing import TimingConfig, TimingPrior

ESPEAK_VOICE = {"en": "en-us", "id": "id"}
_TABLE = {"en": "espeak-en", "id": "espeak-id"}
_STRESS = "',%="


def phonemize(text: str, lang: str) -> list[list[str]]:
    """espeak-ng's phoneme mnemonics, one list per spoken word (numbers expanded)."""
    return [word for token in phonemize_tokens(_tokens(text), lang) for word in token]


def _spans(text: str) -> list[re.Match[str]]:
    """The written tokens of `text` that have a letter or digit to say."""
    return [m for m in re.finditer(r"\S+", text) if any(c.isalnum() for c in m.group())]


def _tokens(text: str) -> list[str]:
    return [m.group() for m in _spans(text)]


def phonemize_tokens(tokens: Sequence[str], lang: str) -> list[list[list[str]]]:
    """Per written token, its spoken words' phonemes ("25" is two words).

    Each written word is phonemized on its own and remembered: a relay session
    sends a transcript piece every few hundred ms, and conversations repeat
    their words, so espeak-ng (a subprocess) runs once per new word, all of a
    piece's new words in one call (one input line gives one output line).
    """
    cache = _WORDS.setdefault(lang, {})
    missing = list(dict.fromkeys(t for t in tokens if t not in cache))
    if missing:
        voice = ESPEAK_VOICE[lang]
        lines = espeak_lines("\n".join(missing), voice)
        if len(lines) != len(missing):  # a token espeak-ng split or dropped: one by one
            lines = [" ".join(espeak_lines(t, voice)) for t in missing]
        if len(cache) > _CACHE_WORDS:
            cache.clear()
        for token, line in zip(missing, lines, strict=True):
            cache[token] = _parse_line(line)
    return [cache[t] if t in cache else _word_now(t, lang) for t in tokens]


_WORDS: dict[str, dict[str, list[list[str]]]] = {}  # language -> written word -> phonemes
_CACHE_WORDS = 50_000


def _word_now(token: str, lang: str) -> list[list[str]]:
    """A token cleared from the cache between the call and its use: phonemize it again."""
    return _parse_line(" ".join(espeak_lines(token, ESPEAK_VOICE[lang])))


def _parse_line(line: str) -> list[list[str]]:
    """`-x --sep=_` output: words apart by spaces, phonemes by "_", stress marks dropped."""
    return [[p.lstrip(_STRESS) for p in w.split("_") if p.lstrip(_STRESS)] for w in line.split()]


def word_visemes(phones: Sequence[str], lang: str) -> list[int]:
    """Visemes of one word's phones, repeats merged; unknown phones are skipped."""
    out: list[int] = []
    for p in phones:
        try:
            v = phone_viseme(_TABLE[lang], p)
        except KeyError:
            continue
        if v in (SAME_AS_PREVIOUS, SILENCE) or (out and out[-1] == v):
            continue
        out.append(v)
    return out


def known_words(text: str, lang: str) -> bool:
    """Whether every word of `text` is phonemized already (no espeak-ng call needed)."""
    cache = _WORDS.get(lang, {})
    return all(t in cache for t in _tokens(text))


def expected_visemes(text: str, lang: str) -> list[list[int]]:
    """Per word of `text`, the visemes it should show."""
    words = [word_visemes(w, lang) for w in phonemize(text, lang)] if text.strip() else []
    return [w for w in words if w]


def timed_visemes(
    text: str, char_ms: Sequence[float], lang: str
) -> tuple[list[list[int]], list[float | None]]:
    """Per spoken word of `text`, its visemes and its onset in frames: the start
    time of the first character of its written token (`char_ms`, one per
    character, NaN where unknown); a token's later spoken words get none."""
    spans = _spans(text)
    words: list[list[int]] = []
    onsets: list[float | None] = []
    for m, spoken in zip(spans, phonemize_tokens([m.group() for m in spans], lang), strict=True):
        ms = char_ms[m.start()] if m.start() < len(char_ms) else math.nan
        for w in (word_visemes(p, lang) for p in spoken):
            if w:
                words.append(w)
                onsets.append(None if math.isnan(ms) else ms / 10)
                ms = math.nan  # only a token's first spoken word starts at its first letter
    return words, onsets


@dataclass(frozen=True)
class TextConfig:
    weight: float = 1.0  # exponent of the text prior in the blend, at full confidence
    closure_weight: float = 1.5  # the same for the bilabial closure (p b m)
    prior_floor: float = 0.05  # what the text prior still grants a viseme it rules out
    p_stay: float = 0.82
    p_skip: float = 0.04  # skip one state: a phone the speaker dropped
    floor: float = 0.03  # emission floor: inserted or mispronounced phones
    agree_low: float = 0.25  # running agreement at or below this: acoustic only
    agree_high: float = 0.5  # at or above this: the full weight
    agree_frames: int = 20  # time constant of the running agreement (10 ms frames)
    catch_up: int = 6  # states new text spreads the waiting mass over
    # Where more text is coming, how far the free state's emission follows the
    # audio's likeliest class: text that lags its audio lets go of it sooner.
    free_follows: float = 0.2
    resync: float = 1e-3  # mass spread ahead each frame, so a lost alignment recovers
    # a provider's word onsets (text_timing.py)
    timing: TimingConfig = field(default_factory=TimingConfig)


# States past the furthest one holding mass that a block of frames includes: mass
# moves at most two states a frame, so a block of 32 cannot reach the edge (the
# resync share aside, a trace).
_AHEAD = 96
_BLOCK = 32
_EDGE = 2  # states at the end of unfinished text that get no say


class TextAligner:
    """Online alignment of known text to a stream's viseme probabilities. Sans-I/O."""

    def __init__(self, lang: str, config: TextConfig | None = None) -> None:
        self.lang = lang
        self.config = config or TextConfig()
        self.reset()

    @property
    def states(self) -> int:
        return len(self._visemes)

    def reset(self) -> None:
        """An interruption or a new turn: forget the text and the alignment."""
        self._pending = ""  # text of an unfinished last word
        self._visemes: list[int] = []  # per state; every word starts with an optional pause
        self._optional: list[bool] = []
        self._as_arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None
        self._alpha = np.array([1.0])  # posterior over the states, then the FREE state
        self._agree = self.config.agree_high  # trusted until the audio says otherwise
        self._ended = False  # the whole transcript is known (a `final` piece came)
        self._pending_ms: list[float] = []  # per character of `_pending`: its start, or NaN
        self._frame = 0  # frames stepped: the stream's clock, 10 ms each
        self.timing = TimingPrior(self.config.timing)

    def take_words(self, text: str, final: bool = False) -> str:
        """Add a transcript piece; return the text of the words it completed.

        A word is complete once whitespace or closing punctuation follows it
        (or `final`); the rest waits for the next piece. Phonemize what this returns (off the event
        loop: espeak-ng is a subprocess) and pass it to `add_visemes`.
        """
        return self.take_timed(text, final)[0]

    def take_timed(
        self, text: str, final: bool = False, char_ms: Sequence[float] | None = None
    ) -> tuple[str, list[float]]:
        """`take_words` for a piece whose characters may have start times (ms on
        the stream's clock, one per character): the completed text and its
        characters' times (NaN where unknown), for `timed_visemes`."""
        if char_ms is None or len(char_ms) != len(text):
            char_ms = [math.nan] * len(text)
        text, times = self._pending + text, self._pending_ms + list(char_ms)
        if final:
            cut = len(text)
            self._ended = True
        elif re.search(r"[.,!?;:\u3002]$", text):  # "mom." ends a word: no need to wait
            cut = len(text)
        else:
            m = re.search(r"\s\S*$", text)
            cut = m.start() if m else 0
        self._pending, self._pending_ms = text[cut:], times[cut:]
        return text[:cut], times[:cut]

    def add_text(self, text: str, final: bool = False) -> None:
        """Append transcript text, phonemized here (blocking; offline use)."""
        done = self.take_words(text, final)
        if done.strip():
            self.add_visemes(expected_visemes(done, self.lang))

    def add_visemes(
        self,
        words: Sequence[Sequence[int]],
        final: bool = False,
        onsets: Sequence[float | None] | None = None,
    ) -> None:
        """Append words already turned into visemes; `final`: no more will come.
        `onsets`: per word, the frame a provider says it starts at, if any."""
        timed = list(onsets) if onsets is not None else [None] * len(words)
        self._append([(list(w), o) for w, o in zip(words, timed, strict=True) if w])
        self._ended = self._ended or final

    def _append(self, words: list[tuple[list[int], float | None]]) -> None:
        if not words:
            return
        first = len(self._visemes)
        self._as_arrays = None
        for w, onset in words:
            self._visemes.append(SILENCE)  # an optional pause before each word
            self._optional.append(True)
            self._visemes.extend(w)
            self._optional.extend([False] * len(w))
            self.timing.add_word(1 + len(w), onset)
        waiting = self._alpha[-1]
        alpha = np.zeros(len(self._visemes) + 1)
        alpha[:first] = self._alpha[:-1]
        k = min(self.config.catch_up, len(self._visemes) - first)
        alpha[first : first + k] += waiting / k
        self._alpha = alpha

    def step(self, probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per-frame probabilities [frames, classes] in; blended probabilities out."""
        if not self._visemes:  # no text yet: nothing to align, the audio decides
            self._frame += len(probs)
            return probs
        if len(probs) <= _BLOCK:
            return self._step(probs)
        return np.concatenate(
            [self._step(probs[i : i + _BLOCK]) for i in range(0, len(probs), _BLOCK)]
        )

    def _step(self, probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        c = self.config
        known_mass = np.flatnonzero(self._alpha[:-1] > 1e-9)  # (the resync trace aside)
        furthest = int(known_mass[-1]) if known_mass.size else 0
        hi = min(len(self._visemes), furthest + _AHEAD)
        vis_all, optional = self._arrays()
        vis = np.append(vis_all[:hi], SILENCE)
        alpha = np.append(self._alpha[:hi], self._alpha[-1])
        # At the edge of text still arriving, the next words are unknown: the audio
        # may already be in them (late text), so the last states' say is withheld
        # until more text, or the transcript's end, comes.
        edge = _EDGE if not self._ended and hi == len(self._visemes) else 0
        # The loop over frames, compiled (text_kernel.py): for each frame, the
        # prediction through the transitions, the running agreement between what
        # the text predicted and what the model heard, the emission update, and
        # the blend: a product, not a mixture, so the text settles what the audio
        # leaves open but cannot outvote audio that is sure (a vowel after a pause).
        trans = band(optional[:hi], hi == len(self._visemes), c.p_stay, c.p_skip, c.resync)
        lo_t, hi_t = self.timing.windows(hi, self._frame)  # the provider's onsets, if any
        out, alpha, self._agree, head = forward(
            alpha, trans, vis, probs.astype(np.float64), self._agree,
            edge, c.floor, c.prior_floor, c.weight, c.closure_weight,
            c.agree_low, c.agree_high, float(c.agree_frames), lo_t, hi_t,
            c.timing.outside, c.free_follows,
        )  # fmt: skip
        self._alpha[:hi], self._alpha[hi:-1], self._alpha[-1] = alpha[:-1], 0.0, alpha[-1]
        if self.timing.timed:
            self.timing.observe(head, self._frame, self._agree >= c.agree_high)
        self._frame += len(probs)
        self._trim()
        return np.asarray(out, probs.dtype)

    def _arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """The states' visemes and optional flags as arrays, made once per change."""
        if self._as_arrays is None:
            self._as_arrays = (
                np.asarray(self._visemes, np.int64),
                np.asarray(self._optional, np.bool_),
            )
        return self._as_arrays

    def _trim(self, keep_behind: int = 40) -> None:
        """Forget states far behind the alignment: long streams stay cheap."""
        head = int(np.argmax(self._alpha))
        cut = head - keep_behind
        if cut <= 0 or self._alpha[:cut].sum() > 1e-6:
            return
        self._visemes = self._visemes[cut:]
        self._optional = self._optional[cut:]
        self._as_arrays = None
        self.timing.trim(cut)
        self._alpha = self._alpha[cut:] / self._alpha[cut:].sum()
