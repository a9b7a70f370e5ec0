"""The day's page: attendance, check-ins, remarks, meals, timetable and the day's announcements."""
from __future__ import annotations

import datetime as dt

import pytest

from notifications import announcements
from service.roster import logic as roster

from .conftest import API, TODAY, checkin, new_device, post_day


def test_the_days_page(client, world):
    key = new_device(client, world, "Cổng chính")["api_key"]
    checkin(client, key, ("1", world.s1, "07:05", "in"))
    post_day(client, world, world.teacher, [(world.s1, "present", "Ngoan")])
    r = client.get(f"{API}/students/{world.s1.id}/contact-book", query_string={"date": TODAY.isoformat()},
                   headers=world.h(world.g1))
    assert r.status_code == 200, r.json
    page = r.json
    assert set(page) == {"student_id", "date", "attendance", "checkins", "remarks", "meals", "timetable",
                         "announcements"}
    assert page["date"] == "2026-11-25"
    assert page["attendance"] == {"date": "2026-11-25", "status": "present", "note": "Ngoan", "source": "teacher",
                                  "check_in_at": "2026-11-25T00:05:00Z", "check_out_at": None}
    assert page["checkins"] == [{"at": "2026-11-25T00:05:00Z", "direction": "in", "device_id": page["checkins"][0]["device_id"],
                                 "device_name": "Cổng chính"}]
    assert page["remarks"] == [] and page["meals"] == [] and page["timetable"] == []
    assert page["announcements"] == []
    # the default date is today in the school's timezone (the injected clock)
    assert client.get(f"{API}/students/{world.s1.id}/contact-book", headers=world.h(world.g1)).json["date"] == "2026-11-25"
    empty = client.get(f"{API}/students/{world.s1.id}/contact-book", query_string={"date": "2026-11-24"},
                       headers=world.h(world.g1)).json
    assert empty["attendance"] is None and empty["checkins"] == []


def test_the_days_announcements_are_those_received_that_day(client, world):
    """Announcements are stamped with the real time: the page of today (school time) shows them."""
    world.make.app.extensions.pop("lienlac.clock")
    today = roster.school_today(world.school.id)
    announcements.create(world.admin.id, "Họp phụ huynh", "Thứ Bảy 8 giờ.", {"school_id": world.school.id})
    announcements.create(world.admin.id, "Lớp 3B đi tham quan", "Thứ Sáu.", {"class_ids": [world.klass_b.id]})
    if roster.school_today(world.school.id) != today:
        pytest.skip("ran across midnight (school time)")
    url = f"{API}/students/{world.s1.id}/contact-book"
    page = client.get(url, query_string={"date": today.isoformat()}, headers=world.h(world.g1)).json
    assert [a["title"] for a in page["announcements"]] == ["Họp phụ huynh"]
    # staff see what the child's guardians received
    page = client.get(url, query_string={"date": today.isoformat()}, headers=world.h(world.teacher)).json
    assert [a["title"] for a in page["announcements"]] == ["Họp phụ huynh"]
    page = client.get(f"{API}/students/{world.s3.id}/contact-book", query_string={"date": today.isoformat()},
                      headers=world.h(world.g3)).json
    assert [a["title"] for a in page["announcements"]] == ["Họp phụ huynh", "Lớp 3B đi tham quan"]
    yesterday = today - dt.timedelta(days=1)
    assert client.get(url, query_string={"date": yesterday.isoformat()},
                      headers=world.h(world.g1)).json["announcements"] == []
