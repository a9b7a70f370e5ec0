"""The set-wise fan-out (notifications.fanout) decides in SQL what ``quiet_until`` and the preference
rules decide in Python: the same push status and held-until for every recipient, on both backends."""
from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import pytest

from notifications import logic
from notifications.models import Notification, PushAttempt
from service.roster import logic as roster

WINDOWS = [None, ("21:00", "06:30"), ("12:00", "13:30"), ("23:00", "01:00"), ("00:00", "23:59"), ("06:30", "21:00"),
           ("13:30", "12:00")]
NOWS = [dt.datetime(2026, 3, 8, h, m, 30) for h, m in ((0, 0), (5, 59), (6, 30), (13, 0), (14, 0), (16, 59), (23, 30))]


def _expected(prefs, spec, now, tz):
    if not spec["push"]:
        return "none", None
    if spec["urgent"]:
        return "pending", None
    if spec["category"] in prefs["disabled"]:
        return "off", None
    until = logic.quiet_until(prefs["quiet"], now, tz)
    return ("held", until) if until else ("pending", None)


@pytest.mark.parametrize("tz", ["Asia/Ho_Chi_Minh", "America/New_York"])  # New York: 2026-03-08 is a DST change
def test_push_status_and_held_until_match_python(app, tz):
    users = []
    for i, window in enumerate(WINDOWS * 2):
        user = roster.ensure_user(f"+8491{uuid.uuid4().int % 10**7:07d}", f"Phụ huynh {i}")
        disabled = {"grade"} if i >= len(WINDOWS) else set()
        logic.set_preferences(user.id, categories={c: False for c in disabled},
                              quiet_hours={"start": window[0], "end": window[1]} if window else None,
                              language="en" if i % 2 else "vi")
        users.append((user.id, {"quiet": window, "disabled": disabled, "language": "en" if i % 2 else "vi"}))
    texts = {"en": ("Grade", "Maths: 9")}
    for k, now in enumerate(NOWS):
        for urgent in (False, True):
            spec = logic.make_spec("grade", "Điểm", "Toán: 9", {"type": "grade", "id": k}, urgent=urgent, texts=texts)
            key = f"n:{uuid.uuid4().hex}"
            logic.deliver([u for u, _ in users], spec, dedupe_key=key, timezone=tz, now=now)
            rows = {n.user_id: n for n in Notification.select().where(Notification.dedupe_key == key)}
            assert len(rows) == len(users)
            for user_id, prefs in users:
                note = rows[user_id]
                assert (note.push_status, note.push_after) == _expected(prefs, spec, now, tz), (prefs, now)
                assert note.title == ("Grade" if prefs["language"] == "en" else "Điểm")
                assert json.loads(note.data) == {"type": "grade", "id": str(k)} and note.created_at == now
    assert PushAttempt.select().count() == 0  # push is off in this app: no attempts queued


def test_the_fan_out_writes_no_push_attempts_the_claim_inserts_them_once_per_device(push_app, pmake, fcm):
    """Issue 14: the chunk stores inbox rows only; each (notification, device) attempt is inserted by the
    push job's claim (a queued attempt per device made the chunk write every device twice and every
    claim rewrite it). A chunk run again adds nothing, and the push sends each device once."""
    from notifications import fanout

    fam = pmake.family()
    g, other = fam["guardian"], pmake.guardian(fam["student"])
    for token in ("tok-fanout-1", "tok-fanout-2"):
        logic.register_device(g.id, token, "android")
    logic.set_preferences(other.id, categories={"grade": False})
    logic.register_device(other.id, "tok-fanout-3", "ios")
    spec = logic.make_spec("grade", "Điểm", "9", {"type": "grade", "id": 1}, push=True)
    notices = [("n:rerun", f"{g.id},{other.id},{g.id}", spec)]
    now = logic.utcnow()
    first = fanout.store(notices, by_announcement=False, students=None, timezone="Asia/Ho_Chi_Minh", now=now)
    again = fanout.store(notices, by_announcement=False, students=None, timezone="Asia/Ho_Chi_Minh", now=now)
    assert first.count == again.count == 2 and first.pending == again.pending and len(first.pending) == 1
    assert {u for u, _ in first.inbox} == {g.id, other.id} and first.inbox == again.inbox
    assert not PushAttempt.select().exists()
    assert logic.push_notifications(first.pending)["sent"] == 2
    assert logic.push_notifications(first.pending)["sent"] == 0  # the job run again sends nothing
    assert sorted(fcm.accepted_tokens()) == ["tok-fanout-1", "tok-fanout-2"]
    assert {(a.status, a.tries) for a in PushAttempt.select()} == {("accepted", 1)}
    assert PushAttempt.select().count() == 2


def test_a_connection_opened_before_the_first_fan_out_can_fan_out(app, make):
    """SQLite's quiet-hours function is on every connection, also one another thread opened before the
    process's first fan-out (registered lazily, it was only on the connection of the first fan-out's thread:
    "no such function", and a concurrent publish lost its allergy alert)."""
    from service.db import connection

    fam = make.family()
    g = fam["guardian"]
    logic.set_preferences(g.id, quiet_hours={"start": "21:00", "end": "06:30"})
    opened, first_done, errors = threading.Event(), threading.Event(), []

    def late():
        try:
            with app.app_context(), connection():
                Notification.select().count()  # this thread's connection is open now
                opened.set()
                first_done.wait(10)
                logic.deliver([g.id], logic.make_spec("meal", "Dị ứng", "Lạc"), dedupe_key="n:late")
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=late)
    thread.start()
    assert opened.wait(10)
    logic.deliver([g.id], logic.make_spec("meal", "Thực đơn", "Tuần này"), dedupe_key="n:first")
    first_done.set()
    thread.join(20)
    assert not errors, errors
    assert {n.dedupe_key for n in Notification.select().where(Notification.user == g.id)} == {"n:first", "n:late"}


@pytest.mark.parametrize("with_push", [False, True])
def test_a_notify_each_job_is_one_store_whatever_the_number_of_notices(request, database_url, with_push):
    """A gate batch's notices (each its own recipients, texts, data and key) are stored together: the
    same statements for 3 notices as for 60 (PostgreSQL 1; SQLite 2), push on or off."""
    from tests.support.queries import count_queries

    make = request.getfixturevalue("pmake" if with_push else "make")
    klass = make.family()["klass"]
    guardians = []
    for i in range(60):
        guardian = make.guardian(make.student(klass, f"Học sinh {i}"))
        if with_push:
            logic.register_device(guardian.id, f"tok-each-{i}", "android")
        if i % 3 == 0:
            logic.set_preferences(guardian.id, language="en")
        if i % 5 == 0:
            logic.set_preferences(guardian.id, categories={"attendance": False})
        guardians.append(guardian)

    def items(n, tag):
        return [[f"n:{tag}-{i}", [guardians[i].id, guardians[(i + 1) % len(guardians)].id],
                 logic.make_spec("attendance", f"Học sinh {i} đã đến trường", f"07:{i:02d}", {"type": "checkin", "id": i},
                                 texts={"en": (f"Student {i} arrived", f"07:{i:02d}")}, urgent=i % 7 == 0)]
                for i in range(n)]

    counts = []
    for n, tag in ((3, "small"), (60, "large")):
        batch = items(n, tag)
        with count_queries() as q:
            pending = logic._deliver(batch)  # pylint: disable=protected-access
        counts.append(list(q.statements))
        rows = {(n_.dedupe_key, n_.user_id): n_ for n_ in Notification.select().where(Notification.dedupe_key.startswith(f"n:{tag}-"))}
        assert len(rows) == 2 * n
        for key, users, spec in batch:
            i = int(key.rsplit("-", 1)[1])
            for user in users:
                note = rows[(key, user)]
                en = guardians.index(next(g for g in guardians if g.id == user)) % 3 == 0
                off = guardians.index(next(g for g in guardians if g.id == user)) % 5 == 0
                assert note.title == (f"Student {i} arrived" if en else f"Học sinh {i} đã đến trường")
                assert json.loads(note.data) == {"type": "checkin", "id": str(i)}
                assert note.push_status == ("pending" if spec["urgent"] or not off else "off")
        assert sorted(pending) == sorted(n_.id for n_ in rows.values() if n_.push_status == "pending")
        again = logic._deliver(batch)  # pylint: disable=protected-access
        assert sorted(again) == sorted(pending)  # a job run again adds nothing and reports the same pushes
        assert Notification.select().where(Notification.dedupe_key.startswith(f"n:{tag}-")).count() == 2 * n
    assert len(counts[0]) == len(counts[1]) <= 2, counts
    assert not PushAttempt.select().exists()  # the push jobs' claims insert the attempts
