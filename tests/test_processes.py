"""Real gateway processes: two replicas sharing Redis, Redis outages, SIGTERM, TLS, config."""

from __future__ import annotations

import base64
import datetime
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.settings import TokenKey
from tests.conftest import API_KEY, REDIS_URL, b64url
from tests.gateway_proc import GatewayProcess

AUTH = {"Authorization": f"Bearer {API_KEY}"}
OPENAI = {"config": {"provider": "openai", "provider_config": {"ephemeral_token": "ek_x"}}}


def env_for(token_key: TokenKey, **extra: str) -> dict[str, str]:
    return {
        "VISEME_GATEWAY_API_KEYS": API_KEY,
        "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
        **extra,
    }


def token_from(base: str) -> str:
    response = requests.post(f"{base}/v1/get-signed-url", json=OPENAI, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["signed_url"].split("token=")[1])


def introspect(base: str, token: str) -> requests.Response:
    return requests.post(
        f"{base}/v1/tokens/introspect", json={"token": token}, headers=AUTH, timeout=5
    )


@pytest.fixture
def gateways(token_key: TokenKey, redis_prefix: str) -> Iterator[list[GatewayProcess]]:
    env = env_for(
        token_key, VISEME_GATEWAY_REDIS_URL=REDIS_URL, VISEME_GATEWAY_REDIS_PREFIX=redis_prefix
    )
    procs = [GatewayProcess(env), GatewayProcess(env)]
    for proc in procs:
        proc.wait_ready()
    yield procs
    for proc in procs:
        proc.stop(timeout=10)


def test_revocation_through_one_replica_is_honoured_by_the_other(
    gateways: list[GatewayProcess],
) -> None:
    a, b = (g.base_url for g in gateways)
    token = token_from(a)
    assert introspect(b, token).json()["active"] is True
    revoked_at = time.monotonic()
    response = requests.post(
        f"{a}/v1/tokens/revoke", json={"token": token}, headers=AUTH, timeout=5
    )
    assert response.status_code == 200
    while introspect(b, token).json()["active"]:
        assert time.monotonic() - revoked_at < 1.0, "replica B still accepts a revoked token"
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def test_redis_outage_fails_closed_and_recovers(token_key: TokenKey) -> None:
    port = free_port()
    redis_proc = start_redis(port)
    gateway = GatewayProcess(
        env_for(token_key, VISEME_GATEWAY_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    )
    try:
        base = gateway.wait_ready()
        token = token_from(base)
        assert introspect(base, token).json()["active"] is True
        redis_proc.terminate()
        redis_proc.wait()
        response = introspect(base, token)
        assert response.status_code == 503
        assert response.json() == {
            "error": "Revocation store unavailable",
            "code": "STORE_UNAVAILABLE",
        }
        ready = requests.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        assert "redis unreachable" in ready.json()["reasons"]
        assert requests.get(f"{base}/health", timeout=5).json()["redis"] == "unreachable"
        assert requests.get(f"{base}/livez", timeout=5).status_code == 200
        redis_proc = start_redis(port)
        deadline = time.monotonic() + 15
        while requests.get(f"{base}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "gateway did not recover after Redis returned"
            time.sleep(0.2)
        assert introspect(base, token).json()["active"] is True
    finally:
        gateway.stop(timeout=10)
        redis_proc.kill()
        redis_proc.wait()


def test_sigterm_drains_then_exits_zero(token_key: TokenKey) -> None:
    gateway = GatewayProcess(env_for(token_key, VISEME_GATEWAY_DRAIN_SECONDS="1.5"))
    base = gateway.wait_ready()
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    gateway.proc.send_signal(15)
    time.sleep(0.3)
    ready = requests.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["draining"]
    # Still serving during the drain period: in-flight and late requests finish.
    assert requests.get(f"{base}/livez", timeout=5).status_code == 200
    assert gateway.proc.wait(timeout=15) == 0


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_served_directly(token_key: TokenKey, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    gateway = GatewayProcess(
        env_for(token_key, VISEME_GATEWAY_TLS_CERT=str(cert), VISEME_GATEWAY_TLS_KEY=str(key))
    )
    try:
        base = gateway.wait_listening()
        assert base.startswith("https://")
        port = base.rsplit(":", 1)[1]
        context = ssl.create_default_context(cafile=str(cert))
        response = requests.post(
            f"https://localhost:{port}/v1/get-signed-url",
            json=OPENAI,
            headers=AUTH,
            verify=str(cert),
            timeout=5,
        )
        assert response.json()["signed_url"].startswith(f"wss://localhost:{port}/")
        with (
            socket.create_connection(("127.0.0.1", int(port))) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    finally:
        gateway.stop(timeout=10)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"VISEME_GATEWAY_PORT": "http"}, (), "VISEME_GATEWAY_PORT"),
        ({"VISEME_GATEWAY_PORT": "70000"}, (), "VISEME_GATEWAY_PORT"),
        ({}, ("--port", "-1"), "--port"),
        ({"VISEME_GATEWAY_TOKEN_KEYS": "k1:c2hvcnQ"}, (), "VISEME_GATEWAY_TOKEN_KEYS"),
        ({"VISEME_GATEWAY_TOKEN_KEYS": "nokid"}, (), "VISEME_GATEWAY_TOKEN_KEYS"),
        ({"VISEME_GATEWAY_API_KEYS": "short"}, (), "VISEME_GATEWAY_API_KEYS"),
        ({"VISEME_GATEWAY_API_KEYS": "sha256:zz"}, (), "VISEME_GATEWAY_API_KEYS"),
        ({"VISEME_GATEWAY_API_KEYS_FILE": "/nonexistent"}, (), "VISEME_GATEWAY_API_KEYS_FILE"),
        ({"VISEME_GATEWAY_REDIS_URL": "http://x"}, (), "VISEME_GATEWAY_REDIS_URL"),
        ({"VISEME_GATEWAY_PUBLIC_URL": "gw.example.com"}, (), "VISEME_GATEWAY_PUBLIC_URL"),
        ({"VISEME_GATEWAY_OPENAI_WS_URL": "https://x"}, (), "VISEME_GATEWAY_OPENAI_WS_URL"),
        ({"VISEME_GATEWAY_DEVICE": "tpu"}, (), "VISEME_GATEWAY_DEVICE"),
        ({"VISEME_GATEWAY_DRAIN_SECONDS": "soon"}, (), "VISEME_GATEWAY_DRAIN_SECONDS"),
        ({"VISEME_GATEWAY_TLS_CERT": "/etc/hostname"}, (), "VISEME_GATEWAY_TLS"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_variable(
    env: dict[str, str], args: tuple[str, ...], named: str
) -> None:
    result = run_cli(env, "serve", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr


def test_keys_file_and_hashed_keys(token_key: TokenKey, tmp_path: Path) -> None:
    hashed = run_cli({}, "hash-key", "file-key-0123456789abc").stdout.strip()
    assert hashed.startswith("sha256:")
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# operators' keys\n{hashed}\n\n")
    gateway = GatewayProcess(
        {
            "VISEME_GATEWAY_API_KEYS_FILE": str(keys_file),
            "VISEME_GATEWAY_TOKEN_KEYS": f"{token_key.kid}:{b64url(token_key.key)}",
        }
    )
    try:
        base = gateway.wait_listening()
        ok = requests.post(
            f"{base}/v1/get-signed-url",
            json=OPENAI,
            timeout=5,
            headers={"Authorization": "Bearer file-key-0123456789abc"},
        )
        assert ok.status_code == 200
        bad = requests.post(
            f"{base}/v1/get-signed-url",
            json=OPENAI,
            timeout=5,
            headers={"Authorization": f"Bearer {hashed}"},
        )
        assert bad.status_code == 401
    finally:
        gateway.stop(timeout=10)


def test_embedded_defaults_warn_and_print_a_dev_key() -> None:
    gateway = GatewayProcess({})
    try:
        base = gateway.wait_listening()
        assert "VISEME_GATEWAY_TOKEN_KEYS is unset" in gateway.output
        dev_key = gateway.output.split("accepts the ephemeral API key: ")[1].split()[0]
        response = requests.post(
            f"{base}/v1/get-signed-url",
            json=OPENAI,
            timeout=5,
            headers={"Authorization": f"Bearer {dev_key}"},
        )
        assert response.status_code == 200
        health: Any = requests.get(f"{base}/health", timeout=5).json()
        assert health["redis"] == "disabled"
    finally:
        gateway.stop(timeout=10)


def test_gen_token_key_output_is_accepted() -> None:
    entry = run_cli({}, "gen-token-key").stdout.strip()
    _kid, key = entry.split(":")
    assert len(base64.urlsafe_b64decode(key + "=")) == 32
    result = run_cli({"VISEME_GATEWAY_TOKEN_KEYS": entry, "VISEME_GATEWAY_PORT": "x"}, "serve")
    assert result.returncode == 2
    assert "TOKEN_KEYS" not in result.stderr  # the key parsed; the port did not
