"""A student's days: the class's timetable with the changes of each date applied.

``GET /students/{id}/timetable?week=`` and the contact book's day page read through here, in a
fixed number of queries whatever the size of the week: the caller's access to the student (1), the
periods of the week's terms with their teachers' names (1), the changes with theirs (1); the
school's timezone comes from a per-process cache (``common.school_timezone``, 60 s). The two reads
join the roster's ``term`` and ``user`` tables read-only (one query instead of three: this is the
page families open most).
"""
from __future__ import annotations

import datetime as dt
import re

import peewee as pw

from service.roster import logic as roster
from service.errors import ValidationError
from service.prepared import Prepared
from service.accounts.models import User
from service.roster.models import Student, Term

from .. import policy
from ..models import TimetableChange, TimetablePeriod
from . import common
from .timetables import teacher_ref

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(value: str) -> dt.date:
    """``"2026-W48"`` → the Monday of that ISO week (422 for anything else)."""
    match = WEEK_RE.match(value or "")
    try:
        if not match or not 1900 <= int(match.group(1)) <= 3000:
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


def _class_periods(p):
    teacher = User.alias()
    return (TimetablePeriod.select(
        TimetablePeriod.term, Term.starts_on, Term.ends_on, TimetablePeriod.weekday, TimetablePeriod.period,
        TimetablePeriod.start_min, TimetablePeriod.end_min, TimetablePeriod.subject, TimetablePeriod.teacher,
        teacher.name, TimetablePeriod.room)
        .join(Term, on=(TimetablePeriod.term == Term.id))
        .join_from(TimetablePeriod, teacher, pw.JOIN.LEFT_OUTER, on=(TimetablePeriod.teacher == teacher.id))
        .where((TimetablePeriod.school_class == p.klass) & (Term.starts_on <= p.end) & (Term.ends_on >= p.start))
        .order_by(TimetablePeriod.weekday, TimetablePeriod.period).tuples())


def _class_changes(p):
    substitute, regular = User.alias(), User.alias()
    return (TimetableChange.select(TimetableChange, substitute.name.alias("substitute_name"),
                                   regular.name.alias("regular_name"))
            .join_from(TimetableChange, substitute, pw.JOIN.LEFT_OUTER, on=(TimetableChange.teacher == substitute.id))
            .join_from(TimetableChange, regular, pw.JOIN.LEFT_OUTER,
                       on=(TimetableChange.regular_teacher == regular.id))
            .where((TimetableChange.school_class == p.klass)
                   & (TimetableChange.date.between(p.start, p.end)
                      | ((TimetableChange.kind == "moved") & TimetableChange.to_date.between(p.start, p.end))))
            .objects())


# the week view's and the day's page's two reads, prepared (service.prepared)
_CLASS_PERIODS = Prepared("class_periods", _class_periods)
_CLASS_CHANGES = Prepared("class_changes", _class_changes)


def class_days(class_id: int | None, school_id: int, start: dt.date, end: dt.date) -> dict[dt.date, list[dict]]:
    """``{date: [period entries]}`` for every date from ``start`` to ``end`` (2 queries: the periods of the
    terms overlapping the dates with their teachers' names, and the changes with theirs)."""
    days = {start + dt.timedelta(days=i): [] for i in range((end - start).days + 1)}
    if class_id is None:
        return days
    periods = _CLASS_PERIODS.run(klass=int(class_id), start=start, end=end)
    changes = _CLASS_CHANGES.run(klass=int(class_id), start=start, end=end)
    names = {}
    for row in periods:
        if row[8] is not None:
            names[row[8]] = row[9]
    for c in changes:
        if c.teacher_id is not None:
            names[c.teacher_id] = c.substitute_name
        if c.regular_teacher_id is not None:
            names[c.regular_teacher_id] = c.regular_name
    by_slot = {(c.date, c.period): c for c in changes}
    terms = {row[0]: (row[1], row[2]) for row in periods}
    for day, entries in days.items():
        term_id = next((t for t, (first, last) in terms.items() if first <= day <= last), None)
        if term_id is None:
            continue
        weekday = day.isoweekday()
        for (p_term, _s, _e, wd, number, start_min, end_min, subject, teacher_id, _name, room) in periods:
            if p_term != term_id or wd != weekday:
                continue
            change = by_slot.get((day, number))
            status, who, note, moved_to, change_id = "scheduled", teacher_id, None, None, None
            if change is not None:
                status, note, change_id = change.kind, change.note, change.id
                if change.kind == "substitute":
                    who = change.teacher_id
                elif change.kind == "moved":
                    moved_to = {"date": change.to_date, "period": change.to_period,
                                "start": common.hhmm(change.to_start_min), "end": common.hhmm(change.to_end_min)}
            entries.append(_entry(number, start_min, end_min, subject, who, room, status, note, names,
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
    tz = common.school_timezone(student.school_id)
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
    ``student_id`` may be the student's row itself (the day's page has read it: no second read).
    """
    student = student_id if isinstance(student_id, Student) else roster.get_student(student_id)
    return class_days(student.school_class_id, student.school_id, date, date)[date]
