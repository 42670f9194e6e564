"""Which device the engine runs on: CUDA when present and working, CPU otherwise.

onnxruntime-gpu lists CUDAExecutionProvider as *available* on machines with no
GPU at all and silently falls back to CPU when a session cannot use it, so
neither `get_available_providers()` nor the providers asked for say where a
session runs. We ask the CUDA driver whether a device exists, and (in the
engine) read `session.get_providers()` after creating the session.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Literal

Device = Literal["cuda", "cpu"]
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports; 0 without a driver or device."""
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        libcuda = ctypes.CDLL(name)
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if libcuda.cuInit(0) != 0 or libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def requested_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers to ask onnxruntime for, given `--device auto|cuda|cpu`."""
    if device == "cpu":
        return [CPU_PROVIDER]
    if device == "cuda" and CUDA_PROVIDER not in available:
        raise RuntimeError("--device cuda: this onnxruntime build has no CUDAExecutionProvider")
    if CUDA_PROVIDER in available and (device == "cuda" or cuda_device_count() > 0):
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]


def device_in_use(session_providers: list[str]) -> Device:
    """Where a created session really runs (its first provider)."""
    return "cuda" if session_providers and session_providers[0] == CUDA_PROVIDER else "cpu"
