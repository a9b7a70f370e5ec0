"""Teacher office hours: weekly slots in the school's local time (pure functions).

A slot is ``(weekday, start_minute, end_minute)`` with ISO weekdays (1 = Monday … 7 = Sunday)
and minutes after local midnight, ``start < end`` (a slot does not cross midnight).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable
from zoneinfo import ZoneInfo

WEEKDAYS_VI = {1: "Thứ Hai", 2: "Thứ Ba", 3: "Thứ Tư", 4: "Thứ Năm", 5: "Thứ Sáu", 6: "Thứ Bảy", 7: "Chủ Nhật"}

Slot = tuple[int, int, int]


def parse_hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    value = int(hours) * 60 + int(minutes)
    if not (len(hours) == 2 and len(minutes) == 2 and 0 <= int(minutes) < 60 and 0 <= value <= 24 * 60):
        raise ValueError(text)
    return value


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _local(now_utc: dt.datetime, tz: str) -> dt.datetime:
    return now_utc.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(tz))


def is_within(slots: Iterable[Slot], tz: str, now_utc: dt.datetime) -> bool:
    local = _local(now_utc, tz)
    minute = local.hour * 60 + local.minute
    return any(day == local.isoweekday() and start <= minute < end for day, start, end in slots)


def next_start(slots: Iterable[Slot], tz: str, now_utc: dt.datetime) -> dt.datetime | None:
    """The next slot start after ``now_utc`` (naive UTC), or None without slots."""
    slots = list(slots)
    if not slots:
        return None
    zone = ZoneInfo(tz)
    local = _local(now_utc, tz)
    best = None
    for offset in range(0, 8):
        day = local.date() + dt.timedelta(days=offset)
        for weekday, start, _end in slots:
            if weekday != day.isoweekday():
                continue
            if start >= 24 * 60:
                continue
            start_local = dt.datetime(day.year, day.month, day.day, start // 60, start % 60, tzinfo=zone)
            if start_local > local and (best is None or start_local < best):
                best = start_local
        if best is not None:
            break
    if best is None:
        return None
    return best.astimezone(dt.timezone.utc).replace(tzinfo=None)


def describe(start_utc: dt.datetime, tz: str) -> str:
    """``Thứ Hai 30/11 lúc 07:30`` in the school's time."""
    local = _local(start_utc, tz)
    return f"{WEEKDAYS_VI[local.isoweekday()]} {local:%d/%m} lúc {local:%H:%M}"
