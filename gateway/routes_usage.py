"""GET /v1/usage: a key's metered usage per UTC day (an admin key: every key's)."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from .access import api_key
from .errors import BadRequest, Forbidden
from .state import AUTH, USAGE
from .usage import FIELDS, MAX_DAYS, now_utc


def _date(request: web.Request, name: str, default: dt.date) -> dt.date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Invalid query: {name} must be a date, YYYY-MM-DD") from None


async def usage(request: web.Request) -> web.Response:
    key = api_key(request)
    today = now_utc().date()
    end = _date(request, "to", today)
    # At most MAX_DAYS days at a time: an earlier `from` is moved up (the answer says so).
    start = max(_date(request, "from", end), end - dt.timedelta(days=MAX_DAYS - 1))
    wanted = request.query.get("key_id")
    if not key.admin:
        if wanted not in (None, key.key_id):
            raise Forbidden("Only an admin key sees other keys' usage")
        ids = [key.key_id]
    elif wanted is not None:
        ids = [wanted]
    else:
        configured = {k.key_id for k in request.app[AUTH].ring.keys}
        ids = sorted(configured | await request.app[USAGE].key_ids())
    keys = []
    for key_id in ids:
        days = await request.app[USAGE].days(key_id, start, end)
        total = {f: sum(day.get(f, 0) for day in days.values()) for f in FIELDS}
        named = request.app[AUTH].get(key_id)
        keys.append(
            {
                "key_id": key_id,
                "name": named.name if named else "",
                "days": {d: {f: row.get(f, 0) for f in FIELDS} for d, row in days.items()},
                "total": total,
            }
        )
    return web.json_response({"from": start.isoformat(), "to": end.isoformat(), "keys": keys})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/usage", usage)
