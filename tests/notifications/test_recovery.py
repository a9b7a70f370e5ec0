"""The recovery sweep (``notifications.recovery``): work whose job was lost (Redis restarted
without its data) is found in the database and enqueued again, once, and only once overdue.
Jobs run inline here; a lost job is an enqueue dropped on the floor."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from notifications import announcements, queues, recovery
from notifications.models import Announcement, Notification, PushAttempt
from service.db import utcnow

API = "/api/v1"


@pytest.fixture
def lose(monkeypatch):
    """``lose("push", ...)``: enqueues of these notifications jobs vanish (all of them without names)."""
    real = queues.enqueue
    lost = []

    def start(*names):
        def enqueue(job_name, *args, **kwargs):
            if not names or job_name in names:
                lost.append(job_name)
                return "lost"
            return real(job_name, *args, **kwargs)

        monkeypatch.setattr(queues, "enqueue", enqueue)
        return lost

    def stop():
        monkeypatch.setattr(queues, "enqueue", real)

    start.stop = stop
    return start


def _school(pmake, pclient, guardians=3):
    fam = pmake.family()
    users = [fam["guardian"]] + [pmake.guardian(fam["student"]) for _ in range(guardians - 1)]
    tokens = []
    for k, user in enumerate(users):
        for j in range(1 + k % 2):  # every other guardian has two phones
            tokens.append(f"token-{user.id}-{j}-xxxxxxxx")
            r = pclient.post(f"{API}/devices", json={"token": tokens[-1], "platform": "android"},
                             headers=pmake.headers(user))
            assert r.status_code in (200, 201), r.get_json()
    return fam, users, tokens


def _later(seconds=1):
    return utcnow() + dt.timedelta(seconds=seconds)


def test_a_lost_planner_and_lost_pushes_are_recovered_once(pmake, pclient, fcm, lose):
    fam, users, tokens = _school(pmake, pclient)
    admin = pmake.admin(fam["school"])
    lost = lose()  # the planner's job never reaches a worker
    ann = announcements.create(admin.id, "Nghỉ học", "Bão", {"school_id": fam["school"].id}, urgent=True)
    lose.stop()
    assert lost == ["plan_announcement"] and Announcement.get_by_id(ann.id).status == "queued"

    # not overdue yet: nothing is touched
    assert recovery.recover(60)["announcements"] == 0 and not fcm.accepted()

    out = recovery.recover(0, now=_later())
    assert out["announcements"] == 1
    assert Announcement.get_by_id(ann.id).status == "sent"
    assert Counter(fcm.accepted_tokens()) == Counter(tokens)  # each device once
    assert recovery.recover(0, now=_later(2)) == {"announcements": 0, "pushes": 0, "stale": 0}
    assert Counter(fcm.accepted_tokens()) == Counter(tokens)


def test_inbox_rows_whose_push_jobs_were_lost_are_pushed(pmake, pclient, fcm, lose):
    fam, users, tokens = _school(pmake, pclient, guardians=4)
    admin = pmake.admin(fam["school"])
    lose("push")
    ann = announcements.create(admin.id, "Họp", "Thứ Bảy", {"school_id": fam["school"].id}, urgent=True)
    lose.stop()
    assert Announcement.get_by_id(ann.id).status == "sent"
    assert Notification.select().where(Notification.announcement == ann.id).count() == 4
    assert not fcm.accepted()
    assert not PushAttempt.select().where(PushAttempt.status.in_(["sending", "accepted"])).exists()

    # found as rows whose devices have no attempt at all (the fan-out writes none: the claim does)
    out = recovery.recover(0, now=_later())
    assert out == {"announcements": 0, "pushes": 4, "stale": 0}
    assert Counter(fcm.accepted_tokens()) == Counter(tokens)
    out = recovery.recover(0, now=_later(2))
    assert out["pushes"] + out["stale"] == 0
    # a phone registered after the announcement went out does not make it due again
    r = pclient.post(f"{API}/devices", json={"token": "token-late-xxxxxxxx", "platform": "ios"},
                     headers=pmake.headers(users[0]))
    assert r.status_code in (200, 201)
    out = recovery.recover(0, now=_later(3))
    assert out["pushes"] + out["stale"] == 0
    assert Counter(fcm.accepted_tokens()) == Counter(tokens)


def test_a_chunk_never_run_is_run(pmake, pclient, fcm, lose, monkeypatch):
    monkeypatch.setattr(announcements, "CHUNK", 2)
    fam, users, tokens = _school(pmake, pclient, guardians=3)
    admin = pmake.admin(fam["school"])
    lose("announcement_chunk")
    ann = announcements.create(admin.id, "Họp", "Thứ Bảy", {"school_id": fam["school"].id}, urgent=True)
    lose.stop()
    assert Announcement.get_by_id(ann.id).status == "sending" and not Notification.select().exists()
    assert recovery.recover(0, now=_later())["announcements"] == 1
    assert Announcement.get_by_id(ann.id).status == "sent"
    assert Counter(n.user_id for n in Notification.select()) == Counter(u.id for u in users)
    assert Counter(fcm.accepted_tokens()) == Counter(tokens)
