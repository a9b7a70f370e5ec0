"""Who may do what (404 for what the caller may not know exists, 403 for a role that never may) and bad
input (422, nothing stored): issue 10, acceptance 3."""
from __future__ import annotations

import datetime as dt

from contactbook.models import AttendanceChange, AttendanceRecord, LeaveRequest
from service.roster import logic as roster

from .conftest import API, TODAY, post_day


def test_only_the_homeroom_teacher_or_an_admin_posts_a_class_day(client, world):
    records = [(world.s1, "absent_unexcused")]
    assert post_day(client, world, world.other_teacher, records).status_code == 404  # teaches another class
    assert post_day(client, world, world.other_admin, records).status_code == 404  # admin of another school
    assert post_day(client, world, world.g1, records).status_code == 404  # a guardian
    assert post_day(client, world, world.subject_teacher, records).status_code == 403  # teaches it, not homeroom
    assert post_day(client, world, world.cafeteria, records).status_code == 403
    assert AttendanceRecord.select().count() == 0 and AttendanceChange.select().count() == 0
    assert post_day(client, world, world.admin, records).status_code == 200
    r = client.get(f"{API}/classes/{world.klass.id}/attendance", headers=world.h(world.subject_teacher))
    assert r.status_code == 200 and len(r.json["records"]) == 1  # any teacher of the class reads the day
    assert client.get(f"{API}/classes/{world.klass.id}/attendance", headers=world.h(world.other_teacher)).status_code == 404
    assert client.get(f"{API}/classes/{world.klass.id}/attendance", headers=world.h(world.cafeteria)).status_code == 404


def test_bad_input_answers_422_and_stores_nothing(client, world):
    cases = [
        [(world.s1, "present"), (world.s3, "absent_unexcused")],  # s3 is in another class
        [(world.s1, "present"), (world.stranger, "present")],  # another school's child
        [(world.s1, "present"), (world.s1, "late")],  # listed twice
        [(world.s1, "away")],
        [(world.s1, "late", "x" * 501)],
    ]
    for records in cases:
        r = post_day(client, world, world.teacher, records)
        assert r.status_code == 422, (records, r.json)
        assert r.json["error"]["code"] == "validation_error" and r.json["error"]["fields"]
    r = post_day(client, world, world.teacher, [(world.s1, "present"), (world.s3, "late")])
    assert r.json["error"]["fields"] == {"records.1.student_id": ["Not a student of this class."]}
    assert post_day(client, world, world.teacher, [(world.s1, "present")],
                    day=TODAY + dt.timedelta(days=1)).status_code == 422  # the future
    url = f"{API}/classes/{world.klass.id}/attendance"
    for body in ({"date": "25/11/2026", "records": [{"student_id": str(world.s1.id), "status": "late"}]},
                 {"date": TODAY.isoformat(), "records": []}, {"date": TODAY.isoformat()},
                 {"date": TODAY.isoformat(), "records": [{"student_id": "x", "status": "late"}]}):
        assert client.post(url, json=body, headers=world.h(world.teacher)).status_code == 422, body
    assert AttendanceRecord.select().count() == 0 and AttendanceChange.select().count() == 0
    # ranges
    url = f"{API}/students/{world.s1.id}/attendance"
    assert client.get(url, query_string={"from": "2026-11-25", "to": "2026-11-01"},
                      headers=world.h(world.g1)).status_code == 422
    assert client.get(url, query_string={"from": "2025-01-01", "to": "2026-11-01"},
                      headers=world.h(world.g1)).status_code == 422
    assert client.get(url, query_string={"from": "soon"}, headers=world.h(world.g1)).status_code == 422


def test_guardians_see_only_their_own_children(client, world):
    post_day(client, world, world.teacher, [(world.s1, "late"), (world.s2, "absent_unexcused")])
    student_urls = [f"{API}/students/{world.s1.id}/attendance", f"{API}/students/{world.s1.id}/contact-book",
                    f"{API}/students/{world.s1.id}/leave-requests"]
    for url in student_urls:
        assert client.get(url, headers=world.h(world.g1)).status_code == 200, url
        assert client.get(url, headers=world.h(world.teacher)).status_code == 200, url
        assert client.get(url, headers=world.h(world.subject_teacher)).status_code == 200, url
        assert client.get(url, headers=world.h(world.admin)).status_code == 200, url
        for outsider in (world.g2, world.g3, world.other_teacher, world.other_admin):
            r = client.get(url, headers=world.h(outsider))
            assert r.status_code == 404 and r.json["error"]["code"] == "not_found", (url, outsider.name)
        assert client.get(url, headers=world.h(world.cafeteria)).status_code == 404  # the roster, not the book
    r = client.get(f"{API}/students/{world.s1.id}/attendance", headers=world.h(world.g1))
    assert [(i["date"], i["status"]) for i in r.json["items"]] == [("2026-11-25", "late")]
    # access follows the roster: unlinked, the guardian sees nothing at once
    roster.unlink_guardian(world.s1.id, world.g1.id)
    for url in student_urls:
        assert client.get(url, headers=world.h(world.g1)).status_code == 404
    assert client.post(f"{API}/students/{world.s1.id}/leave-requests", headers=world.h(world.g1),
                       json={"from_date": "2026-11-26", "to_date": "2026-11-26", "reason": "ốm"}).status_code == 404
    assert client.get(f"{API}/students/999999/attendance", headers=world.h(world.admin)).status_code == 404


def _ask(client, world, guardian, student, start, end, reason="Về quê"):
    return client.post(f"{API}/students/{student.id}/leave-requests", headers=world.h(guardian),
                       json={"from_date": start, "to_date": end, "reason": reason})


def test_leave_request_rules(client, world):
    first = _ask(client, world, world.g1, world.s1, "2026-11-26", "2026-11-27")
    assert first.status_code == 201
    # overlapping a pending one → 409; the next day is fine
    r = _ask(client, world, world.g1, world.s1, "2026-11-27", "2026-11-30")
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict"
    assert _ask(client, world, world.g1, world.s1, "2026-11-30", "2026-11-30").status_code == 201
    # staff and other guardians may not ask
    assert _ask(client, world, world.teacher, world.s1, "2026-12-07", "2026-12-07").status_code == 403
    assert _ask(client, world, world.g2, world.s1, "2026-12-07", "2026-12-07").status_code == 404
    for start, end, reason in (("2026-11-27", "2026-11-26", "x"), ("2026-12-01", "2027-01-15", "x"),
                               ("2026-12-07", "2026-12-07", ""), ("2026-09-01", "2026-09-01", "x")):
        assert _ask(client, world, world.g1, world.s1, start, end, reason).status_code == 422, (start, end, reason)

    leave_id = first.json["id"]
    decide = f"{API}/leave-requests/{leave_id}/decision"
    assert client.post(decide, json={"approved": True}, headers=world.h(world.subject_teacher)).status_code == 403
    assert client.post(decide, json={"approved": True}, headers=world.h(world.g1)).status_code == 403
    assert client.post(decide, json={"approved": True}, headers=world.h(world.other_teacher)).status_code == 404
    assert client.post(decide, json={"approved": True}, headers=world.h(world.g2)).status_code == 404
    assert client.post(decide, json={"approved": "maybe"}, headers=world.h(world.teacher)).status_code == 422
    assert LeaveRequest.get_by_id(int(leave_id)).status == "pending"
    r = client.post(decide, json={"approved": False, "note": "Cần giấy khám bệnh"}, headers=world.h(world.admin))
    assert r.status_code == 200 and r.json["status"] == "rejected" and r.json["decision_note"] == "Cần giấy khám bệnh"
    assert client.post(decide, json={"approved": True}, headers=world.h(world.teacher)).status_code == 409
    assert not AttendanceRecord.select().exists()  # a rejected request marks nothing
    # a rejected request no longer blocks the days
    again = _ask(client, world, world.g1, world.s1, "2026-11-26", "2026-11-27")
    assert again.status_code == 201

    # cancel: a guardian of the child while pending; afterwards 409
    cancel = f"{API}/leave-requests/{again.json['id']}/cancel"
    assert client.post(cancel, headers=world.h(world.teacher)).status_code == 403
    assert client.post(cancel, headers=world.h(world.g2)).status_code == 404
    told = LeaveRequest.select().count()
    r = client.post(cancel, headers=world.h(world.g1))
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    assert client.post(cancel, headers=world.h(world.g1)).status_code == 409
    assert client.post(f"{API}/leave-requests/{again.json['id']}/decision", json={"approved": True},
                       headers=world.h(world.teacher)).status_code == 409
    assert LeaveRequest.select().count() == told
    assert client.post(f"{API}/leave-requests/999999/cancel", headers=world.h(world.g1)).status_code == 404

    # the class's list for its teachers, filtered by status, newest first
    url = f"{API}/classes/{world.klass.id}/leave-requests"
    r = client.get(url, query_string={"status": "pending"}, headers=world.h(world.teacher))
    assert r.status_code == 200 and [i["from_date"] for i in r.json["items"]] == ["2026-11-30"]
    r = client.get(url, headers=world.h(world.subject_teacher))
    assert [i["status"] for i in r.json["items"]] == ["cancelled", "pending", "rejected"]
    assert client.get(url, query_string={"status": "odd"}, headers=world.h(world.teacher)).status_code == 422
    assert client.get(url, headers=world.h(world.other_teacher)).status_code == 404
    assert client.get(url, headers=world.h(world.g1)).status_code == 404
    r = client.get(url, query_string={"limit": 2}, headers=world.h(world.teacher))
    assert len(r.json["items"]) == 2 and r.json["next_cursor"]
    r = client.get(url, query_string={"limit": 2, "cursor": r.json["next_cursor"]}, headers=world.h(world.teacher))
    assert [i["status"] for i in r.json["items"]] == ["rejected"] and r.json["next_cursor"] is None


def test_approval_marks_school_days_and_keeps_days_the_child_came(client, world):
    # Friday present (posted), Saturday and Sunday are no school days, Monday unset
    world.make.app.extensions["lienlac.clock"] = lambda: dt.datetime(2026, 11, 27, 3, 0)
    post_day(client, world, world.teacher, [(world.s1, "present")], day=dt.date(2026, 11, 27))
    r = _ask(client, world, world.g1, world.s1, "2026-11-26", "2026-11-30", "Ốm")
    assert r.status_code == 201
    # Thursday had been posted unexcused before the approval: the approval excuses it
    world.make.app.extensions["lienlac.clock"] = lambda: dt.datetime(2026, 11, 26, 3, 0)
    post_day(client, world, world.teacher, [(world.s1, "absent_unexcused")], day=dt.date(2026, 11, 26))
    r = client.post(f"{API}/leave-requests/{r.json['id']}/decision", json={"approved": True},
                    headers=world.h(world.teacher))
    assert r.status_code == 200
    r = client.get(f"{API}/students/{world.s1.id}/attendance", query_string={"from": "2026-11-26", "to": "2026-11-30"},
                   headers=world.h(world.g1))
    assert [(i["date"], i["status"], i["note"]) for i in r.json["items"]] == [
        ("2026-11-26", "absent_excused", "Ốm"), ("2026-11-27", "present", ""), ("2026-11-30", "absent_excused", "Ốm")]
