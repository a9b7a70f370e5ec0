"""Time, school days and the per-school write lock shared by the contact-book modules."""
from __future__ import annotations

import datetime as dt
import zlib
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from service.db import db, is_postgres, utcnow

_LOCK_NAMESPACE = 0x636B62  # "ckb": first key of the two-int advisory locks


def now() -> dt.datetime:
    """Naive UTC now; tests inject a clock with ``app.extensions["lienlac.clock"] = callable``."""
    clock = current_app.extensions.get("lienlac.clock") if has_app_context() else None
    return clock() if clock is not None else utcnow()


def local_date(at: dt.datetime, timezone: str) -> dt.date:
    """The date of a naive UTC time in ``timezone``."""
    return at.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone)).date()


def local_time(at: dt.datetime, timezone: str) -> dt.time:
    return at.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone)).time().replace(tzinfo=None)


def today(timezone: str, at: dt.datetime | None = None) -> dt.date:
    return local_date(at or now(), timezone)


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The naive UTC start and end (exclusive) of a local day."""
    tz = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return (start.astimezone(dt.timezone.utc).replace(tzinfo=None),
            end.astimezone(dt.timezone.utc).replace(tzinfo=None))


def lock(kind: str, key: int) -> None:
    """Serialise writers of one thing (e.g. a school's attendance) until the transaction ends.

    PostgreSQL: a transaction-level advisory lock; SQLite's IMMEDIATE transaction already
    serialises every writer.
    """
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)",
                       (_LOCK_NAMESPACE ^ (zlib.crc32(kind.encode()) & 0xFFFF), int(key) % 2_147_483_647))


def fmt_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")
