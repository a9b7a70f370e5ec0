"""Odd input on every schedules endpoint answers a 4xx envelope, never a 500, and stores nothing."""
from __future__ import annotations

from schedules.models import CalendarFeed, EventSignup, SchoolEvent, TimetableChange, TimetablePeriod

from .conftest import API


def test_odd_input_is_4xx_everywhere(client, make, timetabled):
    w = timetabled
    h = make.headers(w.admin)
    before = TimetablePeriod.select().count()
    big = str(2**63)
    cases = [
        ("put", f"/classes/{w.klass.id}/timetable", {"term_id": "x", "periods": "no"}),
        ("put", f"/classes/{w.klass.id}/timetable", {"term_id": big, "periods": []}),
        ("put", f"/classes/{w.klass.id}/timetable", {"term_id": str(w.term.id), "periods": [None, 5]}),
        ("put", f"/classes/{w.klass.id}/timetable", {"term_id": str(w.term.id), "periods": [
            {"weekday": "Thứ Hai", "period": 1.5, "start": 700, "end": None, "subject": ["x"]}]}),
        ("put", f"/classes/{w.klass.id}/timetable", {"term_id": str(w.term.id), "periods": [
            {"weekday": 1, "period": 1, "start": "07:00", "end": "07:45", "subject": "x" * 101}]}),
        ("put", f"/classes/{w.klass.id}/timetable", [1, 2]),
        ("put", f"/classes/{big}/timetable", {"term_id": "1", "periods": []}),
        ("get", f"/classes/{w.klass.id}/timetable?term_id=-1", None),
        ("post", f"/classes/{w.klass.id}/timetable/changes", {"date": "2026-02-30", "period": 1, "kind": "cancelled"}),
        ("post", f"/classes/{w.klass.id}/timetable/changes", {"date": "2026-11-26", "period": "1", "kind": None}),
        ("post", f"/classes/{w.klass.id}/timetable/changes", {"date": "2026-11-26", "period": 1, "kind": "moved",
                                                                "to_period": 2, "to_start": "25:00", "to_end": "x"}),
        ("post", f"/classes/{w.klass.id}/timetable/changes", {"date": "2026-11-26", "period": 1, "kind": "cancelled",
                                                                "note": "x" * 501}),
        ("get", f"/classes/{w.klass.id}/timetable/changes?from=x&to=2026-01-01", None),
        ("get", f"/students/{w.alice.id}/timetable?week=9999-W99", None),
        ("get", f"/students/{w.alice.id}/timetable?week=0000-W01", None),
        ("get", f"/students/{w.alice.id}/calendar?from=2026-01-01&to=2030-01-01", None),
        ("get", f"/students/{w.alice.id}/calendar?from=yesterday", None),
        ("get", f"/students/{w.alice.id}/calendar?from=9999-12-31", None),
        ("get", f"/students/{w.alice.id}/calendar?from=9999-12-30&to=9999-12-31", None),
        ("get", f"/students/{w.alice.id}/timetable?week=9999-W52", None),
        ("get", f"/students/{w.alice.id}/timetable?week=3000-W01", "ok"),
        ("post", f"/schools/{w.school.id}/events", {"title": "x", "starts_at": "9999-12-31T22:00:00Z",
                                                     "ends_at": "9999-12-31T23:00:00Z"}),
        ("post", f"/classes/{w.klass.id}/timetable/changes", {"date": "9999-12-31", "period": 1, "kind": "moved",
                                                                "to_date": "9999-12-31", "to_period": 2}),
        ("post", f"/schools/{w.school.id}/events", {"title": "x", "starts_at": "2026-13-01T00:00:00Z",
                                                     "ends_at": "2026-11-01T00:00:00Z"}),
        ("post", f"/schools/{w.school.id}/events", {"title": "x", "starts_at": "2026-11-01T00:00:00Z",
                                                     "ends_at": "2026-11-01T01:00:00Z", "audience": {"class_ids": ["x"]},
                                                     "capacity": -1}),
        ("post", f"/events/{big}/signups", {"student_id": str(w.alice.id)}),
        ("post", "/events/1/signups", {"student_id": big}),
        ("delete", f"/events/1/signups/{big}", None),
        ("get", "/calendar/" + "x" * 500 + ".ics", None),
        ("get", "/calendar/%00.ics", None),
    ]
    for method, path, body in cases:
        kwargs = {"headers": h}
        if body is not None and body != "ok":
            kwargs["json"] = body
        r = getattr(client, method)(API + path, **kwargs)
        if body == "ok":
            assert r.status_code == 200, (path, r.get_data(as_text=True)[:300])
            continue
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.get_data(as_text=True)[:300])
        assert r.get_json()["error"]["code"], (method, path)
    assert TimetablePeriod.select().count() == before
    assert TimetableChange.select().count() == SchoolEvent.select().count() == EventSignup.select().count() == 0
    assert CalendarFeed.select().count() == 0
