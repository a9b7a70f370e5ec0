"""The iCalendar feed: parses with icalendar, expands (recurring-ical-events) to the right lessons,
follows the roster live, and a revoked token is 404."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from service.roster import logic as roster

from .conftest import API

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def _change(client, make, w, **body):
    r = client.post(f"{API}/classes/{w.klass.id}/timetable/changes", json=body, headers=make.headers(w.admin))
    assert r.status_code == 201, r.get_json()


def _event(client, make, w, **body):
    r = client.post(f"{API}/schools/{w.school.id}/events", json=body, headers=make.headers(w.admin))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _feed_path(client, make, user):
    r = client.post(f"{API}/me/calendar-feed", headers=make.headers(user))
    assert r.status_code == 200, r.get_json()
    url = r.get_json()["url"]
    assert url.startswith("http://localhost/api/v1/calendar/") and url.endswith(".ics")
    return url[len("http://localhost"):]


def _calendar(client, path):
    r = client.get(path)  # no bearer token: the URL is the credential
    assert r.status_code == 200, r.data[:500]
    assert r.mimetype == "text/calendar" and r.mimetype_params.get("charset") == "utf-8"
    return icalendar.Calendar.from_ical(r.data)


def _occurrences(cal):
    """Every occurrence in the term, as (local start, summary), like a phone calendar shows them."""
    found = recurring_ical_events.of(cal).between(dt.date(2026, 9, 1), dt.date(2027, 1, 1))
    return sorted((o["DTSTART"].dt.astimezone(HCM).replace(tzinfo=None), str(o["SUMMARY"])) for o in found)


@pytest.fixture
def changed(client, make, timetabled):
    w = timetabled
    _change(client, make, w, date="2026-11-26", period=1, kind="cancelled")  # a Thursday
    _change(client, make, w, date="2026-11-23", period=2, kind="substitute", teacher_id=str(w.substitute.id))
    _change(client, make, w, date="2026-12-03", period=2, kind="moved", to_date="2026-12-04", to_period=1,
            to_start="07:00", to_end="07:45")
    w.grade1_event = _event(client, make, w, title="Họp phụ huynh", starts_at="2026-11-20T01:00:00Z",
                            ends_at="2026-11-20T03:00:00Z", audience={"grades": [1]}, kind="meeting",
                            location="Hội trường")
    _event(client, make, w, title="Tham quan lớp 2", starts_at="2026-11-21T01:00:00Z", ends_at="2026-11-21T03:00:00Z",
           audience={"grades": [2]})
    return w


def test_a_guardians_feed_expands_to_the_term_with_the_changes(client, make, changed):
    w = changed
    cal = _calendar(client, _feed_path(client, make, w.mother))
    zones = [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")]
    assert zones == ["Asia/Ho_Chi_Minh"]
    series = [e for e in cal.walk("VEVENT") if "RRULE" in e]
    assert len(series) == 4  # one weekly event per period of the timetable
    thursday_math = next(e for e in series if e["DTSTART"].dt == dt.datetime(2026, 9, 10, 7, 0, tzinfo=HCM))
    assert thursday_math["RRULE"]["FREQ"] == ["WEEKLY"]
    assert thursday_math["RRULE"]["UNTIL"] == [dt.datetime(2026, 12, 31, 16, 59, 59, tzinfo=dt.timezone.utc)]
    assert thursday_math["DTSTART"].params["TZID"] == "Asia/Ho_Chi_Minh"
    exdates = [d.dt for ex in ([thursday_math["EXDATE"]] if not isinstance(thursday_math["EXDATE"], list)
                               else thursday_math["EXDATE"]) for d in ex.dts]
    assert exdates == [dt.datetime(2026, 11, 26, 7, 0, tzinfo=HCM)]
    overrides = [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" in e]
    assert sorted(e["RECURRENCE-ID"].dt for e in overrides) == [dt.datetime(2026, 11, 23, 7, 50, tzinfo=HCM),
                                                                 dt.datetime(2026, 12, 3, 7, 50, tzinfo=HCM)]

    occurrences = _occurrences(cal)
    lessons = [o for o in occurrences if "· 1A" in o[1]]
    # 17 Mondays (7 Sep – 28 Dec) and 17 Thursdays (10 Sep – 31 Dec), two periods each = 68,
    # less the cancelled Thursday = 67 (the moved lesson happens on the Friday instead)
    assert len(lessons) == 67
    by_slot = {}
    for start, summary in lessons:
        by_slot.setdefault((start.isoweekday(), start.time()), []).append(start)
    assert {k: len(v) for k, v in by_slot.items()} == {
        (1, dt.time(7, 0)): 17, (1, dt.time(7, 50)): 17, (4, dt.time(7, 0)): 16, (4, dt.time(7, 50)): 16,
        (5, dt.time(7, 0)): 1}
    assert dt.datetime(2026, 11, 26, 7, 0) not in by_slot[(4, dt.time(7, 0))]
    assert dt.datetime(2026, 12, 3, 7, 50) not in by_slot[(4, dt.time(7, 50))]
    assert by_slot[(5, dt.time(7, 0))] == [dt.datetime(2026, 12, 4, 7, 0)]
    substituted = [s for start, s in lessons if start == dt.datetime(2026, 11, 23, 7, 50)]
    assert substituted == ["Tiếng Việt · 1A (Dạy thay: Cô Hoa)"]
    assert min(lessons)[0] == dt.datetime(2026, 9, 7, 7, 0) and max(lessons)[0] == dt.datetime(2026, 12, 31, 7, 50)
    # the grade 1 event, not the grade 2 one
    assert [o for o in occurrences if "· 1A" not in o[1]] == [(dt.datetime(2026, 11, 20, 8, 0), "Họp phụ huynh")]


def test_teachers_feeds_hold_the_periods_they_teach(client, make, changed):
    w = changed
    math = _occurrences(_calendar(client, _feed_path(client, make, w.math)))
    lessons = [o for o in math if "· 1A" in o[1]]
    assert len(lessons) == 17 + 16  # Monday and Thursday period 1, less the cancelled Thursday
    assert ("Họp phụ huynh" in {s for _, s in math})  # an event of a class they teach
    homeroom = [o for o in _occurrences(_calendar(client, _feed_path(client, make, w.homeroom))) if "· 1A" in o[1]]
    # Monday period 2 (less the day Cô Hoa stands in) and Thursday period 2 (one moved to a Friday)
    assert len(homeroom) == 16 + 17 and (dt.datetime(2026, 12, 4, 7, 0), "Tiếng Việt · 1A (Đổi sang tiết 1 ngày 04/12)") in homeroom
    substitute = _occurrences(_calendar(client, _feed_path(client, make, w.substitute)))
    assert substitute == [(dt.datetime(2026, 11, 23, 7, 50), "Tiếng Việt · 1A (dạy thay)")]


def test_revoked_and_replaced_tokens_are_404_and_the_roster_is_followed_live(client, make, changed):
    w = changed
    first = _feed_path(client, make, w.mother)
    assert _calendar(client, first)
    second = _feed_path(client, make, w.mother)  # a new URL: the old one stops working
    assert client.get(first).status_code == 404
    assert _calendar(client, second)
    assert client.delete(f"{API}/me/calendar-feed", headers=make.headers(w.mother)).status_code == 204
    r = client.get(second)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert client.get(f"{API}/calendar/not-a-token.ics").status_code == 404
    assert client.post(f"{API}/me/calendar-feed").status_code == 401
    # a child unlinked: gone from the feed at the next fetch
    third = _feed_path(client, make, w.mother)
    assert len([e for e in _calendar(client, third).walk("VEVENT") if "RRULE" in e]) == 4
    roster.unlink_guardian(w.alice.id, w.mother.id)
    assert _calendar(client, third).walk("VEVENT") == []


def test_the_request_log_does_not_hold_the_feed_token(client, make, world):
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("lienlac.request")
    logger.addHandler(handler)
    try:
        path = _feed_path(client, make, world.mother)
        assert client.get(path).status_code == 200
    finally:
        logger.removeHandler(handler)
    token = path.rsplit("/", 1)[1][:-len(".ics")]
    logged = [r.path for r in records if getattr(r, "path", "").startswith("/api/v1/calendar/")]
    assert len(logged) == 1 and token not in logged[0] and token not in str([vars(r) for r in records])
