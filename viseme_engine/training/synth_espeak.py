"""espeak-ng through ctypes: audio plus timed phoneme events.

libespeak-ng reports a PHONEME event at the start of each phoneme (with
espeakINITIALIZE_PHONEME_EVENTS); `audio_position` is in ms. The library keeps
global state, so one process drives one synthesizer at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Synthesis:
    """Audio at `rate` Hz and phones with their END times in seconds."""

    audio: np.ndarray  # int16 mono
    rate: int
    phones: list[str]
    ends: list[float]


class Espeak:
    """A handle on the process-wide libespeak-ng instance."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self._lib = ctypes.CDLL(path)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self.rate = int(
            self._lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
            )
        )
        if self.rate <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        # Keep a reference: ctypes frees the thunk when the Python object dies.
        self._cb = _Callback(self._on_audio)
        self._lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(
        self, wav: ctypes._Pointer[ctypes.c_short], n: int, events: ctypes._Pointer[_Event]
    ) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                self._events.append((ev.id.string.decode("utf-8", "replace"), ev.audio_position))
            i += 1
        return 0

    def synth(
        self, text: str, voice: str, wpm: int = 175, pitch: int = 50, pitch_range: int = 50
    ) -> Synthesis:
        """Speak `text` with `voice` (e.g. "en-us+m3"); pitch/range are 0-100."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")
        for param, value in ((_PARAM_RATE, wpm), (_PARAM_PITCH, pitch)):
            self._lib.espeak_SetParameter(param, value, 0)
        self._lib.espeak_SetParameter(_PARAM_RANGE, pitch_range, 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        rc = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed: {rc}")
        self._lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return _to_phone_ends(audio, self.rate, self._events)


def _to_phone_ends(audio: np.ndarray, rate: int, events: list[tuple[str, int]]) -> Synthesis:
    """Turn start events into end times; the last phone ends with the audio."""
    total = len(audio) / rate
    phones: list[str] = []
    ends: list[float] = []
    for k, (name, start_ms) in enumerate(events):
        end = events[k + 1][1] / 1000.0 if k + 1 < len(events) else total
        phones.append(name)
        ends.append(min(max(end, start_ms / 1000.0), total))
    return Synthesis(audio=audio.astype(np.int16), rate=rate, phones=phones, ends=ends)
