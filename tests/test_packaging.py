"""What `pip install .` asks for on each kind of machine."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


@pytest.mark.parametrize(
    ("platform", "machine", "want"),
    [
        ("linux", "x86_64", "onnxruntime-gpu"),
        ("linux", "aarch64", "onnxruntime-gpu"),
        ("darwin", "arm64", "onnxruntime"),  # no onnxruntime-gpu wheels for macOS
        ("win32", "AMD64", "onnxruntime"),  # nor for Windows laptops on PyPI's terms
        ("linux", "ppc64le", "onnxruntime"),
    ],
)
def test_exactly_one_onnxruntime_per_platform(platform: str, machine: str, want: str) -> None:
    deps = [Requirement(r) for r in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]
    env = {"sys_platform": platform, "platform_machine": machine}
    chosen = [
        r.name for r in deps
        if r.name.startswith("onnxruntime") and (r.marker is None or r.marker.evaluate(env))
    ]  # fmt: skip
    assert chosen == [want]
