"""Timetables: set whole by an admin, read by the class's people; clashes 409; bad input 422, nothing stored."""
from __future__ import annotations

import pytest

from schedules.models import TimetablePeriod

from .conftest import API, field_errors, put_timetable


def _stored(klass):
    return sorted((p.weekday, p.period, p.start_min, p.end_min, p.subject, p.teacher_id)
                  for p in TimetablePeriod.select().where(TimetablePeriod.school_class == klass.id))


def test_admin_sets_the_class_timetable_and_its_people_read_it(client, make, world):
    r = put_timetable(client, make, world)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["class_id"] == str(world.klass.id) and body["term_id"] == str(world.term.id)
    assert body["term"] == {"id": str(world.term.id), "name": "Học kỳ I", "starts_on": "2026-09-07",
                            "ends_on": "2026-12-31"}
    assert [(p["weekday"], p["period"], p["start"], p["end"], p["subject"]) for p in body["periods"]] == [
        (1, 1, "07:00", "07:45", "Toán"), (1, 2, "07:50", "08:35", "Tiếng Việt"),
        (4, 1, "07:00", "07:45", "Toán"), (4, 2, "07:50", "08:35", "Tiếng Việt")]
    assert body["periods"][0]["teacher"] == {"id": str(world.math.id), "name": "Thầy Minh"}
    assert body["periods"][0]["teacher_id"] == str(world.math.id) and body["periods"][0]["room"] == "P101"

    url = f"{API}/classes/{world.klass.id}/timetable?term_id={world.term.id}"
    for reader in (world.mother, world.homeroom, world.math, world.admin):
        got = client.get(url, headers=make.headers(reader))
        assert got.status_code == 200 and got.get_json() == body, reader.name
    # the default term is the one running today (the injected clock: 18 Nov 2026)
    assert client.get(f"{API}/classes/{world.klass.id}/timetable", headers=make.headers(world.mother)).get_json() == body
    # a guardian of another class, a teacher of another class: not found
    for outsider in (world.stranger, world.substitute):
        assert client.get(url, headers=make.headers(outsider)).status_code == 404

    # replacing: the new timetable is the whole timetable
    r = put_timetable(client, make, world, periods=world.periods[:1])
    assert r.status_code == 200 and len(r.get_json()["periods"]) == 1
    assert _stored(world.klass) == [(1, 1, 420, 465, "Toán", world.math.id)]


def test_only_the_schools_admins_set_a_timetable(client, make, world):
    assert put_timetable(client, make, world, user=world.homeroom).status_code == 403
    assert put_timetable(client, make, world, user=world.mother).status_code == 404
    other_admin = make.admin(make.school("Trường khác"))
    assert put_timetable(client, make, world, user=other_admin).status_code == 404
    assert _stored(world.klass) == []


def test_a_teacher_in_two_classes_at_once_is_409_naming_the_clash(client, make, timetabled):
    w = timetabled
    clash = [{"weekday": 4, "period": 1, "start": "07:30", "end": "08:15", "subject": "Toán",
              "teacher_id": str(w.math.id)},
             {"weekday": 4, "period": 2, "start": "08:20", "end": "09:05", "subject": "Mĩ thuật",
              "teacher_id": str(w.substitute.id)}]
    r = put_timetable(client, make, w, klass=w.other_class, periods=clash)
    assert r.status_code == 409, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "conflict"
    text = field_errors(r, "periods.0.teacher_id")[0]
    for part in ("Thầy Minh", "1A", f"class {w.klass.id}", "Thursday", "weekday 4", "period 1", "07:00–07:45"):
        assert part in text and part in error["message"], part
    assert field_errors(r, "periods.1.teacher_id") is None
    assert _stored(w.other_class) == []  # nothing stored
    # back to back is not a clash (07:45 ends, 07:45 starts)
    clash[0].update(start="07:45", end="08:15")
    assert put_timetable(client, make, w, klass=w.other_class, periods=clash).status_code == 200
    assert len(_stored(w.other_class)) == 2
    # the same class may be set again with its own teacher (its own periods are not a clash)
    assert put_timetable(client, make, w).status_code == 200


@pytest.mark.parametrize("patch, field", [
    ({"end": "06:30"}, "periods.1.end"),
    ({"start": "08:00", "end": "08:00"}, "periods.1.end"),
    ({"weekday": 8}, "periods.1.weekday"),
    ({"weekday": 0}, "periods.1.weekday"),
    ({"start": "7h"}, "periods.1.start"),
    ({"period": 1, "weekday": 1}, "periods.1.period"),   # period 1 of Monday twice
    ({"period": 5, "start": "07:10", "end": "07:40"}, "periods.1.start"),  # overlaps Monday period 1
])
def test_bad_periods_are_422_and_nothing_is_stored(client, make, timetabled, patch, field):
    w = timetabled
    before = _stored(w.klass)
    periods = [dict(p) for p in w.periods]
    periods[1].update(patch)
    r = put_timetable(client, make, w, periods=periods)
    assert r.status_code == 422, r.get_json()
    assert field_errors(r, field), r.get_json()
    assert _stored(w.klass) == before


def test_a_teacher_of_another_school_or_a_term_of_another_school_is_422(client, make, timetabled):
    from service.roster import logic as roster
    import datetime as dt

    w = timetabled
    before = _stored(w.klass)
    elsewhere = make.school("Trường khác")
    outsider = make.teacher(elsewhere)
    periods = [dict(p) for p in w.periods]
    periods[2]["teacher_id"] = str(outsider.id)
    r = put_timetable(client, make, w, periods=periods)
    assert r.status_code == 422 and field_errors(r, "periods.2.teacher_id")
    periods[2]["teacher_id"] = str(w.mother.id)  # a guardian is no teacher
    assert put_timetable(client, make, w, periods=periods).status_code == 422
    year = roster.create_school_year(elsewhere.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
    term = roster.create_term(year.id, "HK I", dt.date(2026, 9, 7), dt.date(2026, 12, 31))
    r = put_timetable(client, make, w, term_id=term.id)
    assert r.status_code == 422 and "term_id" in r.get_json()["error"]["fields"]
    r = client.put(f"{API}/classes/{w.klass.id}/timetable", json={"periods": []}, headers=make.headers(w.admin))
    assert r.status_code == 422 and "term_id" in r.get_json()["error"]["fields"]
    assert _stored(w.klass) == before
