"""Writers of one school's attendance at once (teachers' posts, a gate batch, a leave request): the
audit's chain stays whole and each event and notice is stored once (SQLite and PostgreSQL)."""
from __future__ import annotations

import threading

from contactbook.logic import attendance, checkins, leave
from contactbook.models import AttendanceChange, AttendanceRecord, CheckIn, GateDevice, LeaveRequest
from service.db import connection
from service.errors import Conflict

from .conftest import NOW, TODAY, notices


def _threads(app, target, count):
    errors = []
    start = threading.Barrier(count)

    def run(i):
        try:
            with app.app_context(), connection():
                start.wait()
                target(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_concurrent_posts_and_gate_batches_keep_one_audit_chain(app, world):
    device = checkins.register_device(world.admin, world.school.id, "Cổng")
    gate = GateDevice.get_by_id(device["id"])
    statuses = ["absent_unexcused", "late", "present", "absent_excused"]

    def write(i):
        if i % 3 == 2:
            events = [{"event_id": f"e{i}-{n}", "student_id": world.s1.id, "at": NOW.replace(minute=n),
                       "direction": "in"} for n in range(5)]
            checkins.receive(gate, events, now=NOW)
        else:
            who = world.teacher if i % 2 else world.admin
            attendance.post_class_day(who, world.klass.id, TODAY, [
                {"student_id": world.s1.id, "status": statuses[i % 4], "note": ""},
                {"student_id": world.s2.id, "status": statuses[(i + 1) % 4], "note": f"lần {i}"}], now=NOW)

    assert _threads(app, write, 9) == []
    for student in (world.s1, world.s2):
        chain = list(AttendanceChange.select().where(AttendanceChange.student == student.id).order_by(AttendanceChange.id))
        assert chain[0].old_status is None
        for before, after in zip(chain, chain[1:]):
            assert after.old_status == before.new_status and after.old_note == before.new_note
        record = AttendanceRecord.get(AttendanceRecord.student == student.id)
        assert record.status == chain[-1].new_status
    assert CheckIn.select().count() == 15
    assert len(notices(world.g1)) >= 1


def test_the_same_leave_request_twice_at_once_stores_one(app, world):
    import datetime as dt

    results = []

    def ask(_i):
        try:
            results.append(leave.create(world.g1, world.s1.id, TODAY + dt.timedelta(days=1),
                                        TODAY + dt.timedelta(days=2), "Về quê", now=NOW)["id"])
        except Conflict:
            results.append("409")

    assert _threads(app, ask, 4) == []
    assert sorted(map(str, results)).count("409") == 3
    assert LeaveRequest.select().count() == 1
