"""Devices, inbox, preferences, quiet hours, ``notify`` and the push path (jobs inline, real FCM SDK
pointed at the local FCM server), on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest

from notifications import logic
from notifications.models import Device, Notification, PushAttempt
from notifications.push import push_notifications
from service.db import utcnow

from ..support.errors import assert_error

API = "/api/v1"
HCM = dt.timezone(dt.timedelta(hours=7))


def _device(client, make, user, token, platform="android"):
    r = client.post(f"{API}/devices", json={"token": token, "platform": platform, "locale": "vi-VN"},
                    headers=make.headers(user))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _local(hour, minute=0, days=0):
    """A naive UTC time that is hour:minute in Ho Chi Minh City, ``days`` from today."""
    day = dt.datetime.now(HCM).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=HCM).astimezone(dt.timezone.utc).replace(tzinfo=None)


# --- devices -------------------------------------------------------------------------------------
def test_device_upsert_moves_token_between_accounts_and_delete(client, make):
    fam = make.family()
    a, b = fam["guardian"], make.user("Bố")
    out = _device(client, make, a, "token-aaaaaaaaaa")
    assert out["platform"] == "android" and out["locale"] == "vi-VN" and out["last_seen_at"].endswith("Z")
    _device(client, make, a, "token-aaaaaaaaaa", platform="ios")  # upsert, not a second row
    assert Device.select().count() == 1 and Device.get().platform == "ios"
    _device(client, make, b, "token-aaaaaaaaaa")  # the phone changed hands
    assert [(d.user_id, d.token) for d in Device.select()] == [(b.id, "token-aaaaaaaaaa")]
    # a's attempt to delete it now: not theirs
    assert client.delete(f"{API}/devices/token-aaaaaaaaaa", headers=make.headers(a)).status_code == 404
    assert client.delete(f"{API}/devices/token-aaaaaaaaaa", headers=make.headers(b)).status_code == 204
    assert Device.select().count() == 0
    bad = client.post(f"{API}/devices", json={"token": "token-bbbbbbbbb", "platform": "symbian"},
                      headers=make.headers(a))
    assert "platform" in assert_error(bad, 422)["fields"]
    assert client.post(f"{API}/devices", json={"token": "x" * 20, "platform": "ios"}).status_code == 401

    # logging out with this device's token drops it (and only it)
    _device(client, make, a, "token-logout-1")
    _device(client, make, a, "token-other-2")
    r = client.post(f"{API}/auth/logout", json={"device_token": "token-logout-1"}, headers=make.headers(a))
    assert r.status_code == 204
    assert [d.token for d in Device.select()] == ["token-other-2"]


# --- preferences ---------------------------------------------------------------------------------
def test_preferences_defaults_update_and_validation(client, make):
    user = make.family()["guardian"]
    h = make.headers(user)
    r = client.get(f"{API}/me/preferences", headers=h)
    assert r.get_json() == {"categories": {c: True for c in logic.CATEGORIES}, "quiet_hours": None, "language": "vi"}
    r = client.put(f"{API}/me/preferences", json={"categories": {"meal": False},
                                                  "quiet_hours": {"start": "21:00", "end": "06:30"},
                                                  "language": "en"}, headers=h)
    assert r.status_code == 200
    body = r.get_json()
    assert body["categories"]["meal"] is False and body["categories"]["grade"] is True
    assert body["quiet_hours"] == {"start": "21:00", "end": "06:30"} and body["language"] == "en"
    # partial update keeps the rest; null clears quiet hours
    r = client.put(f"{API}/me/preferences", json={"quiet_hours": None}, headers=h)
    assert r.get_json()["quiet_hours"] is None and r.get_json()["categories"]["meal"] is False
    for bad in ({"quiet_hours": {"start": "25:00", "end": "06:00"}}, {"language": "fr"},
                {"categories": {"sport": True}}, {"quiet_hours": {"start": "07:00", "end": "07:00"}}):
        r = client.put(f"{API}/me/preferences", json=bad, headers=h)
        assert r.status_code == 422, bad
    assert client.get(f"{API}/me/preferences", headers=h).get_json()["language"] == "en"  # nothing changed


def test_quiet_until_in_school_time():
    q = ("21:00", "06:30")
    assert logic.quiet_until(q, _local(20, 59)) is None
    assert logic.quiet_until(q, _local(21, 0)) == _local(6, 30, days=1)
    assert logic.quiet_until(q, _local(23, 59)) == _local(6, 30, days=1)
    assert logic.quiet_until(q, _local(3, 0)) == _local(6, 30)
    assert logic.quiet_until(q, _local(6, 30)) is None
    assert logic.quiet_until(("12:00", "13:30"), _local(12, 15)) == _local(13, 30)
    assert logic.quiet_until(("12:00", "13:30"), _local(14, 0)) is None
    # another timezone: 22:00 in Ho Chi Minh City is 00:00 in Tokyo
    assert logic.quiet_until(("23:00", "01:00"), _local(22, 30), "Asia/Tokyo") == _local(23, 0)
    assert logic.quiet_until(("20:00", "23:30"), _local(22, 0), "Asia/Tokyo") is None


# --- notify, inbox, sockets ----------------------------------------------------------------------
def test_notify_inbox_push_and_read(pclient, pmake, fcm):
    fam = pmake.family()
    g = fam["guardian"]
    other = pmake.guardian(fam["student"])
    _device(pclient, pmake, g, "token-g-android")
    _device(pclient, pmake, g, "token-g-ios", platform="ios")
    for i in range(3):
        logic.notify([g.id, other.id], "grade", f"Điểm mới {i}", "Toán: 9,5", {"type": "grade", "id": 40 + i})
    h = pmake.headers(g)
    page = pclient.get(f"{API}/notifications?limit=2", headers=h).get_json()
    assert [n["title"] for n in page["items"]] == ["Điểm mới 2", "Điểm mới 1"]
    assert page["items"][0]["data"] == {"type": "grade", "id": "42"} and page["next_cursor"]
    rest = pclient.get(f"{API}/notifications?limit=2&cursor={page['next_cursor']}", headers=h).get_json()
    assert [n["title"] for n in rest["items"]] == ["Điểm mới 0"] and rest["next_cursor"] is None
    assert pclient.get(f"{API}/notifications/unread-count", headers=h).get_json() == {"unread": 3}

    # three notifications x two devices, once each; the payload carries the deep link and the badge
    assert sorted(fcm.accepted_tokens()) == sorted(["token-g-android", "token-g-ios"] * 3)
    last = [r["message"] for r in fcm.accepted() if r["token"] == "token-g-ios"][-1]
    assert last["data"] == {"type": "grade", "id": "42", "notification_id": page["items"][0]["id"],
                            "category": "grade"}
    assert last["notification"] == {"title": "Điểm mới 2", "body": "Toán: 9,5"}
    assert last["apns"]["payload"]["aps"]["badge"] == 3 and last["apns"]["payload"]["aps"]["sound"] == "default"
    assert last["android"]["priority"] == "high"

    first_id = page["items"][0]["id"]
    assert pclient.post(f"{API}/notifications/{first_id}/read", headers=h).status_code == 204
    assert pclient.post(f"{API}/notifications/{first_id}/read", headers=h).status_code == 204  # idempotent
    unread = pclient.get(f"{API}/notifications?unread=1", headers=h).get_json()["items"]
    assert [n["title"] for n in unread] == ["Điểm mới 1", "Điểm mới 0"]
    # a guardian cannot read or mark another's inbox
    oh = pmake.headers(other)
    assert pclient.post(f"{API}/notifications/{first_id}/read", headers=oh).status_code == 404
    assert all(n["id"] != first_id for n in pclient.get(f"{API}/notifications", headers=oh).get_json()["items"])
    assert pclient.post(f"{API}/notifications/99999999999999999999/read", headers=oh).status_code == 404
    assert pclient.post(f"{API}/notifications/read-all", headers=h).get_json() == {"marked": 2}
    assert pclient.get(f"{API}/notifications/unread-count", headers=h).get_json() == {"unread": 0}


def test_push_only_silent_collapse_and_language(pclient, pmake, fcm):
    fam = pmake.family()
    vi, en = fam["guardian"], pmake.guardian(fam["student"])
    _device(pclient, pmake, vi, "token-vi-1")
    _device(pclient, pmake, en, "token-en-1", platform="ios")
    logic.set_preferences(en.id, language="en")
    logic.notify([vi.id, en.id], "message", "Tin nhắn mới", "Cô Lan: ...", {"type": "conversation", "id": 7},
                 inbox=False, silent=True, collapse_key="conversation-7",
                 texts={"vi": ("Tin nhắn mới", "Cô Lan đã nhắn"), "en": ("New message", "Ms Lan wrote")})
    assert Notification.select().where(Notification.in_inbox).count() == 0  # push only
    assert pclient.get(f"{API}/notifications", headers=pmake.headers(vi)).get_json()["items"] == []
    by_token = {r["token"]: r["message"] for r in fcm.accepted()}
    assert by_token["token-vi-1"]["notification"]["title"] == "Tin nhắn mới"
    en_msg = by_token["token-en-1"]
    assert en_msg["notification"] == {"title": "New message", "body": "Ms Lan wrote"}
    assert en_msg["data"]["inbox"] == "0" and en_msg["data"]["silent"] == "1"
    assert en_msg["apns"]["headers"]["apns-collapse-id"] == "conversation-7"
    assert "sound" not in en_msg["apns"]["payload"]["aps"]
    assert en_msg["apns"]["payload"]["aps"]["interruption-level"] == "passive"
    android = by_token["token-vi-1"]["android"]
    assert android["collapse_key"] == "conversation-7" and android["priority"] == "normal"
    with pytest.raises(ValueError):
        logic.notify([vi.id], "gossip", "t", "b")


def test_notification_new_reaches_a_connected_socket(pclient, pmake, push_app):
    from service.realtime import socketio

    fam = pmake.family()
    g = fam["guardian"]
    sio = socketio.test_client(push_app, auth={"token": pmake.token(g)})
    assert sio.is_connected()
    sio.get_received()
    logic.notify([g.id], "attendance", "Điểm danh", "Con vắng mặt sáng nay", {"type": "attendance", "id": 3})
    events = [e for e in sio.get_received() if e["name"] == "notification:new"]
    assert len(events) == 1
    note = events[0]["args"][0]["notification"]
    assert note["title"] == "Điểm danh" and note["data"] == {"type": "attendance", "id": "3"}
    assert isinstance(note["id"], str) and note["read_at"] is None
    sio.disconnect()


def test_switched_off_category_and_quiet_hours_hold_push_until_they_end(pclient, pmake, fcm):
    fam = pmake.family()
    g = fam["guardian"]
    _device(pclient, pmake, g, "token-quiet-1")
    h = pmake.headers(g)
    pclient.put(f"{API}/me/preferences", json={"categories": {"meal": False}}, headers=h)
    logic.notify([g.id], "meal", "Bữa trưa", "Con ăn hết suất", {"type": "meal", "id": 1})
    assert pclient.get(f"{API}/notifications/unread-count", headers=h).get_json() == {"unread": 1}
    assert fcm.count() == 0  # inbox row, no push
    assert Notification.get().push_status == "off"

    # quiet hours around the (real) current time, so the release is in the future: time is injected
    now = utcnow()
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(HCM)
    start, end = (local - dt.timedelta(hours=1)).strftime("%H:%M"), (local + dt.timedelta(hours=2)).strftime("%H:%M")
    pclient.put(f"{API}/me/preferences", json={"quiet_hours": {"start": start, "end": end}}, headers=h)
    logic.notify([g.id], "grade", "Điểm mới", "Văn: 8", {"type": "grade", "id": 2}, now=now)
    logic.notify([g.id], "announcement", "Khẩn: nghỉ học", "Bão", {"type": "announcement", "id": 9}, urgent=True,
                 now=now)
    assert [r["message"]["notification"]["title"] for r in fcm.accepted()] == ["Khẩn: nghỉ học"]  # urgent only
    held = Notification.get(Notification.title == "Điểm mới")
    assert held.push_status == "held"
    assert abs((held.push_after - (now + dt.timedelta(hours=2))).total_seconds()) < 61
    assert pclient.get(f"{API}/notifications/unread-count", headers=h).get_json() == {"unread": 3}

    assert logic.release_held(now=now + dt.timedelta(minutes=30)) == 0  # still quiet
    assert fcm.count() == 1
    assert logic.release_held(now=held.push_after) == 1  # quiet hours over
    assert [r["message"]["notification"]["title"] for r in fcm.accepted()] == ["Khẩn: nghỉ học", "Điểm mới"]
    logic.release_held(now=held.push_after + dt.timedelta(minutes=5))  # again: nothing new
    push_notifications([held.id], now=held.push_after)
    assert fcm.count() == 2


# --- push failures -------------------------------------------------------------------------------
def test_a_push_round_that_fails_before_fcm_answers_is_sent_by_the_next_run(pclient, pmake, fcm):
    """The rate limiter's Redis is down when a push job sends: the job fails (RQ retries it) and
    hands its claims back, so the next run sends; nothing is stuck as "sending"."""
    import dataclasses

    from redis import Redis

    from notifications.push import current_sender
    from notifications.ratelimit import TokenBucket
    from tests.support.servers import free_port

    fam = pmake.family()
    g = fam["guardian"]
    _device(pclient, pmake, g, "token-release-1")
    now = utcnow()
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(HCM)
    start, end = (local - dt.timedelta(hours=1)).strftime("%H:%M"), (local + dt.timedelta(hours=2)).strftime("%H:%M")
    pclient.put(f"{API}/me/preferences", json={"quiet_hours": {"start": start, "end": end}},
                headers=pmake.headers(g))
    logic.notify([g.id], "grade", "Điểm mới", "Toán: 9", {"type": "grade", "id": 3}, now=now)
    held = Notification.get(Notification.title == "Điểm mới")
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    broken = dataclasses.replace(current_sender(), bucket=TokenBucket(1000, redis=dead, key="dead"))

    with pytest.raises(Exception):
        push_notifications([held.id], now=held.push_after, sender=broken)
    assert fcm.count() == 0
    assert [a.status for a in PushAttempt.select()] == ["retry"]

    push_notifications([held.id], now=held.push_after)
    assert [r["message"]["notification"]["title"] for r in fcm.accepted()] == ["Điểm mới"]
    assert [a.status for a in PushAttempt.select()] == ["accepted"]


def test_unregistered_and_invalid_tokens_are_deleted_valid_ones_kept(pclient, pmake, fcm):
    fam = pmake.family()
    g = fam["guardian"]
    for token in ("unregistered-old-phone", "invalid-garbage-token", "token-good-1"):
        _device(pclient, pmake, g, token)
    logic.notify([g.id], "grade", "Điểm", "9", {"type": "grade", "id": 1})
    assert fcm.accepted_tokens() == ["token-good-1"]
    assert [d.token for d in Device.select()] == ["token-good-1"]
    errors = {a.error for a in PushAttempt.select().where(PushAttempt.status == "failed")}
    assert errors == {"UNREGISTERED", "INVALID_ARGUMENT"}

    # the push job run again (a retry after its worker died) never pushes twice
    note = Notification.get()
    push_notifications([note.id])
    assert fcm.count() == 1
    # a worker died between claiming and confirming: a fresh claim is left alone, a stale one
    # (older than the claim timeout) is sent again, with the same collapse key
    _device(pclient, pmake, g, "token-good-2")
    logic.notify([g.id], "grade", "Điểm 2", "8", {"type": "grade", "id": 2})
    assert fcm.count() == 3
    second = Notification.get(Notification.title == "Điểm 2")
    PushAttempt.update(status="sending", claimed_at=utcnow()).where(PushAttempt.notification == second.id).execute()
    fcm.reset()
    push_notifications([second.id])
    assert fcm.count() == 0
    PushAttempt.update(claimed_at=utcnow() - dt.timedelta(minutes=5)).where(
        PushAttempt.notification == second.id).execute()
    push_notifications([second.id])
    assert sorted(fcm.accepted_tokens()) == ["token-good-1", "token-good-2"]
    assert {r["message"]["android"]["collapse_key"] for r in fcm.accepted()} == {f"n{second.id}"}
    assert {r["message"]["apns"]["headers"]["apns-collapse-id"] for r in fcm.accepted()} == {f"n{second.id}"}


def test_quota_and_unavailable_are_retried_honouring_retry_after(pclient, pmake, fcm):
    fam = pmake.family()
    g = fam["guardian"]
    _device(pclient, pmake, g, "token-busy-1")
    _device(pclient, pmake, g, "token-busy-2")
    fcm.set_rates(retry_after=1)
    fcm.set_token_error("token-busy-1", "QUOTA_EXCEEDED", times=1)  # 429 + Retry-After: 1
    fcm.set_token_error("token-busy-2", "UNAVAILABLE", times=3)  # three inline rounds, the fourth send passes
    started = time.monotonic()
    logic.notify([g.id], "grade", "Điểm", "9", {"type": "grade", "id": 1})
    elapsed = time.monotonic() - started
    assert sorted(fcm.accepted_tokens()) == ["token-busy-1", "token-busy-2"]
    assert elapsed >= 1.0  # Retry-After honoured
    stats = fcm.stats()
    assert stats["QUOTA_EXCEEDED"] == 1 and stats["UNAVAILABLE"] == 3 and stats["accepted"] == 2
    tries = {a.device_id: a.tries for a in PushAttempt.select()}
    assert sorted(tries.values()) == [2, 4]


def test_without_firebase_the_inbox_still_works_and_start_says_so(app, client, make, caplog, monkeypatch):
    from notifications import setup

    monkeypatch.setattr(setup, "_said", set())
    with caplog.at_level(logging.WARNING, logger="lienlac.notifications"):
        setup.init_app(app, app.config["LIENLAC"])
    assert any("push notifications are OFF" in r.getMessage() for r in caplog.records)
    g = make.family()["guardian"]
    _device(client, make, g, "token-nopush-1")
    logic.notify([g.id], "grade", "Điểm", "9", {"type": "grade", "id": 1})
    assert client.get(f"{API}/notifications/unread-count", headers=make.headers(g)).get_json() == {"unread": 1}
    assert PushAttempt.select().count() == 0


def test_notify_large_list_is_planned_in_chunks(database_url, make_config, redis_url, monkeypatch):
    """A list over CHUNK goes to a planner job, which enqueues one deliver job per chunk (real RQ queues,
    run here by a SimpleWorker so the smaller CHUNK applies); rerunning a chunk adds nothing."""
    from rq import SimpleWorker

    from service import jobs
    from service.roster import logic as roster

    from ..support.apps import running_app
    from ..support.servers import unique_channel

    monkeypatch.setattr(logic, "CHUNK", 3)
    with running_app(make_config(database_url, redis_url=redis_url, socketio_channel=unique_channel())):
        users = [roster.ensure_user(f"+8497{i:07d}", f"Phụ huynh {i}") for i in range(7)]
        logic.notify([u.id for u in users], "schedule", "Đổi lịch", "Tiết 3 nghỉ", {"type": "timetable", "id": 1})
        queues = {q.name: q for q in jobs.queues()}
        [planner] = queues["default"].get_jobs()
        assert planner.func_name.endswith("plan_notify") and not queues["low"].get_jobs()
        SimpleWorker([queues["default"]], connection=jobs.redis_connection()).work(burst=True)

        chunks = sorted(queues["low"].get_jobs(), key=lambda j: j.id)
        assert [j.id.rsplit("-", 1)[1] for j in chunks] == ["0", "1", "2"]
        assert [len(j.args[1]) for j in chunks] == [3, 3, 1]
        assert sorted(u for j in chunks for u in j.args[1]) == sorted(u.id for u in users)
        assert Notification.select().count() == 0  # nothing delivered by the planner itself
        SimpleWorker([queues["low"]], connection=jobs.redis_connection()).work(burst=True)

        assert Notification.select().count() == 7
        assert len({n.dedupe_key for n in Notification.select()}) == 1
        assert json.loads(Notification.get().data) == {"type": "timetable", "id": "1"}
        logic.deliver_chunk(*chunks[0].args[:3])  # a chunk run twice (a retry) adds no row
        assert Notification.select().count() == 7


# --- configuration and the rate ceiling ----------------------------------------------------------
def test_rate_ceiling_is_shared_through_redis(redis_url):
    import redis as redis_lib

    from notifications.ratelimit import TokenBucket

    now = {"t": 1000.0}
    clock = lambda: now["t"]  # noqa: E731 - time injected: no wall-clock window to miss under load
    conn = redis_lib.Redis.from_url(redis_url)
    a = TokenBucket(100, redis=conn, key="t:bucket", clock=clock)
    b = TokenBucket(100, redis=conn, key="t:bucket", clock=clock)  # another worker
    assert a.reserve(100) == 0  # a full second's worth at once
    assert b.reserve(50) == 0.5  # the other worker must wait for its share
    assert a.reserve(50) == 1.0
    now["t"] += 1.0  # a second later 100 tokens came back: 50 more leave the bucket 50 short
    assert b.reserve(50) == 0.5
    now["t"] += 10.0  # refilled, but never above the capacity
    assert a.reserve(100) == 0 and b.reserve(1) == 0.01
    local = TokenBucket(10, clock=clock)
    assert local.reserve(10) == 0 and local.reserve(5) == 0.5
    now["t"] += 0.5
    assert local.reserve(5) == 0.5


def test_push_respects_the_configured_rate(database_url, make_config, fcm):
    from service import db as dbmod
    from service.app import create_app

    app = create_app(make_config(database_url, fcm_endpoint=fcm.url, firebase_project_id=fcm.project_id,
                                 fcm_rate_per_second=10.0))
    with app.app_context():
        dbmod.db.connect(reuse_if_open=True)
        from service.roster import logic as roster

        users = [roster.ensure_user(f"+8496{i:07d}", f"P {i}") for i in range(15)]
        for i, user in enumerate(users):
            logic.register_device(user.id, f"token-rate-{i:03d}", "android")
        started = time.monotonic()
        logic.notify([u.id for u in users], "grade", "Điểm", "9", {"type": "grade", "id": 1})
        elapsed = time.monotonic() - started
        dbmod.db.close()
    assert fcm.count() == 15
    assert elapsed >= 0.45  # 10 at once, the other 5 after half a second


def test_service_account_file_goes_through_the_token_endpoint(database_url, make_config, fcm, tmp_path):
    """FIREBASE_CREDENTIALS (a service-account file) → firebase-admin's Certificate credentials."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from service import db as dbmod
    from service.app import create_app

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": fcm.project_id, "private_key_id": "k1", "private_key": pem,
        "client_email": "lienlac@lienlac-test.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": f"{fcm.url}/token"}))
    app = create_app(make_config(database_url, firebase_credentials=str(path), fcm_endpoint=fcm.url))
    assert "lienlac-test" in app.extensions["lienlac.push"].description
    with app.app_context():
        dbmod.db.connect(reuse_if_open=True)
        from service.roster import logic as roster

        user = roster.ensure_user("+84961234567", "P")
        logic.register_device(user.id, "token-cert-1", "ios")
        logic.notify([user.id], "grade", "Điểm", "9", {"type": "grade", "id": 1})
        dbmod.db.close()
    assert fcm.accepted_tokens() == ["token-cert-1"]
