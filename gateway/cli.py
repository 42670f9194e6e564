"""`viseme-gateway serve|gen-token-key|hash-key`."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import hashlib
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import Sequence

from aiohttp import web

from . import logs, routes_ops, workers
from .apikeys import ApiKey
from .app import create_app
from .settings import (
    HELP,
    ConfigError,
    Settings,
    TokenKey,
    env_name,
    load_settings,
    url_settings,
)
from .state import AUTH, LIFECYCLE

log = logging.getLogger("gateway")
# After the drain, requests still in flight get this long before they are
# cancelled (aiohttp's default is 60 s); the Helm chart's grace margin is 15 s.
IN_FLIGHT_GRACE = 10.0


def _parser(provider_modules: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="viseme-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    flags = [(f.name, HELP[f.name]) for f in dataclasses.fields(Settings) if f.name in HELP]
    try:  # the providers' upstream URLs (plugins' too) have flags of their own
        urls = url_settings(provider_modules)
    except ConfigError:
        urls = ()  # reported once the settings are loaded
    flags += [(u.name, f"{u.help} (default {u.default})") for u in urls]
    for name, text in flags:
        serve.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            metavar="VALUE",
            help=f"{text} (env {env_name(name)})",
        )
    commands.add_parser("gen-token-key", help="print a new TOKEN_KEYS entry")
    hash_key = commands.add_parser("hash-key", help="print the sha256: form of an API key")
    hash_key.add_argument("key")
    return parser


def with_dev_defaults(settings: Settings) -> Settings:
    """Fill in what a laptop run lacks: an ephemeral token key and API key, loudly."""
    if not settings.token_keys:
        log.warning(
            "%s is unset: using an ephemeral random token key; signed URLs die with this "
            "process and other replicas cannot read them. Set it in production.",
            env_name("token_keys"),
        )
        key = TokenKey("ephemeral", secrets.token_bytes(32))
        settings = dataclasses.replace(settings, token_keys=(key,))
    if not settings.api_keys and settings.keys_file is None:
        dev_key = "vg_dev_" + secrets.token_urlsafe(24)
        # Printed once, to the terminal only: without it nobody could call this gateway.
        print(
            f"viseme-gateway: {env_name('api_keys')} is unset; this process accepts the "
            f"ephemeral API key: {dev_key}",
            file=sys.stderr,
            flush=True,
        )
        settings = dataclasses.replace(settings, api_keys=(ApiKey.parse(dev_key),))
    return settings


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def worker_count(settings: Settings) -> int:
    """VISEME_GATEWAY_WORKERS, or one per core when Redis can carry revocations."""
    if settings.workers:
        return settings.workers
    if settings.redis_url is None:
        return 1  # revocations live in this process's memory: one process only
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    """One gateway process; with `sock`, a worker on the parent's socket."""
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=IN_FLIGHT_GRACE,
        # aiohttp closes a connection that has not sent a whole request by then:
        # the header timeout (slowloris), and the idle keep-alive limit.
        keepalive_timeout=settings.header_timeout_seconds,
    )
    await runner.setup()
    metrics_runner = await _metrics_listener(app, settings)
    if settings.metrics_port is None and not routes_ops.metrics_on_public_port(settings):
        log.warning(
            "/metrics is not served: off loopback it needs %s (a listener of its own) or %s",
            env_name("metrics_port"),
            env_name("metrics_token"),
        )
    context = _ssl_context(settings)
    site: web.BaseSite
    if sock is None:
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=context)
    else:
        site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    scheme = "https" if settings.tls else "http"
    if sock is None:
        for host, port, *_ in runner.addresses:
            log.info("viseme-gateway listening on %s://%s:%d", scheme, host, port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app[AUTH].reload)  # the keys file, now
    await stop.wait()

    # Readiness drops at once so load balancers stop sending; requests keep being
    # served through the drain period, then open connections are closed.
    app[LIFECYCLE].draining = True
    log.info("draining for %.1f s", settings.drain_seconds)
    await asyncio.sleep(settings.drain_seconds)
    await runner.cleanup()
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    log.info("stopped")


async def _metrics_listener(app: web.Application, settings: Settings) -> web.AppRunner | None:
    """/metrics on its own port; workers share it (SO_REUSEPORT), each sums them all."""
    if settings.metrics_port is None:
        return None
    runner = web.AppRunner(routes_ops.metrics_app(app), handle_signals=False, access_log=None)
    await runner.setup()
    reuse = settings.metrics_port != 0
    await web.TCPSite(runner, settings.host, settings.metrics_port, reuse_port=reuse).start()
    for host, port, *_ in runner.addresses:
        log.info("metrics served at http://%s:%d/metrics", host, port)
    return runner


def main(argv: Sequence[str] | None = None) -> int:
    # Plugin modules first: their URL settings are flags too.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--provider-modules", default=os.environ.get(env_name("provider_modules")))
    modules = (pre.parse_known_args(argv)[0].provider_modules or "").split(",")
    args = _parser([m.strip() for m in modules if m.strip()]).parse_args(argv)
    if args.command == "gen-token-key":
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        print(f"k{secrets.randbelow(10**6):06d}:{key}")
        return 0
    if args.command == "hash-key":
        print("sha256:" + hashlib.sha256(args.key.encode()).hexdigest())
        return 0
    flags = {name: value for name, value in vars(args).items() if name != "command"}
    try:
        settings = load_settings(flags=flags)
    except ConfigError as exc:
        print(f"viseme-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    settings = with_dev_defaults(settings)  # before any fork: every worker shares the keys
    count = worker_count(settings)
    if count == 1:
        asyncio.run(serve(settings))
        return 0
    sock = workers.bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    scheme = "https" if settings.tls else "http"
    log.info("viseme-gateway listening on %s://%s:%d", scheme, host, port)
    return workers.run(count, sock, lambda index: _worker(settings, sock))


def _worker(settings: Settings, sock: socket.socket) -> int:
    asyncio.run(serve(settings, sock))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
