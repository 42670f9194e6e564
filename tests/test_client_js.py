"""The JS client kit (clients/js): its own node tests, and its tables against the
gateway's (viseme_engine is the source of truth for the viseme mappings and poses)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from viseme_engine.phonemes import NUM_VISEMES, OCULUS_NAMES, SAPI_TO_OCULUS_NAME
from viseme_engine.poses import ARKIT_NAMES, POSES

KIT = Path(__file__).resolve().parent.parent / "clients" / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is required for the JS kit")
TABLES = """
import * as t from "./src/index.js";
const poses = t.POSES.map((_, v) => Array.from(t.poseWeights(v)));
console.log(JSON.stringify({
  arkit: t.ARKIT_NAMES, oculus: t.OCULUS_NAMES, sapiToOculus: t.SAPI_TO_OCULUS,
  oculusToSapi: t.OCULUS_TO_SAPI, poses,
}));
"""


def node(*args: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, *args], cwd=KIT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_kits_own_tests_pass() -> None:
    result = node("--test", "test/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout


def test_the_js_tables_are_the_gateways() -> None:
    result = node("--input-type=module", "-e", TABLES)
    assert result.returncode == 0, result.stderr
    tables: dict[str, Any] = json.loads(result.stdout)
    assert tables["arkit"] == list(ARKIT_NAMES)
    assert tables["oculus"] == list(OCULUS_NAMES)
    assert tables["sapiToOculus"] == [SAPI_TO_OCULUS_NAME[v] for v in range(NUM_VISEMES)]
    # Float32 in JS: equal to the 3-decimal weights within float32's rounding.
    assert len(tables["poses"]) == NUM_VISEMES
    for v, row in enumerate(tables["poses"]):
        assert row == pytest.approx(POSES[v].tolist(), abs=1e-6), v
    # Each Oculus name's picture is a SAPI viseme that maps back to it.
    for name, sapi in tables["oculusToSapi"].items():
        assert SAPI_TO_OCULUS_NAME[sapi] == name
    assert set(tables["oculusToSapi"]) == set(OCULUS_NAMES)


def test_the_package_is_dependency_free_and_typed() -> None:
    package = json.loads((KIT / "package.json").read_text())
    assert "dependencies" not in package
    assert package["type"] == "module"
    assert (KIT / package["types"]).is_file()
    declared = (KIT / "src" / "index.d.ts").read_text()
    exported = node(
        "--input-type=module",
        "-e",
        'import * as k from "./src/index.js"; console.log(Object.keys(k).join(" "))',
    ).stdout.split()
    for name in exported:  # every export is declared
        assert f" {name}" in declared or f"{name}(" in declared, name
    sources = [p.read_text() for p in (KIT / "src").glob("*.js")]
    imports = [
        line
        for text in sources
        for line in text.splitlines()
        if line.startswith(("import ", "export ")) and " from " in line
    ]
    assert all('from "./' in line for line in imports), imports  # nothing from outside
