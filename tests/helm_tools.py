"""Render the Helm chart with a real Helm binary and read what it produced.

Helm comes from `./dev.sh test` (`.tools/bin/helm`), or `$HELM`, or PATH. A
missing Helm fails the tests that need it rather than skipping them: CI must
never report a chart as checked when it was not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "viseme-gateway"
RELEASE = "vg"
NAMESPACE = "voice"
# kubernetes-validate schemas: the newest it ships, and the chart's kubeVersion floor.
KUBE_LATEST = "1.37.0"
KUBE_OLDEST = "1.25.0"
# Custom resources kubernetes-validate has no schema for (only Kubernetes' own kinds).
CRD_KINDS = frozenset({"ServiceMonitor", "HTTPRoute"})

Manifest = dict[str, Any]


def helm_binary() -> str:
    candidates = [os.environ.get("HELM", ""), str(ROOT / ".tools" / "bin" / "helm")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("helm")
    if found is None:
        pytest.fail("no helm binary: run ./dev.sh test (installs it into .tools/) or set $HELM")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def template(
    values: Mapping[str, Any], kube_version: str = KUBE_LATEST
) -> subprocess.CompletedProcess[str]:
    """`helm template` with `values` as a values file (JSON is YAML)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        json.dump(values, handle)
    try:
        return helm(
            "template", RELEASE, str(CHART),
            "--namespace", NAMESPACE,
            "--kube-version", kube_version,
            "--values", handle.name,
        )  # fmt: skip
    finally:
        os.unlink(handle.name)


def render(values: Mapping[str, Any], kube_version: str = KUBE_LATEST) -> list[Manifest]:
    result = template(values, kube_version)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kubernetes_validate(manifests: str, kube_version: str) -> subprocess.CompletedProcess[str]:
    """`kubernetes-validate --strict` on a multi-document YAML stream, fed on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", kube_version, "-"],
        input=manifests, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def one(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [
        m for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]  # fmt: skip
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(manifests: Iterable[Manifest]) -> list[str]:
    return sorted(m["kind"] for m in manifests)


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a matchLabels selector picks an object with these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container(deployment: Manifest, name: str | None = None) -> Manifest:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def env_of(c: Manifest) -> dict[str, Manifest]:
    """Env entries by name; a name set twice is a chart bug (the last would win)."""
    entries: list[Manifest] = c.get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"env set twice: {names}"
    return {e["name"]: e for e in entries}


def container_port(c: Manifest, port: int | str) -> int:
    """A probe's port, resolved through the container's named ports."""
    if isinstance(port, int):
        return port
    return int(next(p["containerPort"] for p in c["ports"] if p["name"] == port))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the repository's Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_stage(name: str) -> list[tuple[str, str]]:
    """The instructions of the stage `FROM ... AS name`, up to the next FROM."""
    instructions = dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    for start, end in zip(starts, [*starts[1:], len(instructions)], strict=True):
        if instructions[start][1].endswith(f" AS {name}"):
            return instructions[start + 1 : end]
    raise AssertionError(f"no stage {name} in the Dockerfile")


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """ENV of a stage; values in this Dockerfile have no spaces, so a split is enough."""
    return dict(
        item.split("=", 1) for keyword, rest in stage if keyword == "ENV" for item in rest.split()
    )
