"""Changes for a date: told once to the class's guardians and the teachers concerned; the week view
and the .ics both show them; access follows the roster."""
from __future__ import annotations

import datetime as dt
import logging

import icalendar
import recurring_ical_events

from notifications.models import Notification
from schedules import logic
from schedules.models import TimetableChange
from service.roster import logic as roster

from .conftest import API, TERM_END, TERM_START, field_errors

THURSDAY = "2026-11-26"  # in ISO week 2026-W48 (Monday 23 Nov – Sunday 29 Nov)


def _told(user_ids):
    return {u: [n.body for n in Notification.select().where((Notification.user == u)
                                                             & (Notification.category == "schedule"))]
            for u in user_ids}


def _change(client, make, w, user=None, **body):
    return client.post(f"{API}/classes/{w.klass.id}/timetable/changes", json=body,
                       headers=make.headers(user or w.admin))


def _week(client, make, user, student, week="2026-W48"):
    return client.get(f"{API}/students/{student.id}/timetable" + (f"?week={week}" if week else ""),
                      headers=make.headers(user))


def test_a_thursday_cancellation_is_told_once_and_shows_in_the_week(client, make, timetabled):
    w = timetabled
    people = [w.mother, w.father, w.math, w.homeroom, w.substitute, w.stranger, w.admin]
    r = _change(client, make, w, date=THURSDAY, period=1, kind="cancelled", note="Thầy đi tập huấn")
    assert r.status_code == 201, r.get_json()
    change = r.get_json()
    assert (change["kind"], change["date"], change["period"], change["subject"]) == ("cancelled", THURSDAY, 1, "Toán")
    told = _told(u.id for u in people)
    # the families and the period's teacher, once each; not the homeroom teacher of another period,
    # not another family, not the admin who made the change
    assert {u.id for u in people if told[u.id]} == {w.mother.id, w.father.id, w.math.id}
    assert all(len(told[u.id]) == 1 for u in (w.mother, w.father, w.math))
    assert "Thứ Năm 26/11, tiết 1 (Toán): nghỉ." in told[w.mother.id][0]

    # the same change again: 200, nobody told again
    again = _change(client, make, w, date=THURSDAY, period=1, kind="cancelled", note="Thầy đi tập huấn")
    assert again.status_code == 200 and again.get_json()["id"] == change["id"]
    assert _told(u.id for u in people) == told

    week = _week(client, make, w.mother, w.alice)
    assert week.status_code == 200, week.get_json()
    body = week.get_json()
    assert body["week"] == "2026-W48" and body["student_id"] == str(w.alice.id)
    assert [d["date"] for d in body["days"]] == [f"2026-11-{d}" for d in range(23, 30)]
    thursday = body["days"][3]
    assert [(p["period"], p["start"], p["end"], p["subject"], p["status"], p["note"]) for p in thursday["periods"]] == [
        (1, "07:00", "07:45", "Toán", "cancelled", "Thầy đi tập huấn"),
        (2, "07:50", "08:35", "Tiếng Việt", "scheduled", None)]
    assert [p["status"] for p in body["days"][0]["periods"]] == ["scheduled", "scheduled"]
    assert all(d["periods"] == [] for d in body["days"][1:3] + body["days"][4:])
    monday = body["days"][0]["periods"][0]
    assert monday == {"period": 1, "start": "07:00", "end": "07:45", "subject": "Toán",
                      "teacher": {"id": str(w.math.id), "name": "Thầy Minh"}, "room": "P101",
                      "status": "scheduled", "note": None, "change_id": None, "moved_to": None, "moved_from": None}
    # the week before shows Thursday as scheduled
    before = _week(client, make, w.mother, w.alice, "2026-W47").get_json()
    assert [p["status"] for p in before["days"][3]["periods"]] == ["scheduled", "scheduled"]


def test_a_different_change_for_the_slot_replaces_it_and_tells_again(client, make, timetabled):
    w = timetabled
    assert _change(client, make, w, date=THURSDAY, period=1, kind="cancelled").status_code == 201
    r = _change(client, make, w, date=THURSDAY, period=1, kind="substitute", teacher_id=str(w.substitute.id))
    assert r.status_code == 201, r.get_json()
    assert TimetableChange.select().count() == 1
    told = _told([w.mother.id, w.math.id, w.substitute.id, w.homeroom.id])
    assert [len(told[u]) for u in (w.mother.id, w.math.id, w.substitute.id, w.homeroom.id)] == [2, 2, 1, 0]
    assert "Cô Hoa dạy thay" in told[w.substitute.id][0]
    # a substitute replaced by another: the first one hears of it
    other = make.teacher(w.school, "Thầy Nam")
    assert _change(client, make, w, date=THURSDAY, period=1, kind="substitute", teacher_id=str(other.id)).status_code == 201
    told = _told([w.substitute.id, other.id])
    assert len(told[w.substitute.id]) == 2 and len(told[other.id]) == 1
    periods = _week(client, make, w.father, w.bao).get_json()["days"][3]["periods"]
    assert (periods[0]["status"], periods[0]["teacher"]) == ("substitute", {"id": str(other.id), "name": "Thầy Nam"})


def test_a_moved_period_shows_at_both_ends(client, make, timetabled):
    w = timetabled
    r = _change(client, make, w, user=w.homeroom, date="2026-11-23", period=2, kind="moved", to_date="2026-11-27",
                to_period=1, to_start="07:00", to_end="07:45", note="Dạy bù")
    assert r.status_code == 201, r.get_json()
    days = _week(client, make, w.mother, w.alice).get_json()["days"]
    monday, friday = days[0]["periods"], days[4]["periods"]
    assert (monday[1]["status"], monday[1]["moved_to"]) == ("moved", {"date": "2026-11-27", "period": 1,
                                                                        "start": "07:00", "end": "07:45"})
    assert [(p["period"], p["start"], p["subject"], p["status"], p["moved_from"]["date"]) for p in friday] == [
        (1, "07:00", "Tiếng Việt", "moved", "2026-11-23")]
    # the contact book's day page reads the same
    assert logic.timetable_for_day(w.alice.id, dt.date(2026, 11, 27)) == [
        dict(friday[0], moved_from={"date": dt.date(2026, 11, 23), "period": 2, "start": "07:50", "end": "08:35"},
             change_id=friday[0]["change_id"] and int(friday[0]["change_id"]),
             teacher={"id": w.homeroom.id, "name": "Cô Lan"})]
    # moving into a slot of the timetable takes its times
    r = _change(client, make, w, date="2026-11-23", period=1, kind="moved", to_date="2026-11-26", to_period=2)
    assert r.status_code == 201 and (r.get_json()["to_start"], r.get_json()["to_end"]) == ("07:50", "08:35")


def test_who_may_post_changes_and_bad_changes(client, make, timetabled):
    w = timetabled
    ok = {"date": THURSDAY, "period": 1, "kind": "cancelled"}
    assert _change(client, make, w, user=w.math, **ok).status_code == 403  # a subject teacher
    assert _change(client, make, w, user=w.mother, **ok).status_code == 404
    assert _change(client, make, w, user=w.substitute, **ok).status_code == 404  # a teacher of another class
    bad = [
        (dict(ok, date="2026-11-25"), "period"),  # no lesson on Wednesday
        (dict(ok, period=3), "period"),
        (dict(ok, date="2027-02-04"), "period"),  # no timetable for that term
        (dict(ok, kind="postponed"), "kind"),
        (dict(ok, kind="substitute"), "teacher_id"),
        (dict(ok, kind="substitute", teacher_id=str(w.math.id)), "teacher_id"),  # the period's own teacher
        (dict(ok, kind="substitute", teacher_id=str(w.stranger.id)), "teacher_id"),  # not staff
        (dict(ok, teacher_id=str(w.substitute.id)), "teacher_id"),
        (dict(ok, kind="moved"), "to_period"),
        (dict(ok, kind="moved", to_date="2026-11-27", to_period=3), "to_start"),  # not a slot: times needed
        (dict(ok, kind="moved", to_period=1), "to_period"),  # to itself
        (dict(ok, kind="moved", to_period=6, to_start="09:00", to_end="08:00"), "to_end"),
        (dict(ok, date="26/11/2026"), "date"),
    ]
    for body, field in bad:
        r = _change(client, make, w, **body)
        assert r.status_code == 422 and field_errors(r, field), (body, r.get_json())
    assert TimetableChange.select().count() == 0
    assert _told([w.mother.id])[w.mother.id] == []


def test_week_view_access_default_week_and_bad_week(client, make, timetabled, clock):
    w = timetabled
    assert _week(client, make, w.stranger, w.alice).status_code == 404  # a guardian of another family
    assert _week(client, make, w.substitute, w.alice).status_code == 404  # a teacher of another class
    assert _week(client, make, w.math, w.alice).status_code == 200
    assert _week(client, make, w.admin, w.alice).status_code == 200
    for week in ("2026-48", "2026-W54", "2026-W00", "x"):
        r = _week(client, make, w.mother, w.alice, week)
        assert r.status_code == 422 and field_errors(r, "week"), week
    # default: the current week in the school's timezone. Sunday 29 Nov 17:30 UTC is already
    # Monday 30 Nov in Hồ Chí Minh City (UTC+7): week 49.
    clock(dt.datetime(2026, 11, 29, 17, 30))
    assert _week(client, make, w.mother, w.alice, None).get_json()["week"] == "2026-W49"
    clock(dt.datetime(2026, 11, 29, 16, 30))
    assert _week(client, make, w.mother, w.alice, None).get_json()["week"] == "2026-W48"
    # unlinked: access gone at once
    roster.unlink_guardian(w.alice.id, w.mother.id)
    assert _week(client, make, w.mother, w.alice).status_code == 404


class _Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        if record.name == "peewee":  # the SQL; not peewee.pool's connection notes
            self.count += 1


def _queries(fn):
    logger = logging.getLogger("peewee")
    handler, level = _Counter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        fn()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return handler.count


def test_the_week_view_takes_a_fixed_number_of_queries(client, make, timetabled):
    """Whatever the week holds, on a warm session (authentication cached: no statement): access (1), the
    school's timezone (1, cached afterwards), the periods with terms and names (1), the changes (1)."""
    from schedules.logic import common

    w = timetabled
    headers = make.headers(w.mother)

    def fetch():
        common._tz_cache.clear()
        assert client.get(f"{API}/students/{w.alice.id}/timetable?week=2026-W48", headers=headers).status_code == 200

    fetch()  # the session's authentication cached, as on every request after the first
    small = _queries(fetch)
    periods = [{"weekday": d, "period": p, "start": f"{6 + p:02d}:00", "end": f"{6 + p:02d}:45", "subject": f"Môn {p}",
                "teacher_id": str(make.teacher(w.school).id)} for d in range(1, 7) for p in range(1, 9)]
    r = client.put(f"{API}/classes/{w.klass.id}/timetable", json={"term_id": str(w.term.id), "periods": periods},
                   headers=make.headers(w.admin))
    assert r.status_code == 200, r.get_json()
    for day in range(23, 28):
        for p in (1, 3, 5):
            assert _change(client, make, w, date=f"2026-11-{day}", period=p, kind="substitute",
                           teacher_id=str(w.substitute.id)).status_code == 201
    assert _change(client, make, w, date="2026-11-28", period=2, kind="cancelled").status_code == 201
    large = _queries(fetch)
    assert large == small == 4  # authentication is cached per process: a warm session sends no statement
    assert _queries(lambda: client.get(f"{API}/students/{w.alice.id}/timetable?week=2026-W48",
                                       headers=headers)) == 3  # the timezone from the cache


def test_timetable_for_day_matches_the_week(client, make, timetabled):
    w = timetabled
    assert _change(client, make, w, date=THURSDAY, period=1, kind="cancelled").status_code == 201
    day = logic.timetable_for_day(w.bao.id, dt.date(2026, 11, 26))
    assert [(p["period"], p["status"], p["teacher"]["id"]) for p in day] == [(1, "cancelled", w.math.id),
                                                                             (2, "scheduled", w.homeroom.id)]
    assert logic.timetable_for_day(w.bao.id, dt.date(2026, 11, 25)) == []
    assert logic.timetable_for_day(w.bao.id, TERM_END + dt.timedelta(days=7)) == []
    assert len(logic.timetable_for_day(w.bao.id, TERM_START)) == 2


def test_the_hand_written_week_dump_equals_the_documented_schema(client, make, timetabled):
    from schedules.schemas import TimetableWeekOut, dump_week

    w = timetabled
    assert _change(client, make, w, date=THURSDAY, period=1, kind="substitute",
                   teacher_id=str(w.substitute.id)).status_code == 201
    assert _change(client, make, w, date="2026-11-23", period=2, kind="moved", to_date="2026-11-27",
                   to_period=1, to_start="07:00", to_end="07:45").status_code == 201
    view = logic.student_week(w.mother, w.alice.id, "2026-W48")
    assert dump_week(view) == TimetableWeekOut().dump(view)
    assert _week(client, make, w.mother, w.alice).get_json() == TimetableWeekOut().dump(view)
