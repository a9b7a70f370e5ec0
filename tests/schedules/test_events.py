"""School events: added by admins, told to the audience's guardians once, in the student's calendar;
sign-ups per child by a guardian, capacity (full → 409), twice → 200, DELETE takes it back."""
from __future__ import annotations

import datetime as dt

from notifications.models import Notification
from schedules.models import EventSignup, SchoolEvent

from .conftest import API, field_errors

MEETING = {"title": "Họp phụ huynh đầu năm", "starts_at": "2026-11-20T01:00:00Z", "ends_at": "2026-11-20T03:00:00Z",
           "audience": {"grades": [1]}, "signup": True, "capacity": 1, "kind": "meeting"}


def _create(client, make, w, user=None, school=None, **body):
    return client.post(f"{API}/schools/{(school or w.school).id}/events", json=body,
                       headers=make.headers(user or w.admin))


def _told(user):
    return Notification.select().where((Notification.user == user.id) & (Notification.category == "schedule")).count()


def _signup(client, make, user, event_id, student):
    return client.post(f"{API}/events/{event_id}/signups", json={"student_id": str(student.id)},
                       headers=make.headers(user))


def test_an_event_is_told_to_its_audience_once_and_shows_in_the_calendar(client, make, world):
    w = world
    r = _create(client, make, w, **MEETING)
    assert r.status_code == 201, r.get_json()
    event = r.get_json()
    assert (event["title"], event["starts_at"], event["audience"], event["capacity"], event["signups"],
            event["spots_left"]) == (MEETING["title"], "2026-11-20T01:00:00Z", {"grades": [1], "class_ids": []}, 1, 0, 1)
    assert [_told(u) for u in (w.mother, w.father, w.stranger, w.admin)] == [1, 1, 0, 0]
    body = Notification.get(Notification.user == w.mother.id).body
    assert body.startswith("20/11/2026 08:00")  # school time
    for_class = _create(client, make, w, title="Văn nghệ 2A", starts_at="2026-11-21T08:00:00Z",
                        ends_at="2026-11-21T09:00:00Z", audience={"class_ids": [str(w.grade2.id)]})
    assert for_class.status_code == 201
    assert [_told(u) for u in (w.mother, w.stranger)] == [1, 1]

    cal = client.get(f"{API}/students/{w.alice.id}/calendar?from=2026-11-01&to=2026-11-30",
                     headers=make.headers(w.mother))
    assert cal.status_code == 200, cal.get_json()
    assert cal.get_json()["from"] == "2026-11-01" and cal.get_json()["to"] == "2026-11-30"
    assert [(e["title"], e["signed_up"]) for e in cal.get_json()["items"]] == [(MEETING["title"], False)]
    other = client.get(f"{API}/students/{w.stranger_child.id}/calendar?from=2026-11-01&to=2026-11-30",
                       headers=make.headers(w.stranger)).get_json()
    assert [e["title"] for e in other["items"]] == ["Văn nghệ 2A"]
    # default range: today (the injected 18 Nov) and 30 days on
    assert len(client.get(f"{API}/students/{w.alice.id}/calendar", headers=make.headers(w.mother)).get_json()["items"]) == 1
    assert client.get(f"{API}/students/{w.alice.id}/calendar", headers=make.headers(w.stranger)).status_code == 404
    bad = client.get(f"{API}/students/{w.alice.id}/calendar?from=2026-11-30&to=2026-11-01",
                     headers=make.headers(w.mother))
    assert bad.status_code == 422 and field_errors(bad, "to")


def test_who_may_add_events_and_bad_events_store_nothing(client, make, world):
    w = world
    assert _create(client, make, w, user=w.homeroom, **MEETING).status_code == 403
    assert _create(client, make, w, user=w.mother, **MEETING).status_code == 403
    elsewhere = make.school("Trường khác")
    assert _create(client, make, w, user=make.admin(elsewhere), **MEETING).status_code == 404
    foreign_class = make.klass(elsewhere)
    for body, field in [
        (dict(MEETING, ends_at="2026-11-20T00:00:00Z"), "ends_at"),
        (dict(MEETING, starts_at="2026-11-20T01:00:00"), "starts_at"),  # no timezone
        (dict(MEETING, audience={"class_ids": [str(foreign_class.id)]}), "audience.class_ids"),
        (dict(MEETING, audience={"grades": [13]}), "audience.grades"),
        (dict(MEETING, signup=False), "capacity"),
        (dict(MEETING, capacity=0), "capacity"),
        (dict(MEETING, title=""), "title"),
    ]:
        r = _create(client, make, w, **body)
        assert r.status_code == 422 and field_errors(r, field), (body, r.get_json())
    assert SchoolEvent.select().count() == 0 and _told(w.mother) == 0


def test_signups_per_child_capacity_twice_and_back(client, make, world, clock):
    w = world
    event = _create(client, make, w, **MEETING).get_json()
    r = _signup(client, make, w.mother, event["id"], w.alice)
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["student_id"], r.get_json()["event_id"]) == (str(w.alice.id), event["id"])
    again = _signup(client, make, w.mother, event["id"], w.alice)
    assert again.status_code == 200 and again.get_json()["id"] == r.get_json()["id"]
    full = _signup(client, make, w.father, event["id"], w.bao)
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "conflict"
    assert _signup(client, make, w.mother, event["id"], w.bao).status_code == 404  # not her child
    assert _signup(client, make, w.homeroom, event["id"], w.alice).status_code == 403  # staff see, may not sign up
    assert _signup(client, make, w.stranger, event["id"], w.stranger_child).status_code == 404  # not in the audience
    assert _signup(client, make, w.mother, 999999, w.alice).status_code == 404
    # taking it back frees the place
    url = f"{API}/events/{event['id']}/signups/{w.alice.id}"
    assert client.delete(url, headers=make.headers(w.father)).status_code == 404
    assert client.delete(url, headers=make.headers(w.mother)).status_code == 204
    assert client.delete(url, headers=make.headers(w.mother)).status_code == 404
    assert _signup(client, make, w.father, event["id"], w.bao).status_code == 201
    cal = client.get(f"{API}/students/{w.bao.id}/calendar?from=2026-11-20&to=2026-11-20",
                     headers=make.headers(w.father)).get_json()["items"]
    assert [(e["signed_up"], e["signups"], e["spots_left"]) for e in cal] == [(True, 1, 0)]
    assert EventSignup.select().count() == 1
    # no sign-up for this event; an event that has started
    plain = _create(client, make, w, **dict(MEETING, signup=False, capacity=None)).get_json()
    assert _signup(client, make, w.mother, plain["id"], w.alice).status_code == 409
    open_event = _create(client, make, w, **dict(MEETING, capacity=None)).get_json()
    clock(dt.datetime(2026, 11, 20, 1, 30))
    assert _signup(client, make, w.mother, open_event["id"], w.alice).status_code == 409
