"""What a user checks first: espeak-ng speech in, lips closed on m/b/p, silence in pauses.

The reference timings come from espeak-ng's own phoneme events (the training
labels' source); the gateway only hears the audio, as a WAV over HTTP.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import wave
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import API_KEY
from viseme_engine.engine import LoadedModels

Client = TestClient[web.Request, web.Application]
SENTENCE = "Bob may pay my mom a penny. Please be happy, Pam."


def espeak_example(text: str, voice: str) -> dict[str, np.ndarray]:
    """Audio and frame labels from libespeak-ng in a fresh process: the library is a
    process-wide singleton whose state other tests' voices leave behind."""
    script = (
        "import sys, io, numpy as np\n"
        "from viseme_engine.training.datagen import to_example\n"
        "from viseme_engine.training.synth_espeak import Espeak\n"
        "ex = to_example(Espeak().synth(sys.argv[1], sys.argv[2]), 'espeak-en')\n"
        "buf = io.BytesIO(); np.savez(buf, audio=ex['audio'], labels=ex['labels'])\n"
        "sys.stdout.buffer.write(buf.getvalue())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, text, voice], capture_output=True, check=True, timeout=60
    ).stdout
    with np.load(io.BytesIO(out)) as data:
        return {"audio": data["audio"], "labels": data["labels"]}


def runs(labels: np.ndarray, value: int) -> list[tuple[int, int]]:
    """[start, end) frame runs where labels == value."""
    mask = np.concatenate([[0], (labels == value).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(mask))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def wav16k(pcm: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def timeline(events: list[dict[str, int]], frames: int) -> np.ndarray:
    """Per-10 ms frame viseme from the change events (each holds until the next)."""
    track = np.zeros(frames, np.int64)
    for event in events:
        track[min(frames, event["offset"] // 10) :] = event["visemeId"]
    return track


@pytest.mark.parametrize("voice", ["en-us", "en+f5"])  # f5: a variant held out of training
async def test_lips_close_on_bilabials_and_rest_in_pauses(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    loaded_models: LoadedModels,
    voice: str,
) -> None:
    example = espeak_example(SENTENCE, voice)
    labels = example["labels"]
    client = await aiohttp_client(create_app(settings, models=loaded_models))
    body = {"audio": base64.b64encode(wav16k(example["audio"])).decode()}
    response = await client.post(
        "/v1/visemes", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert response.status == 200
    events = [
        viseme
        for block in (await response.text()).split("\n\n")
        if block.startswith("data: ")
        for viseme in json.loads(block[6:])["visemes"]
    ]
    track = timeline(events, len(labels))
    closures = runs(labels, 21)
    assert len(closures) >= 8  # b, b, m, p, m, m, p, b, p, m
    for start, end in closures:
        # The eval's bilabial recall rule: 21 shown within 30 ms of the closure.
        window = track[max(0, start - 3) : end + 3]
        assert 21 in window, f"lips stay open over the closure at {start * 10} ms: {window}"
    speech = np.flatnonzero(labels)
    pauses = [
        (s, e) for s, e in runs(labels, 0) if s > speech[0] and e <= speech[-1] and e - s >= 15
    ]
    assert pauses, "the sentence break should be a labelled pause"
    for start, end in pauses:
        assert 0 in track[start:end], f"no silence shown in the pause at {start * 10} ms"
