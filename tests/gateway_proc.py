"""Run the real gateway as a subprocess on 127.0.0.1 port 0 and find its port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

_LISTENING = re.compile(r"listening on (https?://[\d.]+:\d+)")


class GatewayProcess:
    def __init__(self, env: Mapping[str, str], args: tuple[str, ...] = ()) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("VISEME_GATEWAY_")}
        full_env.update(
            {
                "VISEME_GATEWAY_HOST": "127.0.0.1",
                "VISEME_GATEWAY_PORT": "0",
                "VISEME_GATEWAY_DRAIN_SECONDS": "0",
                "VISEME_GATEWAY_VISEME_DEADLINE_MS": "0",  # as tests/conftest.py says
            }
        )
        full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", *args],
            env=full_env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._found = threading.Event()
        self.base_url = ""
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match and not self._found.is_set():
                self.base_url = match.group(1)
                self._found.set()

    def wait_listening(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while not self._found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start:\n" + "".join(self.lines))
        return self.base_url

    def wait_ready(self, timeout: float = 60.0) -> str:
        """Wait for the port, then for /readyz (the models load in the background)."""
        import urllib.error
        import urllib.request

        base = self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:  # noqa: S310  # our own loopback URL
                    if response.status == 200:
                        return base
            except urllib.error.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("gateway did not become ready:\n" + self.output)
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    @property
    def output(self) -> str:
        return "".join(self.lines)
