"""Usage metering per key and UTC day: in Redis (shared, surviving restarts) or memory.

Every amount is an integer (milliseconds, counts, characters) added with
HINCRBY, so concurrent writers from any number of replicas add up exactly.
Each record also adds to the key's month, which the audio quotas read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import StoreUnavailable
from .metrics import Metrics

log = logging.getLogger("gateway")
# The metered amounts; `*_ms` are milliseconds (reported as seconds or minutes).
FIELDS = (
    "sessions",  # relay and stream sessions, counted as they end
    "session_ms",  # their length
    "provider_audio_ms",  # relayed provider audio analysed for visemes
    "visemes",  # viseme entries sent in relay sessions and streams
    "visemes_audio_ms",  # POST /v1/visemes audio
    "stream_audio_ms",  # GET /v1/visemes/stream audio
    "tts_characters",  # POST /v1/visemes-audio text
    "tts_audio_ms",  # the speech it made
)
# What the audio quotas count: every kind of audio the engine analyses.
AUDIO_FIELDS = ("provider_audio_ms", "visemes_audio_ms", "stream_audio_ms", "tts_audio_ms")
KEEP_SECONDS = 400 * 86400  # a day's and a month's entries outlive a yearly report
MAX_DAYS = 366
RESERVE_SECONDS = 3600  # audio reserved by a replica that died is freed after this
# KEYS: the day's hash, the month's, the key's audio in flight. ARGV: amount, day
# limit, month limit (-1: none), reservation ms, then the audio fields. Returns
# 0 (reserved), or 1 (day), 2 (month), 3 (both) for the periods it would go past.
_RESERVE = """
local amount = tonumber(ARGV[1])
local flight = tonumber(redis.call('GET', KEYS[3]) or '0')
local function used(key)
  local total = 0
  for i = 5, #ARGV do total = total + tonumber(redis.call('HGET', key, ARGV[i]) or '0') end
  return total
end
local over = 0
local day, month = tonumber(ARGV[2]), tonumber(ARGV[3])
if day >= 0 and used(KEYS[1]) + flight + amount > day then over = over + 1 end
if month >= 0 and used(KEYS[2]) + flight + amount > month then over = over + 2 end
if over == 0 then
  redis.call('INCRBY', KEYS[3], amount)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return over
"""


def day_of(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d")


def month_of(when: dt.datetime) -> str:
    return when.strftime("%Y-%m")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Usage:
    def __init__(self, redis: aioredis.Redis | None, prefix: str, metrics: Metrics) -> None:
        self._redis = redis
        self._prefix = prefix
        self._metrics = metrics
        self._memory: dict[tuple[str, str], Counter[str]] = {}
        self._keys: set[str] = set()
        self._flight: Counter[str] = Counter()  # memory: audio reserved, per key

    def _key(self, key_id: str, period: str) -> str:
        return f"{self._prefix}usage:{key_id}:{period}"

    async def record(self, key_id: str, **amounts: int) -> None:
        """Add these amounts to the key's day and month (now, UTC)."""
        amounts = {k: v for k, v in amounts.items() if v}
        if not amounts:
            return
        unknown = set(amounts) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown usage fields: {sorted(unknown)}")
        for field, amount in amounts.items():
            self._metrics.usage.labels(key_id, field).inc(amount)
        now = now_utc()
        periods = (day_of(now), month_of(now))
        if self._redis is None:
            self._keys.add(key_id)
            for period in periods:
                self._memory.setdefault((key_id, period), Counter()).update(amounts)
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for period in periods:
                    key = self._key(key_id, period)
                    for field, amount in amounts.items():
                        pipe.hincrby(key, field, amount)
                    pipe.expire(key, KEEP_SECONDS)
                pipe.sadd(f"{self._prefix}usage-keys", key_id)
                await pipe.execute()
        except RedisError as exc:
            self._metrics.usage_lost.inc()
            log.warning("usage of %s not recorded (%s): %s", key_id, type(exc).__name__, amounts)

    async def _read(self, key_id: str, periods: Iterable[str]) -> list[dict[str, int]]:
        periods = list(periods)
        if self._redis is None:
            return [dict(self._memory.get((key_id, p), Counter())) for p in periods]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for period in periods:
                    pipe.hgetall(self._key(key_id, period))
                rows = await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable("Usage store unavailable") from exc
        return [{k.decode(): int(v) for k, v in row.items()} for row in rows]

    async def audio_ms(self, key_id: str, when: dt.datetime) -> tuple[int, int]:
        """The audio counted towards the key's quotas: (this UTC day, this UTC month)."""
        day, month = await self._read(key_id, (day_of(when), month_of(when)))
        return sum(day.get(f, 0) for f in AUDIO_FIELDS), sum(month.get(f, 0) for f in AUDIO_FIELDS)

    async def reserve(
        self, key_id: str, ms: int, day_ms: int | None, month_ms: int | None, when: dt.datetime
    ) -> list[bool]:
        """Reserve `ms` of audio if the day's and the month's audio, with what is in
        flight, stay within `day_ms` and `month_ms`; else reserve nothing. Returns
        which of [day, month] it would go past (all False: reserved)."""
        periods = (day_of(when), month_of(when))
        if self._redis is None:
            rows = [self._memory.get((key_id, p), Counter()) for p in periods]
            used = [sum(row[f] for f in AUDIO_FIELDS) + self._flight[key_id] for row in rows]
            bounds = (day_ms, month_ms)
            over = [b is not None and u + ms > b for u, b in zip(used, bounds, strict=True)]
            if not any(over):
                self._flight[key_id] += ms
            return over
        keys = [self._key(key_id, p) for p in periods] + [f"{self._prefix}audio-in-flight:{key_id}"]
        limits = [-1 if lim is None else lim for lim in (day_ms, month_ms)]
        args: list[int | str] = [ms, *limits, RESERVE_SECONDS * 1000, *AUDIO_FIELDS]
        try:
            code = int(await self._redis.eval(_RESERVE, 3, *keys, *args))
        except RedisError as exc:
            raise StoreUnavailable("Usage store unavailable") from exc
        return [bool(code & 1), bool(code & 2)]

    async def unreserve(self, key_id: str, ms: int) -> None:
        if self._redis is None:
            self._flight[key_id] -= ms
            return
        try:
            await self._redis.decrby(f"{self._prefix}audio-in-flight:{key_id}", ms)
        except RedisError as exc:  # it expires on its own
            log.warning("audio reservation of %s not given back: %s", key_id, exc)

    async def key_ids(self) -> set[str]:
        """Every key with usage on record."""
        if self._redis is None:
            return set(self._keys)
        try:
            members = await self._redis.smembers(f"{self._prefix}usage-keys")
        except RedisError as exc:
            raise StoreUnavailable("Usage store unavailable") from exc
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def days(self, key_id: str, start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
        """The key's usage per day from `start` to `end` (inclusive), days without any left out."""
        dates = [start + dt.timedelta(days=n) for n in range(max(0, (end - start).days + 1))]
        rows = await self._read(key_id, (d.isoformat() for d in dates))
        return {d.isoformat(): row for d, row in zip(dates, rows, strict=True) if row}
