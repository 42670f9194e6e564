"""Schemathesis fuzzes every operation of /openapi.json on a real gateway process,
with all of its checks (its default) and tests/schemathesis.toml's expectations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.app import providers_for
from gateway.openapi import document
from gateway.settings import Settings, TokenKey
from tests.conftest import API_KEY, REDIS_URL, b64url
from tests.gateway_proc import GatewayProcess


def test_schemathesis_finds_no_server_errors(token_key: TokenKey, redis_prefix: str) -> None:
    gateway = GatewayProcess(
        {
            "VISEME_GATEWAY_API_KEYS": API_KEY,
            "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
            "VISEME_GATEWAY_REDIS_URL": REDIS_URL,
            "VISEME_GATEWAY_REDIS_PREFIX": redis_prefix,
            # Schema-valid TTS requests would go to the real providers: give them a
            # loopback port where nothing listens (port 9, discard).
            "VISEME_GATEWAY_ELEVENLABS_API_URL": "http://127.0.0.1:9",
            "VISEME_GATEWAY_OPENAI_API_URL": "http://127.0.0.1:9",
            "VISEME_GATEWAY_ELEVENLABS_WS_URL": "ws://127.0.0.1:9",
            "VISEME_GATEWAY_OPENAI_WS_URL": "ws://127.0.0.1:9",
            "VISEME_GATEWAY_GEMINI_WS_URL": "ws://127.0.0.1:9",
        }
    )
    try:
        base = gateway.wait_listening()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(Path(__file__).with_name("schemathesis.toml")),
                "run",
                f"{base}/openapi.json",
                "--header",
                f"Authorization: Bearer {API_KEY}",
                "--max-examples",
                "60",
                # A fixed seed keeps CI deterministic; run by hand without it to explore.
                "--seed",
                "20261121",
                # One worker: with threads, hypothesis's ast.parse trips CPython 3.11's
                # "AST constructor recursion depth mismatch" now and then.
                "--workers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        # Up to 10 s of in-flight grace (gateway/cli.py) plus start-up of the stop.
        gateway.stop(timeout=30)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    operations = sum(len(ops) for ops in document(providers_for(Settings()))["paths"].values())
    # Every operation but GET /openapi.json, which schemathesis skips as the schema's own URL.
    assert f"Tested: {operations - 1}" in result.stdout
    assert "Traceback" not in gateway.output
