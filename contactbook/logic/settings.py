"""Per-school contact-book settings: the start time (a first gate ``in`` after it is late) and the
school days (ISO weekdays; leave requests mark only those days, gate events mark attendance only
on those days)."""
from __future__ import annotations

import datetime as dt

from service.roster import logic as roster
from service.db import write_transaction
from service.errors import ValidationError

from .. import policy
from ..models import ContactBookSetting
from .common import now

DEFAULT_START = "07:30"
DEFAULT_DAYS = (1, 2, 3, 4, 5)


def _parse_hhmm(value: str) -> dt.time:
    hours, _, minutes = (value or "").partition(":")
    try:
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return dt.time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValidationError("The start time is HH:MM.", fields={"start_time": ["HH:MM (00:00-23:59)."]}) from exc


def of_school(school_id: int) -> dict:
    """``{school_id, start_time: "07:30", school_days: [1..7], timezone}`` (defaults without a row)."""
    row = ContactBookSetting.get_or_none(ContactBookSetting.school == school_id)
    return {"school_id": school_id,
            "start_time": row.start_time if row else DEFAULT_START,
            "school_days": [int(d) for d in row.school_days.split(",") if d] if row else list(DEFAULT_DAYS),
            "timezone": roster.school_timezone(school_id)}


def start_time(settings: dict) -> dt.time:
    return _parse_hhmm(settings["start_time"])


def is_school_day(settings: dict, day: dt.date) -> bool:
    return day.isoweekday() in settings["school_days"]


def get(user, school_id: int) -> dict:
    policy.school_staff(user, school_id)
    return of_school(school_id)


def update(user, school_id: int, start: str | None = None, school_days: list[int] | None = None) -> dict:
    """Admins of the school; what is not given keeps its value."""
    school_id = policy.school_admin(user, school_id)
    current = of_school(school_id)
    values = {}
    if start is not None:
        values["start_time"] = _parse_hhmm(start).strftime("%H:%M")
    if school_days is not None:
        days = sorted(set(school_days))
        if not days or any(not 1 <= d <= 7 for d in days):
            raise ValidationError("School days are ISO weekdays 1-7 (Monday 1), at least one.",
                                  fields={"school_days": ["ISO weekdays 1-7, at least one."]})
        values["school_days"] = ",".join(str(d) for d in days)
    if values:
        row = {"start_time": current["start_time"],
               "school_days": ",".join(str(d) for d in current["school_days"]),
               **values, "updated_by": getattr(user, "id", user), "updated_at": now()}
        with write_transaction():
            (ContactBookSetting.insert(school=school_id, **row)
             .on_conflict(conflict_target=[ContactBookSetting.school], update=row).execute())
    return of_school(school_id)
