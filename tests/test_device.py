"""Device selection: what to ask onnxruntime for, and what a session really uses."""

from __future__ import annotations

import pytest

from viseme_engine import device
from viseme_engine.device import CPU_PROVIDER, CUDA_PROVIDER


def test_cpu_is_always_cpu() -> None:
    assert device.requested_providers("cpu", [CUDA_PROVIDER, CPU_PROVIDER]) == [CPU_PROVIDER]


def test_auto_needs_a_real_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime-gpu lists CUDA even on machines without a GPU: ask the driver.
    monkeypatch.setattr(device, "cuda_device_count", lambda: 0)
    assert device.requested_providers("auto", [CUDA_PROVIDER, CPU_PROVIDER]) == [CPU_PROVIDER]
    monkeypatch.setattr(device, "cuda_device_count", lambda: 1)
    assert device.requested_providers("auto", [CUDA_PROVIDER, CPU_PROVIDER]) == [
        CUDA_PROVIDER,
        CPU_PROVIDER,
    ]
    assert device.requested_providers("auto", [CPU_PROVIDER]) == [CPU_PROVIDER]


def test_cuda_without_the_provider_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="CUDAExecutionProvider"):
        device.requested_providers("cuda", [CPU_PROVIDER])


def test_device_in_use_reads_the_session() -> None:
    assert device.device_in_use([CUDA_PROVIDER, CPU_PROVIDER]) == "cuda"
    assert device.device_in_use([CPU_PROVIDER]) == "cpu"


def test_this_machine_has_no_cuda_device() -> None:
    # The CI and development machines have no GPU; the real driver query says so.
    assert device.cuda_device_count() == 0


def test_forced_cuda_on_a_cpu_machine_refuses_to_fall_back() -> None:
    from viseme_engine.engine import MODELS_DIR, load_model

    with pytest.raises(RuntimeError, match="CUDA"):
        load_model(MODELS_DIR / "default.onnx", "cuda", threads=1)
