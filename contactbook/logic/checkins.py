"""Gate devices and their check-ins (smart attendance).

A device is registered by a school admin and gets an API key, shown once; only its SHA-256 is
kept and looked up (``policy.authenticate_device``). Revoking sets ``revoked_at``: the key stops
working on the next request.

``receive(device, events)`` takes a batch (a device that was offline sends its backlog): each
(device, ``event_id``) is stored once (a unique key and one bulk ``INSERT … ON CONFLICT DO
NOTHING`` of the events not read back as known first; the rows this request stored carry its
``batch`` token, so stored and duplicate events are told apart by one read-back even when two
requests race). The day's effect is computed from every stored event of the
affected (student, day), not from the order batches arrive in: the day's first ``in`` marks the
child ``present``, or ``late`` when it is after the school's start time (minutes compared: 07:30
is on time for a 07:30 start, 07:31 late), unless a teacher set the day (then only the check-in
and check-out times are recorded); a late batch holding an earlier ``in`` corrects a gate-set
``late`` to ``present``. A gate ``in`` also replaces an approved leave's ``absent_excused``: the
child came. Attendance is marked on the school's school days only; events of other days are
stored and shown on the day's page.

Guardians are told "arrived 07:05" when a batch brings the day's first ``in`` and "left 16:40"
when it brings a later ``out`` than any before (category ``attendance``, in their language),
for today's events only (a backlog of past days is stored silently), in time order.

A batch of 500 events costs a constant number of queries: the students (one), the known events,
the insert (one statement), the read-back, the day aggregates, the existing records, the record upsert and the
audit insert, and the guardians; then, after the commit, the notices go to
``notifications.logic.notify_each`` (``notify`` for many notices: one job per 1,000 recipients
rather than an enqueue per child).
"""
from __future__ import annotations

import datetime as dt
import secrets
import uuid

from peewee import Case, fn

from notifications import notify_each
from service.roster import logic as roster
from service import bulk
from service.db import write_transaction
from service.errors import ValidationError

from .. import policy
from ..models import CheckIn, GateDevice
from . import attendance, common, settings, texts

MAX_EVENTS = 1000
FUTURE_SLACK = dt.timedelta(minutes=10)  # device clocks drift a little
MAX_AGE = dt.timedelta(days=31)  # a device offline for a month still delivers; a reset clock (1970) does not

CHECKIN_COLUMNS = ["device", "event_id", "student", "school", "at", "date", "direction", "batch", "received_at"]


# --- devices ----------------------------------------------------------------------------------------
def device_view(device: GateDevice) -> dict:
    return {"id": device.id, "school_id": device.school_id, "name": device.name, "created_at": device.created_at,
            "last_seen_at": device.last_seen_at}


def register_device(user, school_id: int, name: str, now: dt.datetime | None = None) -> dict:
    """A new gate device of the school; the answer holds its API key, which is never shown again."""
    school_id = policy.school_admin(user, school_id)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError("A name of 1-100 characters.", fields={"name": ["1-100 characters."]})
    api_key = secrets.token_urlsafe(32)  # 32 random bytes
    with write_transaction():
        device = GateDevice.create(school=school_id, name=name, key_hash=policy.key_digest(api_key),
                                   created_by=getattr(user, "id", user), created_at=now or common.now())
    return {**device_view(device), "api_key": api_key}


def list_devices(user, school_id: int) -> list[dict]:
    school_id = policy.school_admin(user, school_id)
    rows = (GateDevice.select().where((GateDevice.school == school_id) & GateDevice.revoked_at.is_null())
            .order_by(GateDevice.id))
    return [device_view(d) for d in rows]


def revoke_device(user, device_id: int, now: dt.datetime | None = None) -> None:
    device = policy.device_admin(user, device_id)
    GateDevice.update(revoked_at=now or common.now()).where(
        (GateDevice.id == device.id) & GateDevice.revoked_at.is_null()).execute()


# --- events -----------------------------------------------------------------------------------------
def _as_datetime(value):
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))  # SQLite hands aggregates back as text


def _hhmm(at: dt.datetime, timezone: str) -> str:
    return common.local_time(at, timezone).strftime("%H:%M")


def receive(device: GateDevice, events: list[dict], now: dt.datetime | None = None) -> dict:
    """Store a batch of ``{event_id, student_id, at, direction}``; ``{stored, duplicates, rejected}``."""
    if len(events) > MAX_EVENTS:
        raise ValidationError(f"At most {MAX_EVENTS} events per batch.", fields={"events": ["Too many events."]})
    ts = now or common.now()
    school_id = device.school_id
    conf = settings.of_school(school_id)
    timezone, start = conf["timezone"], settings.start_time(conf)
    students = roster.students_by_id({e["student_id"] for e in events})
    rejected, valid, seen = [], [], set()
    duplicates = 0
    for event in events:
        if event["event_id"] in seen:
            duplicates += 1
            continue
        seen.add(event["event_id"])
        student = students.get(event["student_id"])
        if student is None or student["school_id"] != school_id:
            rejected.append({"event_id": event["event_id"], "reason": "student_not_in_school"})
        elif event["at"] > ts + FUTURE_SLACK:
            rejected.append({"event_id": event["event_id"], "reason": "in_future"})
        elif event["at"] < ts - MAX_AGE:
            rejected.append({"event_id": event["event_id"], "reason": "too_old"})
        else:
            valid.append(event)
    if not valid:
        return {"stored": 0, "duplicates": duplicates, "rejected": rejected}

    batch = uuid.uuid4().hex
    today = common.today(timezone, ts)
    gate_notices: list = []
    with write_transaction():
        common.lock("attendance", school_id)
        GateDevice.update(last_seen_at=ts).where(GateDevice.id == device.id).execute()
        ids = [e["event_id"] for e in valid]
        known = set()  # a replay: one read instead of an insert that conflicts row by row
        for part in range(0, len(ids), 1000):
            known.update(c for (c,) in CheckIn.select(CheckIn.event_id).where(
                (CheckIn.device == device.id) & CheckIn.event_id.in_(ids[part:part + 1000])).tuples())
        bulk.insert_ignore(CheckIn, CHECKIN_COLUMNS, [
            (device.id, e["event_id"], e["student_id"], school_id, e["at"], common.local_date(e["at"], timezone),
             e["direction"], batch, ts) for e in valid if e["event_id"] not in known])
        stored = []
        ids = [i for i in ids if i not in known]
        for part in range(0, len(ids), 1000):
            stored.extend(CheckIn.select(CheckIn.student, CheckIn.date).where(
                (CheckIn.device == device.id) & CheckIn.event_id.in_(ids[part:part + 1000])
                & (CheckIn.batch == batch)).tuples())
        duplicates += len(valid) - len(stored)
        pairs = {(s, d) for s, d in stored}
        if pairs:
            _apply(pairs, batch, device, students, conf, start, today, ts, gate_notices)
    _tell(gate_notices, students, timezone)
    return {"stored": len(stored), "duplicates": duplicates, "rejected": rejected}


def _day_aggregates(pairs, batch):
    """``{(student, date): (first_in, first_in_before, last_out, last_out_before)}`` over every stored
    event of those days ("before": stored by earlier requests)."""
    is_in, is_out = CheckIn.direction == "in", CheckIn.direction == "out"
    earlier = CheckIn.batch != batch
    query = (CheckIn.select(CheckIn.student, CheckIn.date,
                            fn.MIN(Case(None, [(is_in, CheckIn.at)], None)),
                            fn.MIN(Case(None, [(is_in & earlier, CheckIn.at)], None)),
                            fn.MAX(Case(None, [(is_out, CheckIn.at)], None)),
                            fn.MAX(Case(None, [(is_out & earlier, CheckIn.at)], None)))
             .where(CheckIn.student.in_(sorted({p[0] for p in pairs})) & CheckIn.date.in_(sorted({p[1] for p in pairs})))
             .group_by(CheckIn.student, CheckIn.date))
    out = {}
    for student_id, day, *times in query.tuples():
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        if (student_id, day) in pairs:
            out[(student_id, day)] = tuple(_as_datetime(t) for t in times)
    return out


def _apply(pairs, batch, device, students, conf, start: dt.time, today: dt.date, ts: dt.datetime,
           gate_notices: list) -> None:
    """Inside the transaction: the records and audit rows the new events make, and the notices."""
    timezone = conf["timezone"]
    days = _day_aggregates(pairs, batch)
    existing = attendance.existing_records({p[0] for p in pairs}, {p[1] for p in pairs})
    rows, changes = [], []
    for (student_id, day), (first_in, first_in_before, last_out, last_out_before) in sorted(days.items()):
        rec = existing.get((student_id, day))
        status, source = (rec.status, rec.source) if rec else (None, None)
        if first_in is not None and settings.is_school_day(conf, day) and source in (None, "gate", "leave"):
            late = common.local_time(first_in, timezone).replace(second=0, microsecond=0) > start
            status, source = ("late" if late else "present"), "gate"
        if status is None:  # only `out`s, or not a school day: the events are stored, the day is not marked
            pass
        elif rec is None or (status, source, first_in, last_out) != (rec.status, rec.source, rec.check_in_at,
                                                                       rec.check_out_at):
            rows.append({"student": student_id, "date": day, "school": device.school_id,
                         "school_class": students[student_id]["class_id"], "status": status,
                         "note": rec.note if rec else "", "source": source, "check_in_at": first_in,
                         "check_out_at": last_out, "updated_by": rec.updated_by_id if rec else None,
                         "updated_at": ts})
            if rec is None or rec.status != status:
                changes.append({"student": student_id, "date": day, "old_status": rec.status if rec else None,
                                "new_status": status, "old_note": rec.note if rec else None,
                                "new_note": rec.note if rec else "", "source": "gate", "device_id": device.id,
                                "changed_at": ts})
        if day != today:
            continue  # a backlog of other days: stored, nobody woken up
        if first_in is not None and first_in_before is None:
            gate_notices.append((first_in, student_id, "in", status == "late"))
        if last_out is not None and (last_out_before is None or last_out > last_out_before):
            gate_notices.append((last_out, student_id, "out", False))
    attendance.write_records(rows, update=["school_class", "status", "source", "check_in_at", "check_out_at",
                                           "updated_at"])
    attendance.write_changes(changes)


def _tell(gate_notices: list, students: dict, timezone: str) -> None:
    """After the commit, in time order: "arrived 07:05" / "left 16:40" to each child's guardians."""
    if not gate_notices:
        return
    guardians = roster.guardians_by_student({n[1] for n in gate_notices})
    notices = []
    for at, student_id, direction, late in sorted(gate_notices):
        to = guardians.get(student_id)
        if not to:
            continue
        name, hhmm = students[student_id]["name"], _hhmm(at, timezone)
        words = texts.arrived(name, hhmm, late) if direction == "in" else texts.left(name, hhmm)
        notices.append({"user_ids": to, "category": "attendance", "title": words["vi"][0], "body": words["vi"][1],
                        "texts": words, "data": {"type": "checkin", "id": student_id, "direction": direction,
                                                 "at": at.isoformat(timespec="seconds") + "Z"}})
    notify_each(notices)


def for_day(student_id: int, day: dt.date) -> list[dict]:
    """A student's gate events of a day, in time order (for the day's page; no access check)."""
    rows = (CheckIn.select(CheckIn, GateDevice.name).join(GateDevice, on=(CheckIn.device == GateDevice.id))
            .where((CheckIn.student == student_id) & (CheckIn.date == day)).order_by(CheckIn.at, CheckIn.id))
    return [{"at": c.at, "direction": c.direction, "device_id": c.device_id, "device_name": c.device.name}
            for c in rows]
