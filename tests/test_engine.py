"""The engine's asyncio shell: splitting, batching and the synchronous core agree."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from gateway.settings import TokenKey
from tests.conftest import b64url
from tests.gateway_proc import GatewayProcess
from tests.speech import espeak_pcm
from viseme_engine.audio import AudioFormat
from viseme_engine.engine import EngineConfig, LoadedModels, VisemeEngine, pieces
from viseme_engine.smoothing import VisemeEvent
from viseme_engine.stream import VisemeStream


@pytest.mark.parametrize("frames", [*range(1, 70), 128, 1000])
def test_pieces_are_powers_of_two_summing_up(frames: int) -> None:
    parts = pieces(frames)
    assert sum(parts) == frames
    assert all(p & (p - 1) == 0 and p <= 64 for p in parts)
    assert parts == sorted(parts, reverse=True)


@pytest.mark.parametrize("split", [False, True])
async def test_engine_streams_match_the_synchronous_core(
    loaded_models: LoadedModels, split: bool
) -> None:
    engine = VisemeEngine(loaded_models, EngineConfig(split_blocks=split))
    await engine.start()
    fmt = AudioFormat("pcm_s16le", 22050)
    texts = ["Bob bought a map.", "Please pay me.", "Mama made bread."]
    clips = [espeak_pcm(t)[0] for t in texts]
    try:

        async def run(data: bytes) -> list[VisemeEvent]:
            stream = engine.open_stream("default", fmt)
            events: list[VisemeEvent] = []
            rng = np.random.default_rng(len(data))
            pos = 0
            while pos < len(data):
                size = int(rng.integers(2000, 12000))
                events += await stream.feed(data[pos : pos + size])
                pos += size
            return events + await stream.flush()

        # Concurrent streams, so their blocks really share batches.
        results = await asyncio.gather(*(run(c) for c in clips))
    finally:
        await engine.stop()
    for clip, events in zip(clips, results, strict=True):
        core = VisemeStream(loaded_models.models["default"], fmt)
        assert events == core.feed(clip) + core.flush()


def test_broken_models_keep_the_gateway_up_but_not_ready(
    token_key: TokenKey, tmp_path: Path
) -> None:
    (tmp_path / "default.onnx").write_bytes(b"not a model")
    gateway = GatewayProcess(
        {
            "VISEME_GATEWAY_API_KEYS": "test-key-alpha-0123456789",
            "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
            "VISEME_GATEWAY_MODELS_DIR": str(tmp_path),
        }
    )
    try:
        base = gateway.wait_listening()
        for _ in range(200):
            health = requests.get(f"{base}/health", timeout=5).json()
            if health["status"] == "degraded":
                break
            time.sleep(0.05)
        assert health["status"] == "degraded"
        assert health["models_loaded"] == []
        ready = requests.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["reasons"][0].startswith("models failed to load")
        assert requests.get(f"{base}/livez", timeout=5).status_code == 200
        response = requests.post(
            f"{base}/v1/visemes",
            json={"audio": "AAAA"},
            headers={"Authorization": "Bearer test-key-alpha-0123456789"},
            timeout=5,
        )
        assert (response.status_code, response.json()) == (
            503,
            {"error": "Viseme engine is not ready", "code": "ENGINE_UNAVAILABLE"},
        )
    finally:
        gateway.stop(timeout=10)


def test_iobinding_runner_matches_the_plain_session(loaded_models: LoadedModels) -> None:
    """The CUDA path's IOBinding wrapper, on a CPU session here: same numbers."""
    from viseme_engine.engine import IoBoundModel

    model = loaded_models.models["default"]
    bound = IoBoundModel(model)
    rng = np.random.default_rng(5)
    audio = (rng.standard_normal((3, 1600)) * 0.1).astype(np.float32)
    state = model.init_state(3)
    plain_logits, plain_state = model.run(audio, state)
    bound_logits, bound_state = bound.run(audio, state)
    assert np.allclose(plain_logits, bound_logits, atol=1e-5)
    assert plain_state.keys() == bound_state.keys()
    for name in plain_state:
        assert np.allclose(plain_state[name], bound_state[name], atol=1e-5)


class FailsOnce:
    """A model whose n-th call fails, as an overloaded engine does mid-block."""

    def __init__(self, model: object, fail_at: int) -> None:
        self._model = model
        self.calls = 0
        self.fail_at = fail_at
        self.lookahead_frames = model.lookahead_frames  # type: ignore[attr-defined]

    def init_state(self, batch: int) -> object:
        return self._model.init_state(batch)  # type: ignore[attr-defined]

    def run(self, audio: object, state: object) -> object:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("overloaded")
        return self._model.run(audio, state)  # type: ignore[attr-defined]


@pytest.mark.parametrize("split", [False, True])
async def test_a_failed_block_runs_again_and_the_stream_stays_aligned(
    loaded_models: LoadedModels, split: bool
) -> None:
    model = FailsOnce(loaded_models.models["default"], fail_at=4)
    broken = LoadedModels({"default": model, "indonesian": model}, "cpu")  # type: ignore[dict-item]
    engine = VisemeEngine(broken, EngineConfig(split_blocks=split))
    await engine.start()
    fmt = AudioFormat("pcm_s16le", 22050)
    pcm, _ = espeak_pcm("Bob may pay my mom a penny.")
    chunks = [pcm[i : i + 4410] for i in range(0, len(pcm), 4410)]  # 100 ms each
    try:
        stream = engine.open_stream("default", fmt)
        events: list[VisemeEvent] = []
        failed = 0
        for chunk in chunks:
            try:
                events += await stream.feed(chunk)
            except RuntimeError:
                failed += 1
        events += await stream.flush()
    finally:
        await engine.stop()
    assert failed == 1
    core = VisemeStream(loaded_models.models["default"], fmt)
    assert events == [e for c in chunks for e in core.feed(c)] + core.flush()
