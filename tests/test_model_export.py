"""Training smoke run, ONNX export and ONNX-vs-PyTorch parity (needs the `train` extra)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from viseme_engine.onnx_model import OnnxVisemeModel  # noqa: E402
from viseme_engine.training import train as train_mod  # noqa: E402
from viseme_engine.training.augment import AugmentConfig, augment  # noqa: E402
from viseme_engine.training.export import export_onnx, load_onnx  # noqa: E402
from viseme_engine.training.model import ModelConfig, VisemeNet  # noqa: E402


def _fake_dataset(root: Path, n: int = 12) -> None:
    """Noise bursts with random labels: enough to exercise the whole pipeline."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        frames = int(rng.integers(50, 150))
        labels = rng.integers(0, 22, frames).astype(np.uint8)
        audio = (rng.standard_normal(frames * 160 - 37) * 3000).astype(np.int16)
        np.savez(root / f"{i}.npz", audio=audio, labels=labels)
        split = "heldout_sentences" if i % 4 == 0 else "train"
        rows.append({"id": str(i), "path": f"{i}.npz", "lang": "en", "split": split})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_tiny_training_run_exports_a_loadable_model(tmp_path: Path) -> None:
    _fake_dataset(tmp_path)
    out = tmp_path / "run"
    args = train_mod.parse_args(
        [
            "--data",
            str(tmp_path),
            "--out",
            str(out),
            "--steps",
            "3",
            "--workers",
            "0",
            "--batch",
            "2",
            "--max-frames",
            "80",
            "--channels",
            "32",
            "--warmup",
            "1",
            "--no-compile",
        ]
    )
    onnx_path = train_mod.train(args)
    assert (out / "best.pt").exists()
    model = OnnxVisemeModel.from_path(onnx_path)
    assert model.lookahead_frames == 4
    pred = model.predict(np.zeros(16000 + 50, np.float32))
    assert pred.dtype == np.uint8
    assert pred.shape == (101,)
    assert int(pred.max()) < 22


def test_onnx_matches_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = VisemeNet(ModelConfig(channels=48)).eval()
    path = tmp_path / "m.onnx"
    export_onnx(net, path, "en", "test")
    model = OnnxVisemeModel.from_path(path)
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((3, 160 * 123)) * 0.1).astype(np.float32)
    logits, state = model.run(audio, model.init_state(3))
    with torch.no_grad():
        ref, ref_state = net(torch.from_numpy(audio), net.init_state(3))
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4)
    for got, want in zip(state.values(), ref_state, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_load_onnx_recovers_every_parameter(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = VisemeNet(ModelConfig(channels=40, kernel=3)).eval()
    with torch.no_grad():  # non-zero biases and norms, so a swapped tensor would show
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path / "m.onnx"
    export_onnx(net, path, "en", "test")
    back = load_onnx(path)
    assert back.cfg == net.cfg
    want, got = net.state_dict(), back.state_dict()
    assert set(got) == set(want)
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, msg=name)


def test_shipped_model_loads_for_fine_tuning() -> None:
    path = Path(__file__).parents[1] / "viseme_engine" / "models" / "default.onnx"
    net = load_onnx(path)
    model = OnnxVisemeModel.from_path(path)
    audio = (np.random.default_rng(4).standard_normal((1, 160 * 90)) * 0.1).astype(np.float32)
    logits, _ = model.run(audio, model.init_state(1))
    with torch.no_grad():
        ref, _ = net(torch.from_numpy(audio), net.init_state(1))
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4)


def test_augment_keeps_audio_and_labels_aligned() -> None:
    rng = np.random.default_rng(2)
    audio = (rng.standard_normal(160 * 200) * 0.1).astype(np.float32)
    labels = rng.integers(0, 22, 200).astype(np.uint8)
    for _ in range(20):
        a, lab = augment(audio, labels, rng, AugmentConfig(p_mulaw=0.5, p_reverb=0.5))
        assert a.dtype == np.float32
        assert len(a) == 160 * len(lab)
        assert np.all(np.abs(a) <= 1.0)
        assert np.isfinite(a).all()


def test_codec_round_trip_keeps_speech_on_its_labels() -> None:
    from viseme_engine.training.augment import best_lag, codec_roundtrip
    from viseme_engine.training.synth_flite import synth

    syn = synth("slt", text="Bob may pay my mom a penny.")
    import soxr

    speech = soxr.resample(syn.audio.astype(np.float32) / 32768.0, syn.rate, 16000)
    rng = np.random.default_rng(5)
    for _ in range(6):  # both codecs, several bitrates
        out = codec_roundtrip(speech.astype(np.float32), rng)
        assert out.dtype == np.float32
        assert len(out) == len(speech)
        assert abs(best_lag(speech, out, 1600)) <= 16  # within 1 ms: labels still fit
        assert np.corrcoef(speech, out)[0, 1] > 0.8


def test_training_draws_from_every_data_dir_and_masks_unknown_frames(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    _fake_dataset(tmp_path / "a")
    _fake_dataset(tmp_path / "b", n=8)
    for row in (tmp_path / "b" / "manifest.jsonl").read_text().splitlines():
        path = tmp_path / "b" / json.loads(row)["path"]
        with np.load(path) as z:
            audio, labels = z["audio"], z["labels"].copy()
        labels[:20] = train_mod.UNKNOWN  # an unknown word (MFA's spn)
        np.savez(path, audio=audio, labels=labels)
    groups = [train_mod.load_split(tmp_path / d, "train") for d in ("a", "b")]
    only_b = train_mod.Batches(groups, [0.0, 1.0], 4, 400, 4, 0, None)
    _, labels, _ = next(iter(only_b))
    assert not (labels == train_mod.UNKNOWN).any()
    assert (labels[:, :20] == train_mod.IGNORE).all()  # unknown frames are not trained on
    out = tmp_path / "run"
    args = train_mod.parse_args(
        ["--data", str(tmp_path / "a"), str(tmp_path / "b"), "--mix", "0.5", "0.5",
         "--out", str(out), "--steps", "2", "--workers", "0", "--batch", "2",
         "--max-frames", "80", "--channels", "32", "--warmup", "1", "--no-compile"]
    )  # fmt: skip
    train_mod.train(args)
    assert (out / "model.onnx").exists()
    bad = train_mod.parse_args(["--data", "a", "b", "--mix", "1", "--out", str(out)])
    with pytest.raises(SystemExit, match="one weight per"):
        train_mod.train(bad)
