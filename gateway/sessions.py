"""Open relay sessions: closed when their token is revoked, or at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from .errors import REVOKED, SHUTDOWN, Close, StoreUnavailable
from .revocation import RevocationStore, Revoked
from .state import STORE
from .tokens import TokenClaims

log = logging.getLogger("gateway")
RECHECK_SECONDS = 30.0


class Closable(Protocol):
    async def close(self, close: Close) -> None: ...


@dataclass(eq=False)
class Session:
    """An open connection made with a signed-URL token: a relay, or a viseme stream."""

    claims: TokenClaims | None  # None: opened with an API key, closed only at shutdown
    relay: Closable


class Sessions:
    def __init__(self) -> None:
        self._open: set[Session] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, session: Session) -> None:
        self._open.add(session)

    def discard(self, session: Session) -> None:
        self._open.discard(session)

    async def revoke(self, event: Revoked) -> None:
        hit = [
            s
            for s in self._open
            if s.claims is not None and event.covers(s.claims.sub, s.claims.jti, s.claims.iat)
        ]
        await asyncio.gather(*(s.relay.close(REVOKED) for s in hit))
        if hit:
            log.info("closed %d session(s) of a revoked token", len(hit))

    async def recheck(self, store: RevocationStore) -> None:
        """Ask the store about every open session: for revocations pub/sub lost."""
        hit = []
        for s in list(self._open):
            if s.claims is None:
                continue
            try:
                if await store.is_revoked(s.claims.sub, s.claims.jti, s.claims.iat):
                    hit.append(s)
            except StoreUnavailable:
                return  # the next recheck will do
        await asyncio.gather(*(s.relay.close(REVOKED) for s in hit))
        if hit:
            log.info("closed %d session(s) of a token revoked while the channel was away", len(hit))

    async def close_all(self) -> None:
        await asyncio.gather(*(s.relay.close(SHUTDOWN) for s in list(self._open)))


SESSIONS = web.AppKey("sessions", Sessions)


async def close_sessions(app: web.Application) -> None:
    """on_shutdown: runs before aiohttp waits for handlers, so open sockets get 1001."""
    await app[SESSIONS].close_all()


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow revocations for the app's lifetime."""
    sessions = app[SESSIONS]

    store = app[STORE]

    async def follow() -> None:
        async for event in store.subscribe():
            if event is None:
                await sessions.recheck(store)
            else:
                await sessions.revoke(event)

    async def every_while() -> None:  # a safety net under pub/sub's at-most-once
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            await sessions.recheck(store)

    tasks = [asyncio.create_task(follow(), name="follow-revocations"),
             asyncio.create_task(every_while(), name="recheck-sessions")]  # fmt: skip
    yield
    for task in tasks:
        # Cancel until it ends: a client library may swallow one cancellation.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            await task
