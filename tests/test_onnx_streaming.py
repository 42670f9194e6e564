"""Chunked streaming equals whole-file inference; shipped models honour the I/O contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from viseme_engine.onnx_model import HOP, N_CLASSES, OnnxVisemeModel

MODELS = Path(__file__).resolve().parent.parent / "viseme_engine" / "models"
SHIPPED = {"default.onnx": "en", "indonesian.onnx": "id"}


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised model, so the streaming test runs without trained weights."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from viseme_engine.training.export import export_onnx
    from viseme_engine.training.model import ModelConfig, VisemeNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "random.onnx"
    export_onnx(VisemeNet(ModelConfig(channels=64)), path, "en", "test")
    return path


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise with a syllable-rate envelope and pauses, so states see onsets and silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.3)
    return np.asarray(rng.standard_normal(n) * 0.2 * env, np.float32)


def _assert_chunking_exact(model: OnnxVisemeModel, seed: int) -> None:
    rng = np.random.default_rng(seed)
    audio = _speechlike(6.0, seed)[None]
    whole, whole_state = model.run(audio, model.init_state(1))
    state = model.init_state(1)
    parts = []
    pos = 0
    while pos < audio.shape[1]:
        n = int(rng.integers(2, 51)) * HOP  # 20-500 ms
        logits, state = model.run(audio[:, pos : pos + n], state)
        parts.append(logits)
        pos += n
    chunked = np.concatenate(parts, axis=1)
    assert chunked.shape == whole.shape == (1, audio.shape[1] // HOP, N_CLASSES)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    np.testing.assert_array_equal(chunked.argmax(-1), whole.argmax(-1))
    for k in state:
        np.testing.assert_allclose(state[k], whole_state[k], atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_chunks_match_whole_file(random_model: Path, seed: int) -> None:
    _assert_chunking_exact(OnnxVisemeModel.from_path(random_model), seed)


def test_batch_rows_are_independent(random_model: Path) -> None:
    model = OnnxVisemeModel.from_path(random_model)
    a, b = _speechlike(1.0, 3), _speechlike(1.0, 4)
    both, _ = model.run(np.stack([a, b]), model.init_state(2))
    alone, _ = model.run(b[None], model.init_state(1))
    np.testing.assert_allclose(both[1], alone[0], atol=1e-4)


def test_predict_is_frame_aligned_and_flushed(random_model: Path) -> None:
    model = OnnxVisemeModel.from_path(random_model)
    audio = _speechlike(5.03, 5)  # not a multiple of 160 and longer than one predict chunk
    logits = model.predict_logits(audio)
    assert logits.shape == (-(-len(audio) // HOP), N_CLASSES)
    padded = np.zeros((1, (len(logits) + model.lookahead_frames) * HOP), np.float32)
    padded[0, : len(audio)] = audio
    ref, _ = model.run(padded, model.init_state(1))
    np.testing.assert_allclose(logits, ref[0, model.lookahead_frames :], atol=1e-4)


def test_rejects_audio_that_is_not_whole_frames(random_model: Path) -> None:
    model = OnnxVisemeModel.from_path(random_model)
    with pytest.raises(ValueError, match="multiple of 160"):
        model.run(np.zeros((1, 100), np.float32), model.init_state(1))


@pytest.mark.parametrize(("name", "language"), SHIPPED.items())
def test_shipped_model_contract(name: str, language: str) -> None:
    path = MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is not built yet (see viseme_engine/models/*.md)")
    assert path.stat().st_size <= 10 * 1024 * 1024
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["sample_rate"] == "16000"
    assert meta["hop"] == "160"
    assert meta["n_classes"] == "22"
    assert meta["language"] == language
    assert 0 <= int(meta["lookahead_frames"]) <= 5  # at most 50 ms of lookahead
    specs = json.loads(meta["state_specs"])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    assert set(inputs) == {"audio", *specs}
    assert set(outputs) == {"logits", *[f"{k}_out" for k in specs]}
    assert inputs["audio"].type == "tensor(float)"
    assert len(inputs["audio"].shape) == 2
    assert outputs["logits"].shape[2] == N_CLASSES
    for k, dims in specs.items():
        assert k.startswith("state_")
        assert [d for d in inputs[k].shape[1:]] == dims
    model = OnnxVisemeModel.from_path(path)
    _assert_chunking_exact(model, 7)
    pred = model.predict(_speechlike(2.0, 8))
    assert pred.shape == (200,)
    assert pred.dtype == np.uint8
