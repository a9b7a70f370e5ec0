"""Issue 10, acceptance 1: a school day walked through HTTP (SQLite and PostgreSQL, jobs inline)."""
from __future__ import annotations

import datetime as dt

from contactbook.models import AttendanceChange, AttendanceRecord
from notifications import logic as notifications

from .conftest import API, TODAY, checkin, new_device, notices, post_day


def test_a_school_day(client, world):
    notifications.set_preferences(world.g2.id, language="en")

    # 07:05 the gate sees An come in: her guardian is told, the day reads present
    device = new_device(client, world)
    r = checkin(client, device["api_key"], ("e-1", world.s1, "07:05", "in"))
    assert r.status_code == 200, r.json
    assert r.json == {"stored": 1, "duplicates": 0, "rejected": []}
    told = notices(world.g1)
    assert [n.body for n in told] == ["Nguyễn Minh An đã đến trường lúc 07:05."]
    rec = AttendanceRecord.get(AttendanceRecord.student == world.s1.id)
    assert (rec.status, rec.source, rec.date) == ("present", "gate", TODAY)

    # the teacher posts the day with one absent child: that guardian is told once, in English
    r = post_day(client, world, world.teacher, [(world.s1, "present"), (world.s2, "absent_unexcused", "Không báo")])
    assert r.status_code == 200, r.json
    day = {rec["student_id"]: rec for rec in r.json["records"]}
    assert r.json["class_id"] == str(world.klass.id) and r.json["date"] == TODAY.isoformat()
    assert day[str(world.s1.id)]["status"] == "present" and day[str(world.s1.id)]["check_in_at"] == "2026-11-25T00:05:00Z"
    assert day[str(world.s2.id)]["status"] == "absent_unexcused" and day[str(world.s2.id)]["note"] == "Không báo"
    assert len(notices(world.g1)) == 1  # present: nobody told
    told = notices(world.g2)
    assert len(told) == 1
    assert told[0].title == "Attendance: Trần Bảo Ngọc"
    assert told[0].body == "Trần Bảo Ngọc was absent (unexcused) on 25/11/2026. Note: Không báo"

    # the same post again tells nobody
    r = post_day(client, world, world.teacher, [(world.s1, "present"), (world.s2, "absent_unexcused", "Không báo")])
    assert r.status_code == 200
    assert len(notices(world.g2)) == 1 and len(notices(world.g1)) == 1

    # a correction tells again
    r = post_day(client, world, world.teacher, [(world.s2, "late", "Đến lúc 8:10")])
    assert r.status_code == 200
    told = notices(world.g2)
    assert len(told) == 2 and told[1].body.startswith("Trần Bảo Ngọc was late on 25/11/2026")

    # the audit: who, when, from what
    r = client.get(f"{API}/classes/{world.klass.id}/attendance/history", query_string={"date": TODAY.isoformat()},
                   headers=world.h(world.admin))
    assert r.status_code == 200, r.json
    s2_changes = [(c["old_status"], c["new_status"], c["changed_by"]) for c in r.json["items"]
                  if c["student_id"] == str(world.s2.id)]
    assert s2_changes == [(None, "absent_unexcused", str(world.teacher.id)),
                          ("absent_unexcused", "late", str(world.teacher.id))]
    s1_changes = [(c["old_status"], c["new_status"], c["source"]) for c in r.json["items"]
                  if c["student_id"] == str(world.s1.id)]
    assert s1_changes == [(None, "present", "gate")]  # the teacher's same status is no change

    # a leave request: the homeroom teacher is told, approves, the guardian is told, the days read absent_excused
    tomorrow, after = TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=2)
    r = client.post(f"{API}/students/{world.s2.id}/leave-requests",
                    json={"from_date": tomorrow.isoformat(), "to_date": after.isoformat(), "reason": "Cháu bị sốt"},
                    headers=world.h(world.g2))
    assert r.status_code == 201, r.json
    leave = r.json
    assert {k: leave[k] for k in ("student_id", "from_date", "to_date", "reason", "status")} == {
        "student_id": str(world.s2.id), "from_date": "2026-11-26", "to_date": "2026-11-27",
        "reason": "Cháu bị sốt", "status": "pending"}
    told = notices(world.teacher, "leave")
    assert len(told) == 1 and told[0].title == "Đơn xin nghỉ: Trần Bảo Ngọc" and "Cháu bị sốt" in told[0].body

    r = client.post(f"{API}/leave-requests/{leave['id']}/decision", json={"approved": True, "note": "Chúc cháu mau khỏe"},
                    headers=world.h(world.teacher))
    assert r.status_code == 200, r.json
    assert r.json["status"] == "approved" and r.json["decided_by"] == str(world.teacher.id)
    told = notices(world.g2, "leave")
    assert len(told) == 1 and told[0].title == "Leave request approved"

    r = client.get(f"{API}/students/{world.s2.id}/attendance",
                   query_string={"from": TODAY.isoformat(), "to": after.isoformat()}, headers=world.h(world.g2))
    assert r.status_code == 200, r.json
    assert [(i["date"], i["status"]) for i in r.json["items"]] == [
        ("2026-11-25", "late"), ("2026-11-26", "absent_excused"), ("2026-11-27", "absent_excused")]
    r = client.get(f"{API}/classes/{world.klass.id}/attendance", query_string={"date": tomorrow.isoformat()},
                   headers=world.h(world.teacher))
    assert [(i["student_id"], i["status"], i["source"]) for i in r.json["records"]] == [
        (str(world.s2.id), "absent_excused", "leave")]
    assert len(notices(world.g2)) == 2  # the decision told them; no extra attendance notice

    # the teacher's later post of such a day wins (the child came after all)
    world.make.app.extensions["lienlac.clock"] = lambda: dt.datetime(2026, 11, 26, 3, 0)
    r = post_day(client, world, world.teacher, [(world.s2, "present")], day=tomorrow)
    assert r.status_code == 200
    assert AttendanceRecord.get((AttendanceRecord.student == world.s2.id)
                                & (AttendanceRecord.date == tomorrow)).status == "present"
    assert AttendanceChange.select().where(AttendanceChange.leave_request_id == int(leave["id"])).count() == 2


def test_gate_late_arrival_backlog_and_teacher_precedence(client, world):
    key = new_device(client, world)["api_key"]
    # 07:45 is after the 07:30 start: late, and the guardian hears it in the arrival notice
    r = checkin(client, key, ("a1", world.s1, "07:45", "in"))
    assert r.json["stored"] == 1
    rec = AttendanceRecord.get(AttendanceRecord.student == world.s1.id)
    assert rec.status == "late"
    assert [n.body for n in notices(world.g1)] == ["Nguyễn Minh An đã đến trường lúc 07:45 (muộn)."]
    # the device was offline: a late batch holds an earlier `in` (07:20): the day becomes present, in time order;
    # the guardian was told of the arrival already, so nobody is told again
    r = checkin(client, key, ("a0", world.s1, "07:20", "in"))
    assert r.json == {"stored": 1, "duplicates": 0, "rejected": []}
    rec = AttendanceRecord.get(AttendanceRecord.student == world.s1.id)
    assert rec.status == "present" and rec.check_in_at == dt.datetime(2026, 11, 25, 0, 20)
    assert len(notices(world.g1)) == 1
    # the teacher set Ngọc absent: a later gate `in` records the time but leaves the status
    post_day(client, world, world.teacher, [(world.s2, "absent_unexcused")])
    checkin(client, key, ("b1", world.s2, "08:10", "in"))
    rec = AttendanceRecord.get(AttendanceRecord.student == world.s2.id)
    assert (rec.status, rec.source, rec.check_in_at) == ("absent_unexcused", "teacher", dt.datetime(2026, 11, 25, 1, 10))
    # an `out` tells "left" (an event more than 10 minutes ahead of the server's clock is refused)
    r = checkin(client, key, ("a2", world.s1, "16:40", "out"))
    assert r.json == {"stored": 0, "duplicates": 0, "rejected": [{"event_id": "a2", "reason": "in_future"}]}
    world.make.app.extensions["lienlac.clock"] = lambda: dt.datetime(2026, 11, 25, 10, 0)  # 17:00 in Hà Nội
    checkin(client, key, ("a2", world.s1, "16:40", "out"))
    assert notices(world.g1)[-1].body == "Nguyễn Minh An đã rời trường lúc 16:40."
    assert AttendanceRecord.get(AttendanceRecord.student == world.s1.id).check_out_at == dt.datetime(2026, 11, 25, 9, 40)
    # a backlog of yesterday: stored and marked, nobody woken up
    before = len(notices(world.g3))
    yesterday = TODAY - dt.timedelta(days=1)
    r = checkin(client, key, ("c0", world.s3, "07:10", "in", yesterday))
    assert r.json["stored"] == 1 and len(notices(world.g3)) == before
    assert AttendanceRecord.get((AttendanceRecord.student == world.s3.id)
                                & (AttendanceRecord.date == yesterday)).status == "present"


def test_school_start_time_setting(client, world):
    url = f"{API}/schools/{world.school.id}/contact-book-settings"
    r = client.get(url, headers=world.h(world.teacher))
    assert r.status_code == 200 and r.json["start_time"] == "07:30" and r.json["school_days"] == [1, 2, 3, 4, 5]
    assert client.put(url, json={"start_time": "08:00"}, headers=world.h(world.teacher)).status_code == 403
    assert client.put(url, json={"start_time": "08:00"}, headers=world.h(world.other_admin)).status_code == 404
    assert client.get(url, headers=world.h(world.g1)).status_code == 403
    assert client.put(url, json={"start_time": "8h"}, headers=world.h(world.admin)).status_code == 422
    assert client.put(url, json={"school_days": [0]}, headers=world.h(world.admin)).status_code == 422
    r = client.put(url, json={"start_time": "08:00", "school_days": [1, 2, 3, 4, 5, 6]}, headers=world.h(world.admin))
    assert r.status_code == 200 and r.json["start_time"] == "08:00" and r.json["school_days"] == [1, 2, 3, 4, 5, 6]
    key = new_device(client, world)["api_key"]
    checkin(client, key, ("x", world.s1, "07:45", "in"))
    assert AttendanceRecord.get(AttendanceRecord.student == world.s1.id).status == "present"
    checkin(client, key, ("y", world.s2, "08:01", "in"))
    assert AttendanceRecord.get(AttendanceRecord.student == world.s2.id).status == "late"
