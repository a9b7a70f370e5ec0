"""A student's days: the class's timetable with the changes of each date applied.

``GET /students/{id}/timetable?week=`` and the contact book's day page read through here, in a
fixed number of queries whatever the size of the week: the caller's access to the student (1), the
school's timezone (1), the terms (1), the periods (1), the changes (1), the teachers' names (1).
"""
from __future__ import annotations

import datetime as dt
import re

from service import roster
from service.errors import ValidationError

from .. import policy
from ..models import TimetableChange, TimetablePeriod
from . import common
from .timetables import teacher_ref

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(value: str) -> dt.date:
    """``"2026-W48"`` → the Monday of that ISO week (422 for anything else)."""
    match = WEEK_RE.match(value or "")
    try:
        if not match:
            raise ValueError
        return dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValidationError("The request has invalid fields.",
                              fields={"week": ["An ISO week like 2026-W48."]}) from None


def week_label(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _entry(period: int, start: int, end: int, subject: str, teacher_id, room, status: str, note, names,
           moved_to=None, moved_from=None, change_id=None) -> dict:
    return {"period": period, "start": common.hhmm(start), "end": common.hhmm(end), "subject": subject,
            "teacher": teacher_ref(teacher_id, names), "room": room, "status": status, "note": note,
            "change_id": change_id, "moved_to": moved_to, "moved_from": moved_from}


def class_days(class_id: int | None, school_id: int, start: dt.date, end: dt.date) -> dict[dt.date, list[dict]]:
    """``{date: [period entries]}`` for every date from ``start`` to ``end`` (4 queries)."""
    days = {start + dt.timedelta(days=i): [] for i in range((end - start).days + 1)}
    if class_id is None:
        return days
    terms = roster.terms_between(school_id, start, end)
    periods = list(TimetablePeriod.select().where((TimetablePeriod.school_class == class_id)
                                                  & TimetablePeriod.term.in_([t.id for t in terms]))) if terms else []
    changes = list(TimetableChange.select().where(
        (TimetableChange.school_class == class_id)
        & (TimetableChange.date.between(start, end)
           | ((TimetableChange.kind == "moved") & TimetableChange.to_date.between(start, end)))))
    teacher_ids = {p.teacher_id for p in periods} | {c.teacher_id for c in changes} | {
        c.regular_teacher_id for c in changes}
    names = roster.user_names({t for t in teacher_ids if t})
    slots = {(p.term_id, p.weekday, p.period): p for p in periods}
    by_slot = {(c.date, c.period): c for c in changes}
    for day, entries in days.items():
        term = next((t for t in terms if t.starts_on <= day <= t.ends_on), None)
        if term is None:
            continue
        weekday = day.isoweekday()
        for (term_id, wd, number), p in slots.items():
            if term_id != term.id or wd != weekday:
                continue
            change = by_slot.get((day, number))
            status, teacher, note, moved_to, change_id = "scheduled", p.teacher_id, None, None, None
            if change is not None:
                status, note, change_id = change.kind, change.note, change.id
                if change.kind == "substitute":
                    teacher = change.teacher_id
                elif change.kind == "moved":
                    moved_to = {"date": change.to_date, "period": change.to_period,
                                "start": common.hhmm(change.to_start_min), "end": common.hhmm(change.to_end_min)}
            entries.append(_entry(number, p.start_min, p.end_min, p.subject, teacher, p.room, status, note, names,
                                  moved_to=moved_to, change_id=change_id))
    for change in changes:  # lessons moved into these days
        if change.kind == "moved" and change.to_date in days:
            days[change.to_date].append(_entry(
                change.to_period, change.to_start_min, change.to_end_min, change.subject, change.regular_teacher_id,
                change.room, "moved", change.note, names, change_id=change.id,
                moved_from={"date": change.date, "period": change.period, "start": common.hhmm(change.start_min),
                            "end": common.hhmm(change.end_min)}))
    for entries in days.values():
        entries.sort(key=lambda e: (e["start"], e["period"], e["moved_from"] is not None))
    return days


def student_week(user, student_id: int, week: str | None = None) -> dict:
    """``{week, student_id, class_id, timezone, days: [{date, periods}]}``, Monday to Sunday."""
    student = policy.student_for_view(user, student_id)
    tz = roster.school_timezone(student.school_id)
    monday = parse_week(week) if week else _monday(common.today_in(tz))
    days = class_days(student.school_class_id, student.school_id, monday, monday + dt.timedelta(days=6))
    return {"week": week_label(monday), "student_id": student.id, "class_id": student.school_class_id,
            "timezone": tz, "days": [{"date": day, "periods": entries} for day, entries in days.items()]}


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.isoweekday() - 1)


def timetable_for_day(student_id: int, date: dt.date) -> list[dict]:
    """The student's periods on ``date`` (a date in the school's timezone), changes applied.

    For the contact book's day page; the caller has already authorised the student. Each item:
    ``{period, start, end, subject, teacher: {id, name}|None, room, status, note, change_id,
    moved_to, moved_from}`` (status ``scheduled``|``cancelled``|``substitute``|``moved``).
    """
    student = roster.get_student(student_id)
    return class_days(student.school_class_id, student.school_id, date, date)[date]
