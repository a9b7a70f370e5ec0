"""Gate devices and check-ins: keys, schools, replays, batches (issue 10, acceptance 3)."""
from __future__ import annotations

import datetime as dt

import pytest

from contactbook.models import AttendanceRecord, CheckIn, GateDevice
from service import db as dbmod

from .conftest import API, TODAY, checkin, new_device, notices, utc


def test_device_keys_are_shown_once_stored_hashed_and_revocable(client, world):
    device = new_device(client, world, "Cổng sau")
    assert set(device) == {"id", "school_id", "name", "created_at", "last_seen_at", "api_key"}
    row = GateDevice.get_by_id(int(device["id"]))
    assert device["api_key"] not in row.key_hash and len(row.key_hash) == 64
    listed = client.get(f"{API}/schools/{world.school.id}/gate-devices", headers=world.h(world.admin)).json["items"]
    assert [d["name"] for d in listed] == ["Cổng sau"] and "api_key" not in listed[0]

    # who may not: a teacher (403), a guardian (403), another school's admin (404)
    for user, status in ((world.teacher, 403), (world.g1, 403), (world.other_admin, 404)):
        assert client.post(f"{API}/schools/{world.school.id}/gate-devices", json={"name": "x"},
                           headers=world.h(user)).status_code == status
        assert client.get(f"{API}/schools/{world.school.id}/gate-devices", headers=world.h(user)).status_code == status
        assert client.delete(f"{API}/gate-devices/{device['id']}", headers=world.h(user)).status_code == status
    assert client.post(f"{API}/schools/{world.school.id}/gate-devices", json={"name": ""},
                       headers=world.h(world.admin)).status_code == 422

    assert checkin(client, device["api_key"], ("1", world.s1, "07:00", "in")).status_code == 200
    # a wrong key, no key, a user's token instead: 401, nothing stored
    for headers in ({"X-Device-Key": device["api_key"] + "x"}, {}, world.h(world.admin)):
        r = client.post(f"{API}/checkins", headers=headers, json={"events": [
            {"event_id": "2", "student_id": str(world.s2.id), "at": utc(TODAY, "07:01"), "direction": "in"}]})
        assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    # revoked: the key stops working at once (even with a malformed body: the key is checked first)
    assert client.delete(f"{API}/gate-devices/{device['id']}", headers=world.h(world.admin)).status_code == 204
    r = checkin(client, device["api_key"], ("3", world.s2, "07:02", "in"))
    assert r.status_code == 401
    assert client.post(f"{API}/checkins", data="{", headers={"X-Device-Key": device["api_key"],
                                                             "Content-Type": "application/json"}).status_code in (400, 401)
    assert client.delete(f"{API}/gate-devices/{device['id']}", headers=world.h(world.admin)).status_code == 404
    assert client.get(f"{API}/schools/{world.school.id}/gate-devices", headers=world.h(world.admin)).json["items"] == []
    assert CheckIn.select().count() == 1
    assert not AttendanceRecord.select().where(AttendanceRecord.student == world.s2.id).exists()


def test_a_device_key_works_only_for_its_school(client, world):
    key = new_device(client, world)["api_key"]
    other_key = new_device(client, world, "Cổng trường khác", school=world.other_school, admin=world.other_admin)["api_key"]
    r = checkin(client, key, ("1", world.s1, "07:00", "in"), ("2", world.stranger, "07:00", "in"),
                ("3", world.s2, "07:01", "in"))
    assert r.status_code == 200
    assert r.json == {"stored": 2, "duplicates": 0, "rejected": [{"event_id": "2", "reason": "student_not_in_school"}]}
    r = checkin(client, other_key, ("1", world.s1, "07:00", "in"))
    assert r.json == {"stored": 0, "duplicates": 0, "rejected": [{"event_id": "1", "reason": "student_not_in_school"}]}
    r = client.post(f"{API}/checkins", headers={"X-Device-Key": key}, json={"events": [
        {"event_id": "9", "student_id": "999999", "at": utc(TODAY, "07:00"), "direction": "in"}]})
    assert r.json["rejected"] == [{"event_id": "9", "reason": "student_not_in_school"}]
    r = checkin(client, key, ("old", world.s1, "07:00", "in", dt.date(2026, 10, 1)))
    assert r.json["rejected"] == [{"event_id": "old", "reason": "too_old"}]
    assert not CheckIn.select().where(CheckIn.student == world.stranger.id).exists()
    assert not AttendanceRecord.select().where(AttendanceRecord.student == world.stranger.id).exists()
    assert CheckIn.select().count() == 2


def test_bad_batches_are_refused_whole(client, world):
    key = new_device(client, world)["api_key"]
    good = {"event_id": "ok", "student_id": str(world.s1.id), "at": utc(TODAY, "07:00"), "direction": "in"}
    for bad in ({"direction": "sideways"}, {"at": "2026-11-25T07:00:00"}, {"at": "yesterday"}, {"event_id": ""},
                {"student_id": "abc"}, {"event_id": "x" * 101}):
        r = client.post(f"{API}/checkins", headers={"X-Device-Key": key}, json={"events": [good, {**good, **bad}]})
        assert r.status_code == 422, (bad, r.json)
        assert r.json["error"]["code"] == "validation_error"
    assert client.post(f"{API}/checkins", headers={"X-Device-Key": key}, json={}).status_code == 422
    r = client.post(f"{API}/checkins", headers={"X-Device-Key": key}, json={"events": [good] * 1001})
    assert r.status_code == 422
    assert CheckIn.select().count() == 0 and AttendanceRecord.select().count() == 0


class QueryCounter:
    def __init__(self, database):
        self.database = database
        self.count = 0

    def __enter__(self):
        original = self.original = self.database.execute_sql

        def counting(sql, params=None, *args, **kwargs):
            self.count += 1  # the notices' delivery (inline here) included: one set-wise store for them all
            return original(sql, params, *args, **kwargs)

        self.database.execute_sql = counting
        return self

    def __exit__(self, *exc):
        self.database.execute_sql = self.original


def test_a_replayed_batch_of_500_is_stored_once(client, world, make):
    students = [world.s1, world.s2] + [make.student(world.klass, f"Học sinh {i}") for i in range(48)]
    parents = {s.id: world.guardian(s, f"Phụ huynh {s.id}") for s in students[2:]}
    key = new_device(client, world)["api_key"]
    base = dt.datetime(2026, 11, 25, 0, 0)  # 07:00 in Hà Nội
    events = [{"event_id": f"ev-{i}", "student_id": str(students[i % 50].id),
               "at": (base + dt.timedelta(seconds=i * 7)).isoformat() + "Z", "direction": "in" if i < 250 else "out"}
              for i in range(500)]
    world.make.app.extensions["lienlac.clock"] = lambda: dt.datetime(2026, 11, 25, 2, 0)
    with QueryCounter(dbmod.db.obj) as counter:
        r = client.post(f"{API}/checkins", headers={"X-Device-Key": key}, json={"events": events})
    assert r.status_code == 200, r.json
    assert r.json == {"stored": 500, "duplicates": 0, "rejected": []}
    # a constant number of statements for the batch, whatever its size, the delivery of its notices
    # (arrived, left) included
    assert counter.count < 20, counter.count
    assert CheckIn.select().count() == 500
    assert AttendanceRecord.select().where(AttendanceRecord.date == TODAY).count() == 50
    first = parents[students[2].id]
    assert [n.body.split(" lúc ")[1] for n in notices(first)] == ["07:00.", "07:52."]  # arrived at the first, left at the last

    # the device replays everything, shuffled, and a later batch: each event stored once, nobody told again
    told = {p.id: len(notices(p)) for p in parents.values()}
    r = client.post(f"{API}/checkins", headers={"X-Device-Key": key}, json={"events": events[::-1]})
    assert r.json == {"stored": 0, "duplicates": 500, "rejected": []}
    r = client.post(f"{API}/checkins", headers={"X-Device-Key": key},
                    json={"events": events[:10] + [{**events[0], "event_id": "new-1"}, {**events[0], "event_id": "new-1"}]})
    assert r.json == {"stored": 1, "duplicates": 11, "rejected": []}
    assert CheckIn.select().count() == 501
    assert {p.id: len(notices(p)) for p in parents.values()} == told


@pytest.mark.parametrize("direction", ["in", "out"])
def test_events_on_a_day_off_are_stored_but_do_not_mark_attendance(client, world, direction):
    key = new_device(client, world)["api_key"]
    saturday = dt.date(2026, 11, 28)
    world.make.app.extensions["lienlac.clock"] = lambda: dt.datetime(2026, 11, 28, 3, 0)
    r = checkin(client, key, ("sat", world.s1, "08:00", direction, saturday))
    assert r.json["stored"] == 1
    assert not AttendanceRecord.select().exists()
    page = client.get(f"{API}/students/{world.s1.id}/contact-book", query_string={"date": "2026-11-28"},
                      headers=world.h(world.g1)).json
    assert page["attendance"] is None and [c["direction"] for c in page["checkins"]] == [direction]
