"""What `pip install .` asks for on each kind of machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
# What a checkout holds beside the sources: environments, data, caches, builds.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".tools", "data", "artifacts", "build", "node_modules", "dist",
    "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
)  # fmt: skip


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


def test_the_plugins_ship_in_the_distribution_as_extras(tmp_path: Path) -> None:
    """`pip install viseme-gateway[pipecat]` / `[livekit]` brings each plugin's package
    (from clients/) and its framework."""
    # Built from a copy: setuptools writes its build/ folder beside the project it builds.
    source = tmp_path / "source"
    shutil.copytree(PYPROJECT.parent, source, ignore=_NOT_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(source), "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("viseme_gateway-*.whl")
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            Requirement(line.split(":", 1)[1].strip())
            for line in built.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    for module in ("viseme_pipecat/processor.py", "viseme_livekit/output.py",
                   "viseme_engine/live.py", "viseme_engine/remote.py"):  # fmt: skip
        assert module in names

    def extra(name: str) -> list[str]:
        marked = [r for r in requires if r.marker is not None and "extra" in str(r.marker)]
        return sorted(r.name for r in marked if r.marker and r.marker.evaluate({"extra": name}))

    extras = {name: extra(name) for name in ("pipecat", "livekit")}
    assert extras == {"pipecat": ["pipecat-ai"], "livekit": ["livekit-agents"]}
