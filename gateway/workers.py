"""Several worker processes on one port: the parent binds, forks, supervises.

One Python process runs one event loop on one core, so `serve` forks
VISEME_GATEWAY_WORKERS children (default: one per core when Redis is set) that
all accept on the socket the parent bound; the kernel spreads connections over
them. Each child is a whole gateway (app, engine, sessions); what they must
agree on lives outside them: revocations in Redis (so more than one worker
needs Redis; every child follows the revocation channel) and metrics in
prometheus_client's multiprocess files, which any child's /metrics sums
(the session gauge as a live sum). The parent forwards SIGTERM, SIGINT and SIGHUP,
restarts a child that dies, and exits when all have stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("gateway")
RESTART_PAUSE = 1.0  # a child that dies at once is not restarted in a tight loop
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def bind(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port), backlog=2048)
    sock.set_inheritable(True)
    return sock


def run(count: int, sock: socket.socket, child: Callable[[int], int]) -> int:
    """Fork `count` children running `child(index)` on `sock`; return when all stopped."""
    metrics_dir = tempfile.mkdtemp(prefix="viseme-gateway-metrics-")
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def start(index: int) -> None:
        # Signals wait while forking: a SIGTERM between the fork and the
        # bookkeeping would miss the new child, and shutdown would hang on it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            pid = os.fork()
            if pid == 0:  # the child: a whole gateway of its own
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until serve() reloads on it
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
                _use_multiprocess_metrics(metrics_dir)
                code = 1
                try:
                    code = child(index)
                except BaseException:
                    log.exception("worker %d failed", index)
                finally:
                    os._exit(code)
            children[pid] = index
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGTERM)

    def reload(signum: int, frame: FrameType | None) -> None:
        for pid in children:  # each worker reads the keys file again
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, reload)
    for index in range(count):
        start(index)
    log.info("started %d workers", count)
    failed = False
    try:
        while children:
            pid, status = os.wait()
            if pid not in children:
                continue
            index = children.pop(pid)
            _mark_dead(metrics_dir, pid)
            if not stopping:
                log.warning(
                    "worker %d (pid %d) died with status %d; restarting", index, pid, status
                )
                failed = True
                time.sleep(RESTART_PAUSE)
                if not stopping:  # a SIGTERM may have come during the pause
                    start(index)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sock.close()
    return 1 if failed and not stopping else 0


def _use_multiprocess_metrics(path: str) -> None:
    """Metrics made from here on live in files every worker's /metrics reads."""
    from prometheus_client import values

    os.environ[METRICS_DIR_ENV] = path
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def _mark_dead(path: str, pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
