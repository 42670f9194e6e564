"""The micro-batcher: batched results equal solo ones, bounded queues, clear refusals."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from viseme_engine.batcher import EngineOverloaded, MicroBatcher
from viseme_engine.engine import MODELS_DIR
from viseme_engine.onnx_model import OnnxVisemeModel
from viseme_engine.stream import State


@pytest.fixture(scope="module")
def model() -> OnnxVisemeModel:
    return OnnxVisemeModel.from_path(MODELS_DIR / "default.onnx")


async def test_batched_rows_equal_solo_runs(model: OnnxVisemeModel) -> None:
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal(160 * n).astype(np.float32) * 0.1 for n in (4, 4, 4, 10, 10, 25)]
    batcher = MicroBatcher(model, max_wait_ms=20)
    await batcher.start()
    try:
        results = await asyncio.gather(*(batcher.run(b, model.init_state(1)) for b in blocks))
    finally:
        await batcher.stop()
    for block, (logits, state) in zip(blocks, results, strict=True):
        solo, solo_state = model.run(block[None, :], model.init_state(1))
        assert np.allclose(logits, solo[0], atol=1e-4)
        for name in state:
            assert np.allclose(state[name], solo_state[name], atol=1e-4)
    # Three lengths gathered in one window: three inferences, one per length, each
    # block in exactly one of them (the three of 4 frames, the two of 10, the 25).
    assert batcher.stats.batches == 3
    assert (batcher.stats.largest, batcher.stats.rows) == (3, 6)
    assert batcher.stats.longest_samples == 160 * 25


class GatedModel:
    """The real model behind a gate, to hold the worker busy on purpose."""

    def __init__(self, inner: OnnxVisemeModel) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.lookahead_frames = inner.lookahead_frames

    def init_state(self, batch: int) -> State:
        return self.inner.init_state(batch)

    def run(self, audio: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        self.gate.wait(10)
        return self.inner.run(audio, state)


async def test_saturation_is_refused_not_queued_forever(model: OnnxVisemeModel) -> None:
    gated = GatedModel(model)
    batcher = MicroBatcher(gated, max_pending=4, admission_timeout=0.1, max_wait_ms=0)
    await batcher.start()
    block = np.zeros(1600, np.float32)
    try:
        admitted = [asyncio.create_task(batcher.run(block, model.init_state(1))) for _ in range(4)]
        await asyncio.sleep(0.05)
        with pytest.raises(EngineOverloaded):
            await batcher.run(block, model.init_state(1))
        gated.gate.set()
        results = await asyncio.gather(*admitted)
        assert all(logits.shape == (10, 22) for logits, _ in results)
        # Room again once the work drained.
        logits, _ = await batcher.run(block, model.init_state(1))
        assert logits.shape == (10, 22)
    finally:
        gated.gate.set()
        await batcher.stop()


async def test_model_errors_reach_the_caller_and_the_loop_survives(
    model: OnnxVisemeModel,
) -> None:
    batcher = MicroBatcher(model)
    await batcher.start()
    try:
        with pytest.raises(ValueError, match="multiple of 160"):
            await batcher.run(np.zeros(100, np.float32), model.init_state(1))
        logits, _ = await batcher.run(np.zeros(320, np.float32), model.init_state(1))
        assert logits.shape == (2, 22)
    finally:
        await batcher.stop()
