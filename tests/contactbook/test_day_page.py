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


def test_the_days_page_shows_the_days_meals_and_timetable_from_their_packages(client, world):
    """Meals come from nutrition, the periods (with the day's change) from schedules, through their entries."""
    year = roster.create_school_year(world.school.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
    term = roster.create_term(year.id, "Học kỳ I", dt.date(2026, 9, 1), dt.date(2027, 1, 10))
    admin = world.h(world.admin)
    r = client.put(f"{API}/classes/{world.klass.id}/timetable", headers=admin, json={
        "term_id": str(term.id), "periods": [
            {"weekday": 3, "period": 1, "start": "07:00", "end": "07:45", "subject": "Toán",
             "teacher_id": str(world.subject_teacher.id), "room": "P.201"},
            {"weekday": 3, "period": 2, "start": "07:50", "end": "08:35", "subject": "Tiếng Việt"}]})
    assert r.status_code == 200, r.json
    r = client.post(f"{API}/classes/{world.klass.id}/timetable/changes", headers=admin,
                    json={"date": TODAY.isoformat(), "period": 1, "kind": "cancelled", "note": "Thầy ốm"})
    assert r.status_code == 201, r.json
    r = client.post(f"{API}/schools/{world.school.id}/dishes", headers=admin, json={
        "name": "Cơm gà xé", "kcal": 520, "protein_g": 24, "fat_g": 12, "carbs_g": 78, "allergens": ["egg"]})
    assert r.status_code == 201, r.json
    dish = r.json["id"]
    r = client.put(f"{API}/schools/{world.school.id}/menus/{TODAY.isoformat()}", headers=admin,
                   json={"meals": [{"meal": "lunch", "dish_ids": [dish]}]})
    assert r.status_code == 200, r.json
    r = client.post(f"{API}/schools/{world.school.id}/menus/publish", headers=admin,
                    json={"from": TODAY.isoformat(), "to": TODAY.isoformat()})
    assert r.status_code == 200, r.json

    page = client.get(f"{API}/students/{world.s1.id}/contact-book", query_string={"date": TODAY.isoformat()},
                      headers=world.h(world.g1)).json
    assert [(m["meal"], [d["name"] for d in m["dishes"]], m["portion"]) for m in page["meals"]] == [
        ("lunch", ["Cơm gà xé"], None)]
    assert page["meals"][0]["dishes"][0]["id"] == dish and page["meals"][0]["dishes"][0]["allergens"] == ["egg"]
    assert [(p["period"], p["subject"], p["status"], p["note"]) for p in page["timetable"]] == [
        (1, "Toán", "cancelled", "Thầy ốm"), (2, "Tiếng Việt", "scheduled", None)]
    assert page["timetable"][0]["teacher"]["id"] == str(world.subject_teacher.id)
    # another day of the week: no meal, no period
    other = client.get(f"{API}/students/{world.s1.id}/contact-book", query_string={"date": "2026-11-24"},
                       headers=world.h(world.g1)).json
    assert other["meals"] == [] and other["timetable"] == []
