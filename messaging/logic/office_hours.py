"""A teacher's weekly office hours, and their effect on a family's message sent outside them."""
from __future__ import annotations

import collections
import datetime as dt
from typing import Iterable

from flask import current_app

from service.db import write_transaction
from service.errors import ValidationError
from service.prepared import Prepared, any_of
from service.roster import logic as roster

from .. import officehours, policy
from ..models import Conversation, OfficeHour


# prepared: a family's message asks it for the conversation's teachers on every send
_OFFICE_HOURS_OF = Prepared("office_hours_of", lambda p: (
    OfficeHour.select(OfficeHour.teacher, OfficeHour.weekday, OfficeHour.start_minute, OfficeHour.end_minute)
    .where(any_of(OfficeHour.teacher, p.ids)).order_by(OfficeHour.weekday, OfficeHour.start_minute).tuples()))


def office_hours_of(teacher_ids: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
    ids = [int(t) for t in teacher_ids]
    out: dict[int, list[tuple[int, int, int]]] = collections.defaultdict(list)
    if ids:
        for teacher_id, weekday, start_minute, end_minute in _OFFICE_HOURS_OF.run(ids=ids):
            out[teacher_id].append((weekday, start_minute, end_minute))
    return dict(out)


def office_hours(user_id: int) -> dict:
    """The caller's weekly slots (``HH:MM``) and the timezone they are in: the school where the caller
    teaches (the app's default timezone for someone who teaches nowhere)."""
    slots = office_hours_of([user_id]).get(user_id, [])
    schools = [school for role, school in roster.staff_roles(user_id) if role == "teacher"]
    tz = roster.school_timezone(schools[0]) if schools else current_app.config["LIENLAC"].timezone
    return {"slots": [{"weekday": d, "start": officehours.format_hhmm(s), "end": officehours.format_hhmm(e)}
                      for d, s, e in slots], "timezone": tz}


def set_office_hours(user_id: int, slots: list[dict]) -> list[tuple[int, int, int]]:
    """Replace a teacher's weekly office hours (``[{weekday 1-7, start "HH:MM", end "HH:MM"}]``)."""
    policy.require_teacher(user_id)
    parsed = set()
    for i, slot in enumerate(slots):
        try:
            start, end = officehours.parse_hhmm(slot["start"]), officehours.parse_hhmm(slot["end"])
        except (ValueError, KeyError):
            raise ValidationError("Times are HH:MM.", fields={"slots": {i: ["Times are HH:MM."]}}) from None
        if not 1 <= int(slot["weekday"]) <= 7 or start >= end:
            raise ValidationError("A slot starts before it ends, on weekday 1 (Monday) to 7 (Sunday).",
                                  fields={"slots": {i: ["start < end; weekday 1-7."]}})
        parsed.add((int(slot["weekday"]), start, end))
    with write_transaction():
        OfficeHour.delete().where(OfficeHour.teacher == user_id).execute()
        if parsed:
            OfficeHour.insert_many([{"teacher": user_id, "weekday": d, "start_minute": s, "end_minute": e}
                                    for d, s, e in sorted(parsed)]).on_conflict_ignore().execute()
    return office_hours_of([user_id]).get(user_id, [])


def outside_hours(conv: Conversation, teacher_ids: list[int], ts: dt.datetime) -> tuple[set[int], dict | None]:
    """A family's message at ``ts``: the teachers outside their office hours (they get a silent
    push) and the note for the sender (their next office hour), or nothing."""
    slots = office_hours_of(teacher_ids)
    if not slots:
        return set(), None
    tz = roster.school_timezone(conv.school_id)
    outside = {t for t, s in slots.items() if s and not officehours.is_within(s, tz, ts)}
    if not outside:
        return set(), None
    starts = [(officehours.next_start(slots[t], tz, ts), t) for t in outside]
    starts = [(s, t) for s, t in starts if s is not None]
    start, teacher = min(starts) if starts else (None, None)
    text = "Tin nhắn đã được gửi ngoài giờ hỗ trợ phụ huynh của giáo viên."
    if start is not None:
        text += f" Giáo viên sẽ phản hồi từ giờ hỗ trợ tiếp theo: {officehours.describe(start, tz)}."
    return outside, {"kind": "outside_office_hours", "text": text, "next_office_hour": start, "teacher_id": teacher}
