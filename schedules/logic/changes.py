"""Changes to one period on one date: cancelled, a substitute teacher, moved to another slot.

One change per (class, date, period). Posting exactly the same change again answers 200 with it
and tells no one; posting a different change for the slot replaces the stored one (201) and tells
again (a substitute replaced by another hears of it too). The class's guardians and the teachers
concerned (the regular teacher and the substitute) are told once per change, after the commit
(category ``schedule``); the one who made the change is not told.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from notifications import notify
from service.roster import logic as roster
from service.roster import queries as roster_queries
from service.db import write_transaction
from service.errors import ValidationError

from .. import policy
from ..models import TimetableChange, TimetablePeriod
from . import common
from .timetables import MAX_PERIOD, TEACHER_ROLES

MAX_NOTE = 500


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError("The request has invalid fields.", fields={field: [message]})


def _period_on(class_id: int, school_id: int, day: dt.date, number: int) -> TimetablePeriod | None:
    terms = roster_queries.terms_between(school_id, day, day)
    if not terms:
        return None
    return TimetablePeriod.get_or_none((TimetablePeriod.school_class == class_id)
                                       & (TimetablePeriod.term == terms[0].id)
                                       & (TimetablePeriod.weekday == day.isoweekday())
                                       & (TimetablePeriod.period == number))


def _clean(klass, body: dict) -> tuple[TimetablePeriod, dict]:
    day, number, kind = body["date"], body["period"], body["kind"]
    if kind not in common.KINDS:
        raise _invalid("kind", f"One of {', '.join(common.KINDS)}.")
    if not isinstance(number, int) or not 1 <= number <= MAX_PERIOD:
        raise _invalid("period", f"A period number 1 to {MAX_PERIOD}.")
    regular = _period_on(klass.id, klass.school_id, day, number)
    if regular is None:
        raise _invalid("period", "The class has no such period on that date (no timetable for its term, "
                                 "or no lesson in that slot).")
    note = (body.get("note") or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise _invalid("note", f"At most {MAX_NOTE} characters.")
    values = {"kind": kind, "teacher": None, "to_date": None, "to_period": None, "to_start_min": None,
              "to_end_min": None, "note": note}
    if kind != "substitute" and body.get("teacher_id") is not None:
        raise _invalid("teacher_id", "Only a substitute names a teacher.")
    if kind != "moved" and any(body.get(f) is not None for f in ("to_date", "to_period", "to_start", "to_end")):
        raise _invalid("to_period", "Only a moved period has a destination.")
    if kind == "substitute":
        teacher_id = body.get("teacher_id")
        if teacher_id is None:
            raise _invalid("teacher_id", "A substitute needs the teacher.")
        if teacher_id not in roster_queries.staff_member_ids(klass.school_id, [teacher_id], TEACHER_ROLES):
            raise _invalid("teacher_id", "Not a teacher of this school.")
        if teacher_id == regular.teacher_id:
            raise _invalid("teacher_id", "This is the period's own teacher.")
        values["teacher"] = teacher_id
    elif kind == "moved":
        to_date = body.get("to_date") or day
        to_period = body.get("to_period")
        if not isinstance(to_period, int) or not 1 <= to_period <= MAX_PERIOD:
            raise _invalid("to_period", "A moved period needs the period it moves to (1 to 20).")
        if (to_date, to_period) == (day, number):
            raise _invalid("to_period", "The period moves somewhere else.")
        target = _period_on(klass.id, klass.school_id, to_date, to_period)
        start = common.minutes_of(body["to_start"], "to_start") if body.get("to_start") else (
            target.start_min if target else None)
        end = common.minutes_of(body["to_end"], "to_end") if body.get("to_end") else (
            target.end_min if target else None)
        if start is None or end is None:
            raise _invalid("to_start", "That slot is not in the class's timetable: give to_start and to_end.")
        if end <= start:
            raise _invalid("to_end", "The period ends after it starts.")
        values.update(to_date=to_date, to_period=to_period, to_start_min=start, to_end_min=end)
    return regular, values


def _digest(regular: TimetablePeriod, values: dict) -> str:
    snapshot = dict(values, subject=regular.subject, regular_teacher=regular.teacher_id, room=regular.room,
                    start_min=regular.start_min, end_min=regular.end_min)
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()


def post_change(user, class_id: int, body: dict) -> tuple[dict, bool]:
    """Record a change for a date (admins and the homeroom teacher). Returns (view, changed):
    ``changed`` False when the very same change was stored already (nobody is told again)."""
    klass = policy.class_for_change(user, class_id)
    regular, values = _clean(klass, body)
    digest = _digest(regular, values)
    day, number = body["date"], body["period"]
    with write_transaction():
        common.lock("timetable-change", klass.id)
        existing = TimetableChange.get_or_none((TimetableChange.school_class == klass.id)
                                               & (TimetableChange.date == day) & (TimetableChange.period == number))
        if existing is not None and existing.digest == digest:
            return change_view(existing), False
        previous_substitute = existing.teacher_id if existing is not None else None
        row = dict(values, subject=regular.subject, regular_teacher=regular.teacher_id, room=regular.room,
                   start_min=regular.start_min, end_min=regular.end_min, digest=digest,
                   created_by=getattr(user, "id", user), updated_at=common.now())
        if existing is None:
            change = TimetableChange.create(school_class=klass.id, date=day, period=number, created_at=common.now(),
                                            **row)
        else:
            TimetableChange.update(**row).where(TimetableChange.id == existing.id).execute()
            change = TimetableChange.get_by_id(existing.id)
    _tell(klass, change, previous_substitute, actor_id=getattr(user, "id", user))
    return change_view(change), True


def change_view(change: TimetableChange) -> dict:
    return {"id": change.id, "class_id": change.school_class_id, "date": change.date, "period": change.period,
            "kind": change.kind, "teacher_id": change.teacher_id, "to_date": change.to_date,
            "to_period": change.to_period, "to_start": common.hhmm(change.to_start_min),
            "to_end": common.hhmm(change.to_end_min), "note": change.note, "subject": change.subject,
            "regular_teacher_id": change.regular_teacher_id, "start": common.hhmm(change.start_min),
            "end": common.hhmm(change.end_min), "created_at": change.created_at, "updated_at": change.updated_at}


def _texts(class_name: str, change: TimetableChange, names: dict) -> dict:
    day = change.date
    when_vi = f"{common.WEEKDAYS_VI[day.isoweekday()]} {day:%d/%m}, tiết {change.period} ({change.subject})"
    when_en = f"{common.WEEKDAYS_EN[day.isoweekday()]} {day:%d/%m}, period {change.period} ({change.subject})"
    if change.kind == "cancelled":
        vi, en = f"{when_vi}: nghỉ.", f"{when_en}: cancelled."
    elif change.kind == "substitute":
        sub = names.get(change.teacher_id, "")
        vi, en = f"{when_vi}: {sub} dạy thay.", f"{when_en}: {sub} substitutes."
    else:
        to = change.to_date
        vi = (f"{when_vi}: chuyển sang {common.WEEKDAYS_VI[to.isoweekday()]} {to:%d/%m}, tiết {change.to_period} "
              f"({common.hhmm(change.to_start_min)}).")
        en = (f"{when_en}: moved to {common.WEEKDAYS_EN[to.isoweekday()]} {to:%d/%m}, period {change.to_period} "
              f"({common.hhmm(change.to_start_min)}).")
    if change.note:
        vi, en = f"{vi} {change.note}", f"{en} {change.note}"
    return {"vi": (f"Lớp {class_name}: thay đổi thời khóa biểu", vi),
            "en": (f"Class {class_name}: timetable change", en)}


def _tell(klass, change: TimetableChange, previous_substitute: int | None, actor_id: int) -> None:
    teachers = {change.regular_teacher_id, change.teacher_id, previous_substitute} - {None}
    recipients = (set(roster.class_guardian_ids(klass.id)) | teachers) - {actor_id}
    if not recipients:
        return
    names = roster.user_names(teachers)
    texts = _texts(klass.name, change, names)
    notify(recipients, "schedule", *texts["vi"], texts=texts,
           data={"type": "timetable_change", "id": change.id, "class_id": str(klass.id),
                 "date": change.date.isoformat(), "period": change.period, "kind": change.kind},
           collapse_key=f"timetable-{klass.id}-{change.date.isoformat()}-{change.period}")


def list_changes(user, class_id: int, start: dt.date | None = None, end: dt.date | None = None) -> list[dict]:
    """The class's changes dated ``start``..``end`` (whoever may read the timetable); default from a week
    ago (school time) to 67 days after ``start``; at most a year."""
    klass = policy.class_for_timetable_read(user, class_id)
    for name, day in (("from", start), ("to", end)):
        if day is not None and not 1900 <= day.year <= 3000:
            raise _invalid(name, "A date between the years 1900 and 3000.")
    start = start or common.today_in(common.school_timezone(klass.school_id)) - dt.timedelta(days=7)
    end = end or start + dt.timedelta(days=67)
    if end < start or (end - start).days > 366:
        raise _invalid("to", "On or after from, at most a year after it.")
    rows = (TimetableChange.select().where((TimetableChange.school_class == klass.id)
                                           & TimetableChange.date.between(start, end))
            .order_by(TimetableChange.date, TimetableChange.period))
    return [change_view(c) for c in rows]
