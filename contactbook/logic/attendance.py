"""Attendance (điểm danh): a class's day posted by its homeroom teacher or an admin, a student's
days, the audit, and the writes gate check-ins and approved leave make.

A day is one ``AttendanceRecord`` per student and date (the school's local date), with the
``source`` that set its status last: ``teacher`` (a post), ``gate`` (the day's first ``in``) or
``leave`` (an approved leave request). Precedence, by time: whoever writes last wins, except that a
gate event never changes a status a teacher set (it still records the check-in and check-out
times). So an approved leave request reads ``absent_excused`` until the teacher posts that day
otherwise, and a teacher's post corrects anything before it.

Every change of a status or note is audited in ``AttendanceChange`` (who, when, old → new). A
guardian is notified (category ``attendance``, their language, the child's name) once per change
of their child's status to ``late``, ``absent_excused`` or ``absent_unexcused`` made by a post;
never for ``present``, never for a post that changes nothing. (Gate arrivals tell guardians
"arrived 07:05 (late)" themselves, see ``checkins``; a leave decision tells them the decision.)

Writers of a school's attendance serialise on one lock (``common.lock``), so the audit's old
status is always the one replaced.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from notifications import notify_each
from service.roster import logic as roster
from service import bulk
from service.db import write_transaction
from service.errors import ValidationError

from .. import policy
from ..models import STATUSES, AttendanceChange, AttendanceRecord
from . import common, texts

NOTIFY_STATUSES = ("late", "absent_excused", "absent_unexcused")
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
MAX_NOTE = 500

RECORD_COLUMNS = ["student", "date", "school", "school_class", "status", "note", "source", "check_in_at",
                  "check_out_at", "updated_by", "updated_at"]
CHANGE_COLUMNS = ["student", "date", "old_status", "new_status", "old_note", "new_note", "source", "changed_by",
                  "device_id", "leave_request_id", "changed_at"]


def record_view(rec) -> dict:
    return {"student_id": rec.student_id, "date": rec.date, "status": rec.status, "note": rec.note,
            "check_in_at": rec.check_in_at, "check_out_at": rec.check_out_at, "source": rec.source,
            "updated_at": rec.updated_at}


# --- the writes every source shares ----------------------------------------------------------------
def existing_records(student_ids: Iterable[int], dates: Iterable[dt.date]) -> dict[tuple[int, dt.date], AttendanceRecord]:
    """``{(student_id, date): record}`` for these students on these dates (inside the writer's lock)."""
    ids, days = sorted(set(student_ids)), sorted(set(dates))
    if not ids or not days:
        return {}
    out = {}
    for start in range(0, len(ids), 1000):
        for rec in AttendanceRecord.select().where(AttendanceRecord.student.in_(ids[start:start + 1000])
                                                   & AttendanceRecord.date.in_(days)):
            out[(rec.student_id, rec.date)] = rec
    return out


def write_records(rows: list[dict], update: list[str]) -> None:
    """Upsert records (dicts with every ``RECORD_COLUMNS`` key); an existing day updates ``update``."""
    bulk.upsert(AttendanceRecord, RECORD_COLUMNS, [tuple(r[c] for c in RECORD_COLUMNS) for r in rows],
                key=["student", "date"], update=update)


def write_changes(changes: list[dict]) -> None:
    for change in changes:
        for column in CHANGE_COLUMNS:
            change.setdefault(column, None)
    bulk.insert_ignore(AttendanceChange, CHANGE_COLUMNS, [tuple(c[col] for col in CHANGE_COLUMNS) for c in changes])


def notify_statuses(notices: list[tuple[int, dt.date, str, str]]) -> None:
    """After the commit: each guardian of each student told of the new status, in their language."""
    if not notices:
        return
    ids = {n[0] for n in notices}
    students = roster.students_by_id(ids)
    guardians = roster.guardians_by_student(ids)
    out = []
    for student_id, day, status, note in notices:
        to = guardians.get(student_id)
        if not to or student_id not in students:
            continue
        words = texts.attendance(students[student_id]["name"], day, status, note)
        out.append({"user_ids": to, "category": "attendance", "title": words["vi"][0], "body": words["vi"][1],
                    "texts": words,
                    "data": {"type": "attendance", "id": student_id, "date": day.isoformat(), "status": status}})
    notify_each(out)


# --- a class's day ----------------------------------------------------------------------------------
def _check_records(class_id: int, records: list[dict]) -> None:
    members = set(roster.class_student_ids(class_id))
    problems: dict = {}
    seen: set[int] = set()
    for i, rec in enumerate(records):
        sid = rec["student_id"]
        if sid not in members:
            problems[f"records.{i}.student_id"] = ["Not a student of this class."]
        elif sid in seen:
            problems[f"records.{i}.student_id"] = ["Listed twice."]
        seen.add(sid)
        if rec.get("status") not in STATUSES:
            problems[f"records.{i}.status"] = ["One of " + ", ".join(STATUSES) + "."]
        if len(rec.get("note") or "") > MAX_NOTE:
            problems[f"records.{i}.note"] = [f"At most {MAX_NOTE} characters."]
    if problems:
        raise ValidationError("Some records cannot be stored; nothing was stored.", fields=problems)


def post_class_day(user, class_id: int, day: dt.date, records: list[dict], now: dt.datetime | None = None) -> dict:
    """Set (or correct) the statuses of students of a class on a day; returns the class's day."""
    klass = policy.class_attendance_writer(user, class_id)
    user_id = getattr(user, "id", user)
    timezone = roster.school_timezone(klass.school_id)
    ts = now or common.now()
    if day > common.today(timezone, ts):
        raise ValidationError("Attendance is taken on the day or after it.",
                              fields={"date": ["A date in the future."]})
    if not records:
        raise ValidationError("No records.", fields={"records": ["At least one record."]})
    _check_records(klass.id, records)
    notices = []
    with write_transaction():
        common.lock("attendance", klass.school_id)
        existing = existing_records([r["student_id"] for r in records], [day])
        rows, changes = [], []
        for rec in records:
            sid, status, note = rec["student_id"], rec["status"], (rec.get("note") or "")
            old = existing.get((sid, day))
            if old is not None and old.status == status and old.note == note and old.source == "teacher":
                continue  # the same again: nothing changes, nobody is told
            rows.append({"student": sid, "date": day, "school": klass.school_id, "school_class": klass.id,
                         "status": status, "note": note, "source": "teacher", "check_in_at": None,
                         "check_out_at": None, "updated_by": user_id, "updated_at": ts})
            if old is None or old.status != status or old.note != note:
                changes.append({"student": sid, "date": day, "old_status": old.status if old else None,
                                "new_status": status, "old_note": old.note if old else None, "new_note": note,
                                "source": "teacher", "changed_by": user_id, "changed_at": ts})
            if (old is None or old.status != status) and status in NOTIFY_STATUSES:
                notices.append((sid, day, status, note))
        # a gate's or a leave's day confirmed with the same status becomes the teacher's (no audit row)
        write_records(rows, update=["school_class", "status", "note", "source", "updated_by", "updated_at"])
        write_changes(changes)
    notify_statuses(notices)
    return _class_day(klass.id, day)


def _class_day(class_id: int, day: dt.date) -> dict:
    members = roster.class_student_ids(class_id)
    recs = (AttendanceRecord.select().where(AttendanceRecord.student.in_(members) & (AttendanceRecord.date == day))
            .order_by(AttendanceRecord.student)) if members else []
    return {"class_id": class_id, "date": day, "records": [record_view(r) for r in recs]}


def class_day(user, class_id: int, day: dt.date | None = None) -> dict:
    """The class's day as posted (and as gates and leave requests set it): its teachers and admins."""
    klass = policy.class_reader(user, class_id)
    day = day or common.today(roster.school_timezone(klass.school_id))
    return _class_day(klass.id, day)


def class_changes(user, class_id: int, day: dt.date | None = None) -> list[dict]:
    """The audit of a class's day, oldest first (its teachers and the school's admins)."""
    klass = policy.class_reader(user, class_id)
    day = day or common.today(roster.school_timezone(klass.school_id))
    members = roster.class_student_ids(klass.id)
    if not members:
        return []
    rows = (AttendanceChange.select().where(AttendanceChange.student.in_(members) & (AttendanceChange.date == day))
            .order_by(AttendanceChange.id))
    return [{"student_id": c.student_id, "date": c.date, "old_status": c.old_status, "new_status": c.new_status,
             "old_note": c.old_note, "new_note": c.new_note, "source": c.source, "changed_by": c.changed_by_id,
             "device_id": c.device_id, "leave_request_id": c.leave_request_id, "changed_at": c.changed_at}
            for c in rows]


# --- a student's days -------------------------------------------------------------------------------
def student_days(user, student_id: int, from_date: dt.date | None = None, to_date: dt.date | None = None) -> dict:
    """``{items: [{date, status, note, check_in_at, check_out_at}]}``, oldest first.

    Default: the 30 days up to today (school time); at most 366 days.
    """
    student = policy.student_reader(user, student_id)
    to_date = to_date or common.today(roster.school_timezone(student.school_id))
    from_date = from_date or to_date - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if from_date > to_date:
        raise ValidationError("`from` is after `to`.", fields={"from": ["After `to`."]})
    if (to_date - from_date).days >= MAX_RANGE_DAYS:
        raise ValidationError(f"At most {MAX_RANGE_DAYS} days at once.", fields={"to": ["Range too long."]})
    rows = (AttendanceRecord.select().where((AttendanceRecord.student == student.id)
                                            & AttendanceRecord.date.between(from_date, to_date))
            .order_by(AttendanceRecord.date))
    return {"student_id": student.id, "from": from_date, "to": to_date, "items": [record_view(r) for r in rows]}


def day_of(student_id: int, day: dt.date) -> dict | None:
    """A student's record of a day, or None (for the day's page and reports; no access check)."""
    rec = AttendanceRecord.get_or_none((AttendanceRecord.student == student_id) & (AttendanceRecord.date == day))
    return record_view(rec) if rec else None


def totals(student_id: int, from_date: dt.date, to_date: dt.date) -> dict:
    """``{present, late, absent_excused, absent_unexcused}`` counts of a student's days in a range
    (for the term report; no access check: the caller has checked)."""
    out = {s: 0 for s in STATUSES}
    rows = (AttendanceRecord.select(AttendanceRecord.status).where(
        (AttendanceRecord.student == student_id) & AttendanceRecord.date.between(from_date, to_date)))
    for rec in rows:
        out[rec.status] = out.get(rec.status, 0) + 1
    return out
