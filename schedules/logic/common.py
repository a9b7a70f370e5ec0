"""Helpers shared by the schedules rules: the clock (tests replace ``now``), times of day, locks."""
from __future__ import annotations

import datetime as dt
import functools
import threading
import time
import zlib
from zoneinfo import ZoneInfo

from service.roster import logic as roster
from service.db import db, is_postgres, utcnow
from service.errors import ValidationError

WEEKDAYS_VI = {1: "Thứ Hai", 2: "Thứ Ba", 3: "Thứ Tư", 4: "Thứ Năm", 5: "Thứ Sáu", 6: "Thứ Bảy", 7: "Chủ Nhật"}
WEEKDAYS_EN = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday", 6: "Saturday", 7: "Sunday"}
KINDS = ("cancelled", "substitute", "moved")


def now() -> dt.datetime:
    """Naive UTC now. Tests set ``schedules.logic.common.now`` to inject time."""
    return utcnow()


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def today_in(tz: str) -> dt.date:
    return now().replace(tzinfo=dt.timezone.utc).astimezone(zone(tz)).date()


def hhmm(minutes: int | None) -> str | None:
    if minutes is None:
        return None
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def minutes_of(value: str, field: str) -> int:
    """``"07:45"`` → 465; anything else → 422 on ``field``."""
    try:
        hours, mins = str(value).split(":")
        if len(hours) != 2 or len(mins) != 2 or not (hours.isdigit() and mins.isdigit()):
            raise ValueError
        h, m = int(hours), int(mins)
        if not (0 <= h <= 23 and 0 <= m <= 59):
            raise ValueError
    except (ValueError, AttributeError):
        raise ValidationError("The request has invalid fields.", fields={field: ["A time HH:MM (00:00–23:59)."]})
    return h * 60 + m


def local_dt(day: dt.date, minutes: int, tz: str) -> dt.datetime:
    """An aware datetime: ``day`` at ``minutes`` after midnight in ``tz``."""
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=zone(tz))


def utc_naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def lock(namespace: str, key: int) -> None:
    """Serialise writers on (namespace, key) until the transaction ends (PostgreSQL advisory lock;
    SQLite's write transaction is taken at once by ``write_transaction``, which serialises already)."""
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)",
                       (zlib.crc32(namespace.encode()) & 0x7FFFFFFF, int(key) % 2**31))


def nest(flat: dict[str, list[str]]) -> dict:
    """``{"periods.1.end": [...]}`` → ``{"periods": {"1": {"end": [...]}}}``, as marshmallow reports nested fields."""
    out: dict = {}
    for path, messages in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node.setdefault(leaf, []).extend(messages)
    return out


TIMEZONE_TTL = 60.0
_tz_cache: dict[int, tuple[str, float]] = {}
_tz_lock = threading.Lock()


def school_timezone(school_id: int) -> str:
    """The school's timezone, cached per process for ``TIMEZONE_TTL`` seconds (it almost never changes;
    a change shows within a minute). Authorisation never reads this cache."""
    hit = _tz_cache.get(school_id)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    tz = roster.school_timezone(school_id)
    with _tz_lock:
        _tz_cache[school_id] = (tz, time.monotonic() + TIMEZONE_TTL)
    return tz
