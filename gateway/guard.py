"""Each key's policy, applied: who calls, from which Origin, what it may use, and its
sessions (held, time-limited, metered). The counters are gateway/limiter.py's and
gateway/usage.py's; the bounds are the key's policy (gateway/policy.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from .errors import (
    KEY_DISABLED,
    QUOTA_USED,
    TIME_LIMIT,
    AuthError,
    ModelNotAllowed,
    OriginNotAllowed,
    ProviderNotAllowed,
    QuotaExceeded,
    SessionLimit,
    StoreUnavailable,
)
from .keys import Key
from .sessions import Closable
from .state import AUTH, CODEC, KEY_ID, LIMITER, SETTINGS, USAGE
from .tokens import TokenClaims
from .usage import now_utc

METER_SECONDS = 10.0  # how often an open session's usage is written and its quota checked


def own_origin(request: web.Request) -> str:
    """This gateway's origin (its own pages, /demo, are same-origin and always allowed)."""
    public = request.app[SETTINGS].public_url
    if public:
        parts = urlsplit(public)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.scheme}://{request.host}".lower()


def admit_origin(request: web.Request, key: Key) -> None:
    origin = request.headers.get("Origin")
    if origin is None or origin.lower() == own_origin(request):
        return
    if not key.policy.allows_origin(origin):
        raise OriginNotAllowed(f"Origin {origin} is not allowed for this API key")


def caller(request: web.Request) -> Key:
    """The request's API key (Authorization: Bearer), enabled, from an allowed Origin."""
    key = request.app[AUTH].authenticate(request.headers.get("Authorization"))
    request[KEY_ID] = key.key_id
    admit_origin(request, key)
    return key


def token_owner(request: web.Request, claims: TokenClaims) -> Key:
    """The key a signed-URL token was issued to: still enabled, from an allowed Origin."""
    key = request.app[AUTH].get(claims.sub)
    if key is None or not key.enabled:
        raise AuthError("The API key this token was issued to is not enabled")
    request[KEY_ID] = key.key_id
    admit_origin(request, key)
    return key


def allow(key: Key, provider: str | None = None, model: str | None = None) -> None:
    if provider is not None and not key.policy.allows_provider(provider):
        raise ProviderNotAllowed(f"Provider {provider!r} is not allowed for this API key")
    if model is not None and not key.policy.allows_model(model):
        raise ModelNotAllowed(f"Viseme model {model!r} is not allowed for this API key")


def _next_day(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)


def _next_month(now: dt.datetime) -> dt.datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


async def check_quota(app: web.Application, key: Key, adding_ms: float = 0.0) -> None:
    """QuotaExceeded (429, Retry-After: the next UTC day or month) once the key's audio
    minutes are used up, or would be by `adding_ms` more."""
    policy = key.policy
    if policy.audio_minutes_per_day is None and policy.audio_minutes_per_month is None:
        return
    now = now_utc()
    day_ms, month_ms = await app[USAGE].audio_ms(key.key_id, now)
    over = [
        quota is not None and (used >= quota * 60_000 or used + adding_ms > quota * 60_000)
        for quota, used in (
            (policy.audio_minutes_per_day, day_ms),
            (policy.audio_minutes_per_month, month_ms),
        )
    ]
    _refuse_quota(key, over, now)


def _refuse_quota(key: Key, over: list[bool], now: dt.datetime) -> None:
    """QuotaExceeded for the periods used up ([day, month]): Retry-After is the end of
    the latest, since audio waits for all of them."""
    periods = [
        (key.policy.audio_minutes_per_day, "day", _next_day(now)),
        (key.policy.audio_minutes_per_month, "month", _next_month(now)),
    ]
    used_up = [period for period, is_over in zip(periods, over, strict=True) if is_over]
    if used_up:
        quota, name, until = used_up[-1]
        raise QuotaExceeded(
            f"Audio quota of {quota:g} minutes per {name} used up for this key",
            (until - now).total_seconds(),
        )


@contextlib.asynccontextmanager
async def quota_reserved(app: web.Application, key: Key, ms: float) -> AsyncIterator[None]:
    """Hold `ms` of the key's audio quota while a request analyses it: checked and
    reserved in one atomic step, so requests at once cannot go past the quota
    together (QuotaExceeded when they would). Given back on leaving, once the
    request's usage is recorded."""
    policy = key.policy
    if policy.audio_minutes_per_day is None and policy.audio_minutes_per_month is None:
        yield
        return
    now, amount = now_utc(), int(ms)
    limits = [
        None if q is None else int(q * 60_000)
        for q in (policy.audio_minutes_per_day, policy.audio_minutes_per_month)
    ]
    over = await app[USAGE].reserve(key.key_id, amount, limits[0], limits[1], now)
    _refuse_quota(key, over, now)
    try:
        yield
    finally:
        await app[USAGE].unreserve(key.key_id, amount)


class Throttle:
    """A token bucket for one session's client messages: past the burst, `take` waits.

    Session-local (one session lives in one process), on the relay's hot path, so a
    few lines here rather than a shared-store limiter.
    """

    def __init__(self, per_second: float, burst: int) -> None:
        self._rate, self._burst = per_second, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()
        self.waited = 0  # messages that had to wait

    async def take(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            self.waited += 1
            await asyncio.sleep((1 - self._tokens) / self._rate)
            self._tokens, self._at = 1.0, time.monotonic()
        self._tokens -= 1


@dataclass
class Meter:
    """What one open session used so far; the watcher writes it as it grows."""

    audio_ms: float = 0.0
    visemes: int = 0
    _written_audio: int = 0
    _written_visemes: int = 0

    def take(self) -> tuple[int, int]:
        """The audio (ms) and visemes not written yet (whole ms of the running total)."""
        audio = int(self.audio_ms) - self._written_audio
        visemes = self.visemes - self._written_visemes
        self._written_audio += audio
        self._written_visemes += visemes
        return audio, visemes


@contextlib.asynccontextmanager
async def session(
    request: web.Request, key: Key, claims: TokenClaims | None
) -> AsyncIterator[None]:
    """Admit one relay or stream session: quota, concurrent sessions, uses of its token.
    Checked before the upgrade, so a refusal is an HTTP answer (429, 403)."""
    app = request.app
    await check_quota(app, key)
    limiter = app[LIMITER]
    policy = key.policy
    lease = await limiter.acquire("sessions", key.key_id, policy.concurrent_sessions, SessionLimit)
    try:
        if claims is not None:
            codec = app[CODEC]
            ttl = claims.exp + codec.leeway - time.time()
            await limiter.use_token(claims.jti, policy.sessions_per_token, ttl)
        yield
    finally:
        await limiter.release(lease)


async def metered(
    app: web.Application,
    key: Key,
    target: Closable,
    meter: Meter,
    audio_field: str,
    run: Awaitable[None],
) -> None:
    """Run an open session under its key's time limit and quota, writing its usage."""
    usage, started = app[USAGE], time.monotonic()

    async def write() -> None:
        audio, visemes = meter.take()
        await usage.record(key.key_id, **{audio_field: audio}, visemes=visemes)

    async def watch() -> None:
        deadline = started + key.policy.max_session_seconds
        while True:
            await asyncio.sleep(min(METER_SECONDS, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                await target.close(TIME_LIMIT)
                return
            await asyncio.shield(write())  # a cancel now must not lose what it took
            current = app[AUTH].get(key.key_id)
            if current is None or not current.enabled:
                await target.close(KEY_DISABLED)
                return
            try:
                await check_quota(app, current)
            except QuotaExceeded:
                await target.close(QUOTA_USED)
                return
            except StoreUnavailable:
                continue  # Redis away: the time limit still holds; the quota waits for it

    watcher = asyncio.create_task(watch(), name="watch-session")
    try:
        await run
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        session_ms = int((time.monotonic() - started) * 1000)
        audio, visemes = meter.take()
        # One write with the session's count and length: once it is in, all of it is.
        await usage.record(
            key.key_id, **{audio_field: audio}, visemes=visemes, session_ms=session_ms, sessions=1
        )
