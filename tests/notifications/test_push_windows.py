"""A push job's windows (issue 14): claimed in one statement each, two at a time (one in flight while
the one before is recorded and the one after is claimed and encoded), and every device pushed once
whatever fails where."""
from __future__ import annotations

from collections import Counter

import pytest

from notifications import logic, push
from notifications.models import PushAttempt
from service.db import is_postgres


def _pending(pmake, devices: int) -> list[int]:
    """One grade notice to guardians with ``devices`` devices in all (two each, the last maybe one)."""
    fam = pmake.family()
    guardians, tokens = [], []
    while len(tokens) < devices:
        g = pmake.guardian(fam["student"])
        guardians.append(g.id)
        for k in range(min(2, devices - len(tokens))):
            tokens.append(f"tok-window-{g.id}-{k}")
            logic.register_device(g.id, tokens[-1], "android")
    spec = logic.make_spec("grade", "Điểm", "Toán: 9", {"type": "grade", "id": 1})
    return logic.deliver(guardians, spec, dedupe_key=f"n:windows-{fam['school'].id}")


@pytest.fixture
def events(monkeypatch):
    """What the job does, in order: claims, requests put in flight, answers awaited."""
    log: list[str] = []
    claim, start, answers = push._claim, push.Sender.start, push.Sender.answers  # pylint: disable=protected-access

    def claiming(pairs, *args, **kw):
        log.append(f"claim {len(pairs)}")
        return claim(pairs, *args, **kw)

    def starting(self, bodies):
        log.append(f"start {len(bodies)}")
        return start(self, bodies)

    def waiting(self, flight):
        log.append("answers")
        return answers(self, flight)

    monkeypatch.setattr(push, "_claim", claiming)
    monkeypatch.setattr(push.Sender, "start", starting)
    monkeypatch.setattr(push.Sender, "answers", waiting)
    monkeypatch.setattr(push, "WINDOW", 3)
    return log


def test_the_next_window_is_claimed_while_one_is_in_flight(pmake, fcm, events):
    pending = _pending(pmake, 8)
    stats = logic.push_notifications(pending)
    assert stats["sent"] == 8 and Counter(fcm.accepted_tokens()).most_common(1)[0][1] == 1
    assert events == ["claim 3", "start 3",
                      "claim 3", "answers", "start 3",  # window 2 claimed before window 1's answers
                      "claim 2", "answers", "start 2",
                      "answers"]
    assert {(a.status, a.tries) for a in PushAttempt.select()} == {("accepted", 1)}


def test_a_window_that_cannot_start_is_handed_back_and_the_rerun_sends_the_rest_once(pmake, fcm, events,
                                                                                     monkeypatch):
    """The second window's requests cannot start (the rate limiter's Redis is away): the first
    window, already answered, is recorded; the second's claims are handed back; the third was
    never claimed. The job fails, its retry sends the other five, each once."""
    pending = _pending(pmake, 8)
    start = push.Sender.start
    calls = []

    def second_fails(self, bodies):
        calls.append(len(bodies))
        if len(calls) == 2:
            raise ConnectionError("rate limiter away")
        return start(self, bodies)

    monkeypatch.setattr(push.Sender, "start", second_fails)
    with pytest.raises(ConnectionError):
        logic.push_notifications(pending)
    assert Counter(a.status for a in PushAttempt.select()) == {"accepted": 3, "retry": 3}
    assert len(fcm.accepted_tokens()) == 3

    monkeypatch.setattr(push.Sender, "start", start)
    assert logic.push_notifications(pending)["sent"] == 5
    assert len(fcm.accepted_tokens()) == 8 and Counter(fcm.accepted_tokens()).most_common(1)[0][1] == 1
    assert Counter(a.status for a in PushAttempt.select()) == {"accepted": 8}


def test_a_job_that_claimed_everything_reads_no_follow_up_and_claims_in_one_statement(pmake, fcm, monkeypatch):
    """PostgreSQL: two prepared reads whatever the job's size (the notifications with their badges, the
    devices), then per window one claim (INSERT … ON CONFLICT … RETURNING) and one result statement;
    nothing read after the windows when no pair belonged to another run (before issue 14: one read of
    the notifications and two of devices and of badges per 2,000 users, a SELECT by claim per window,
    and a follow-up read of every attempt of the job's notifications)."""
    if not is_postgres():
        pytest.skip("SQLite's claim reads its rows back by the claim token (executemany returns none)")
    from tests.support.queries import count_queries

    pending = _pending(pmake, 8)
    monkeypatch.setattr(push, "WINDOW", 3)
    monkeypatch.setitem(push._swept, "at", float("inf"))  # pylint: disable=protected-access  # no sweep now
    with count_queries() as q:
        assert logic.push_notifications(pending)["sent"] == 8
    kinds = [s.split(None, 1)[0].upper() for s in q.statements]
    # notes with badges, devices (prepared reads); then the windows' claims and results, interleaved
    assert kinds[:2] == ["EXECUTE"] * 2 and Counter(kinds[2:]) == {"INSERT": 3, "UPDATE": 3}, str(q)
    assert all("RETURNING" in s for s in q.statements if s.startswith("INSERT")), str(q)


def test_pairs_another_run_holds_get_a_follow_up_job_unless_their_device_is_gone(pmake, fcm, monkeypatch):
    """The follow-up reads only the notifications with pairs this run could not claim: a fresh claim
    of another run brings a push job at its claim timeout; one whose device was deleted does not."""
    import datetime as dt

    from notifications.models import Device
    from service.db import utcnow

    pending = _pending(pmake, 4)  # two guardians, two devices each
    devices = list(Device.select().order_by(Device.id))
    owner = {n.user_id: n.id for n in push.Notification.select().where(push.Notification.id.in_(pending))}
    held_at = utcnow()
    for device in devices[0], devices[2]:  # one device of each guardian: claimed by a run still sending
        PushAttempt.create(notification=owner[device.user_id], device_id=device.id, status="sending",
                           claim="another-run", tries=1, claimed_at=held_at, updated_at=held_at)
    Device.delete().where(Device.id == devices[2].id).execute()  # ... and this one is gone since
    enqueued = []
    monkeypatch.setattr(push.queues, "enqueue", lambda *args, **kw: enqueued.append((args, kw)))
    assert logic.push_notifications(pending)["sent"] == 2
    timeout = push.current_sender().claim_timeout
    assert [(args[1], kw["at"]) for args, kw in enqueued if args[0] == "push"] == [
        ([owner[devices[0].user_id]], held_at + dt.timedelta(seconds=timeout + 0.5))]


def test_a_window_in_flight_keeps_its_claims_fresh_while_the_one_before_retries(pmake, fcm, monkeypatch):
    """Every token answers UNAVAILABLE once: each window retries inline. While a window sleeps and
    resends, the next one is in flight and its answers wait: its claims are refreshed each round (not
    counted as a try), so no other run takes them over as stale; each device gets one push."""
    from notifications.models import Device

    pending = _pending(pmake, 8)
    for device in Device.select():
        fcm.set_token_error(device.token, "UNAVAILABLE", times=1)
    monkeypatch.setattr(push, "WINDOW", 3)
    touch, touched = push._touch, []  # pylint: disable=protected-access

    def touching(owned, keys, claim, another_try=True):
        touched.append((len(list(keys)), another_try))
        return touch(owned, keys, claim, another_try)

    monkeypatch.setattr(push, "_touch", touching)
    assert logic.push_notifications(pending)["sent"] == 8
    assert Counter(fcm.accepted_tokens()).most_common(1)[0][1] == 1 and len(fcm.accepted_tokens()) == 8
    # window 1 retries (3) with window 2 waiting (3); window 2 (3) with window 3 waiting (2); window 3 (2)
    assert touched == [(3, True), (3, False), (3, True), (2, False), (2, True)]
    assert {(a.status, a.tries) for a in PushAttempt.select()} == {("accepted", 2)}
