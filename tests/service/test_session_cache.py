"""Issue 13: authentication cached per web process, and every revocation still takes effect at once.

In this process (SQLite and PostgreSQL, no Redis: local invalidation; and with a real Redis: the
subscription) and across two real ``lienlac serve`` processes on PostgreSQL + Redis. No mocks:
statements are counted on the real database (``count_queries``), Redis connections are killed for
real (only this test's own subscriber, found by its CLIENT SETNAME).
"""
from __future__ import annotations

import contextlib
import time

import pytest
import redis as redis_lib
import requests
import socketio

from service.accounts import logic as accounts
from service.accounts import sessioncache
from service.accounts.models import RevokedFamily, User
from service.db import utcnow, write_transaction
from service.roster import logic as roster

from ..support.apps import running_app
from ..support.factories import Factory
from ..support.queries import count_queries
from ..support.servers import (SHARED_SECRET, Processes, process_env, requires_postgres, shared_app, truncate_all,
                               unique_channel, wait_for)

ME = "/api/v1/me"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def auth_statements(log) -> list[str]:
    """The statements of the authentication itself: the user by primary key, the revoked family."""
    return [s for s in log.statements if '"revoked_family"' in s
            or ('FROM "user"' in s and 'WHERE ("t1"."id" = ' in s and "JOIN" not in s)]


def cache_of(app) -> sessioncache.SessionCache:
    return app.extensions["lienlac.session_cache"]


# --- the cache itself ---------------------------------------------------------------------------------
def test_the_cache_refuses_a_reader_older_than_an_invalidation_and_stays_bounded():
    now = [0.0]
    cache = sessioncache.SessionCache(size=3, ttl=10, clock=lambda: now[0])
    gen = cache.generation()
    cache.invalidate(users=[1])  # committed while the reader was reading
    assert cache.put("fam-1", 1, {"id": 1}, gen) is False and cache.get("fam-1") is None
    assert cache.put("fam-1", 1, {"id": 1}, cache.generation())
    assert cache.get("fam-1").row == {"id": 1}
    for n in (2, 3, 4):  # least recently used goes first: fam-1 was just read, fam-2 goes
        cache.get("fam-1")
        assert cache.put(f"fam-{n}", n, {"id": n}, cache.generation())
    assert len(cache) == 3 and cache.get("fam-2") is None and cache.get("fam-1") is not None
    cache.invalidate(users=[3])
    assert cache.get("fam-3") is None and cache.get("fam-4") is not None
    now[0] = 10.0  # the TTL backstop
    assert cache.get("fam-1") is None and cache.get("fam-4") is None


def test_a_cache_waiting_for_its_subscription_is_bypassed_and_cleared_when_it_comes():
    cache = sessioncache.SessionCache(live=False)
    assert cache.put("f", 1, {"id": 1}, cache.generation()) is False and cache.get("f") is None
    gen = cache.generation()  # a reader started while the subscription was down...
    cache.go_live()
    assert cache.put("f", 1, {"id": 1}, gen) is False  # ...cannot fill the fresh cache
    assert cache.put("f", 1, {"id": 1}, cache.generation()) and cache.get("f") is not None
    cache.go_down()
    assert cache.get("f") is None and not cache.live
    cache.go_live()
    assert cache.get("f") is None  # nothing from before the outage survives


# --- in this process -------------------------------------------------------------------------------------
def test_a_warm_request_sends_no_authentication_statement(app, client, make):
    user = make.user()
    token = make.token(user)
    cache_of(app).clear()
    with count_queries() as cold:
        assert client.get(ME, headers=bearer(token)).status_code == 200
    with count_queries() as warm:
        r = client.get(ME, headers=bearer(token))
    assert r.status_code == 200 and r.json["id"] == str(user.id) and r.json["name"] == user.name
    assert len(auth_statements(cold)) == 2, cold
    assert auth_statements(warm) == [], warm
    assert warm.count == cold.count - 2, (cold, warm)


def _ended_by_logout(client, make, user, token, other):
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204


def _ended_by_refresh_reuse(client, make, user, token, other, session=None):
    refresh = session["refresh_token"]
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": refresh}).status_code == 200
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": refresh}).status_code == 401


def _ended_by_password_change(client, make, user, token, other):
    r = client.patch(ME, headers=bearer(other), json={"password": "mat-khau-moi-789",
                                                       "current_password": "mat-khau-123"})
    assert r.status_code == 200, r.json


def _ended_by_deactivation(client, make, user, token, other):
    accounts.deactivate_user(user.id)


def _ended_by_end_all_sessions(client, make, user, token, other):
    with write_transaction():
        accounts.end_all_sessions(user.id, reason="test")


def _ended_by_revoke_family(client, make, user, token, other):
    with write_transaction():
        accounts.revoke_family(accounts.decode_access_token(token)["fam"], user.id, "test")


PATHS = [_ended_by_logout, _ended_by_refresh_reuse, _ended_by_password_change, _ended_by_deactivation,
         _ended_by_end_all_sessions, _ended_by_revoke_family]


@pytest.mark.parametrize("end", PATHS, ids=lambda f: f.__name__[len("_ended_by_"):])
def test_every_way_a_session_ends_refuses_its_next_request(app, client, make, end):
    user = make.user()
    session = accounts.start_session(user)
    token, other = session["access_token"], accounts.start_session(user)["access_token"]
    assert client.get(ME, headers=bearer(token)).status_code == 200  # warm
    with count_queries() as warm:
        assert client.get(ME, headers=bearer(token)).status_code == 200
    assert auth_statements(warm) == []  # it is served from the cache...
    kwargs = {"session": session} if end is _ended_by_refresh_reuse else {}
    end(client, make, user, token, other, **kwargs)
    assert client.get(ME, headers=bearer(token)).status_code == 401  # ...and the cache lets it go


def test_profile_changes_reach_the_cached_user(app, client, make):
    """What the snapshot holds follows the writes: a phone given by the school, a name changed on
    another session (the roster's writes and PATCH /me invalidate by user)."""
    student = make.student(make.klass(make.school()))
    guardian = User.create(name="Mẹ cũ", phone=None)  # imported from an email-only roster row
    make.guardian(student, user=guardian)
    token, other = make.token(guardian), make.token(guardian)
    assert client.get(ME, headers=bearer(token)).json["phone"] is None  # warm
    phone = make.phone()
    roster.set_guardian_phone(student.id, guardian.id, phone)
    assert client.get(ME, headers=bearer(token)).json["phone"] == phone
    r = client.patch(ME, headers=bearer(other), json={"name": "Mẹ mới"})
    assert r.status_code == 200 and r.json["name"] == "Mẹ mới"
    assert client.get(ME, headers=bearer(token)).json["name"] == "Mẹ mới"  # the other session's entry
    roster.ensure_user(phone, "", password="mat-khau-moi-456")  # a new password set by the school
    assert accounts.login_with_password(phone, "mat-khau-moi-456").id == guardian.id
    r = client.patch(ME, headers=bearer(token), json={"password": "x-" * 6, "current_password": "mat-khau-moi-456"})
    assert r.status_code == 200, r.json  # the cached user carried the new password hash, not the old one


def test_a_socket_event_is_refused_once_the_session_is_revoked(app, make):
    """The per-event check reads the same cache: warm, then revoked, then refused."""
    from service import realtime

    user = make.user()
    token = make.token(user)
    user_id, family, expires = accounts.socket_identity(token)
    with count_queries() as warm:
        assert realtime._session_alive(user_id, family, expires)
    assert warm.count == 0, warm
    with write_transaction():
        accounts.revoke_family(family, user_id, "test")
        assert realtime._session_alive(user_id, family, expires)  # not committed yet: still alive
    assert not realtime._session_alive(user_id, family, expires)


# --- with Redis, in this process -------------------------------------------------------------------------
@pytest.fixture
def redis_app(database_url, make_config, redis_url):
    config = make_config(database_url, redis_url=redis_url, socketio_channel=unique_channel())
    with running_app(config) as app:
        yield app


def _kill_subscriber(redis_url: str, name: str) -> int:
    """CLIENT KILL of the connections named ``name`` (this test's own subscriber, nothing else)."""
    r = redis_lib.Redis.from_url(redis_url)
    ids = [c["id"] for c in r.client_list() if c.get("name") == name]
    for client_id in ids:
        r.client_kill_filter(_id=client_id)
    return len(ids)


def test_a_lost_subscription_clears_the_cache_and_bypasses_it_until_it_is_back(redis_app, redis_url):
    app = redis_app
    client, make = app.test_client(), Factory(app)
    subscriber = app.extensions["lienlac.session_subscriber"]
    assert subscriber.connected.wait(10), "the subscription never came up"
    user = make.user()
    token = make.token(user)
    assert client.get(ME, headers=bearer(token)).status_code == 200
    with count_queries() as warm:
        assert client.get(ME, headers=bearer(token)).status_code == 200
    assert auth_statements(warm) == []

    assert _kill_subscriber(redis_url, sessioncache.subscriber_name(app.config["LIENLAC"])) == 1
    # a revocation written behind the cache's back (as a message lost during the outage would be)
    RevokedFamily.create(family=accounts.decode_access_token(token)["fam"], user=user.id, reason="test")
    wait_for(lambda: client.get(ME, headers=bearer(token)).status_code == 401, timeout=2,
             message="the cache to be cleared once its subscription dropped")

    other = make.token(user)
    wait_for(lambda: subscriber.connected.is_set(), timeout=10, message="the subscription to come back")
    assert client.get(ME, headers=bearer(other)).status_code == 200
    with count_queries() as again:
        assert client.get(ME, headers=bearer(other)).status_code == 200
    assert auth_statements(again) == []  # cached again once the subscription is back


# --- two real web processes ---------------------------------------------------------------------------------
@pytest.fixture
def cluster(pg_url, redis_url, make_config, tmp_path):
    truncate_all(pg_url)
    config = make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                         socketio_channel=unique_channel())
    env = process_env(pg_url, redis_url, tmp_path, SOCKETIO_CHANNEL=config.socketio_channel)
    with shared_app(config) as app:  # web=False: like a worker or the CLI, it only publishes
        yield app, env


@pytest.fixture
def procs(tmp_path):
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


def status(url, token) -> int:
    return requests.get(url + "/api/v1" + "/me", headers=bearer(token), timeout=5).status_code


def refused_within(url: str, token: str, seconds: float = 1.0) -> float:
    """How long until ``url`` answers 401 for ``token``; fails after ``seconds``."""
    start = time.monotonic()
    while True:
        code = status(url, token)
        if code == 401:
            return time.monotonic() - start
        assert code == 200, code
        assert time.monotonic() - start < seconds, f"still {code} after {seconds}s"
        time.sleep(0.02)


def cached_on(url: str, user, token: str) -> None:
    """Prove ``url`` serves ``token`` from its cache: a revocation written behind the cache's back (no
    invalidation) is not seen; the row is then taken back out."""
    family = accounts.decode_access_token(token)["fam"]
    RevokedFamily.create(family=family, user=user.id, reason="test", revoked_at=utcnow())
    try:
        assert status(url, token) == 200
    finally:
        RevokedFamily.delete().where(RevokedFamily.family == family).execute()


@requires_postgres
@pytest.mark.slow
def test_a_revocation_reaches_every_web_process_at_once(cluster, procs, redis_url):
    app, env = cluster
    make = Factory(app)
    _a, url_a = procs.web(env, "web-a")  # threading
    proc_b, url_b = procs.web(dict(env, SOCKETIO_ASYNC_MODE="gevent"), "web-b")  # its subscriber a greenlet
    user = make.user()
    session = accounts.start_session(user)
    token, other = session["access_token"], make.token(user)
    for t in (token, other):
        assert status(url_b, t) == 200  # warm on B
        cached_on(url_b, user, t)
    sock = socketio.Client(reconnection=False)
    sock.connect(url_b, auth={"token": token}, transports=["polling"], wait_timeout=10)
    try:
        assert "server_time" in sock.call("ping", {}, timeout=5)

        # logout on A: B refuses the token within a second (not after its TTL), and its socket's events
        assert requests.post(url_a + "/api/v1/auth/logout", headers=bearer(token), timeout=5).status_code == 204
        refused_within(url_b, token)
        if sock.connected:  # (unless the disconnect got there first)
            with contextlib.suppress(socketio.exceptions.SocketIOError):
                assert sock.call("ping", {}, timeout=2)["error"]["code"] == "unauthorized"
        wait_for(lambda: not sock.connected, timeout=5, message="the socket on B to be dropped")
    finally:
        sock.disconnect()
    assert status(url_b, other) == 200

    # a password change on A ends the other sessions, on B too
    keep, third = make.token(user), make.token(user)
    assert status(url_b, third) == 200
    cached_on(url_b, user, third)
    r = requests.patch(url_a + "/api/v1/me", headers=bearer(keep), timeout=5,
                       json={"password": "mat-khau-moi-789", "current_password": "mat-khau-123"})
    assert r.status_code == 200, r.text
    refused_within(url_b, third)
    refused_within(url_b, other)
    assert status(url_b, keep) == 200

    # a name change on A shows on B at once
    cached_on(url_b, user, keep)
    assert requests.patch(url_a + "/api/v1/me", headers=bearer(keep), timeout=5, json={"name": "Tên mới"}).ok
    wait_for(lambda: requests.get(url_b + ME, headers=bearer(keep), timeout=5).json()["name"] == "Tên mới",
             timeout=1, interval=0.02, message="B to show the new name")

    # deactivation from a worker- or CLI-side process (this one: it only publishes)
    cached_on(url_b, user, keep)
    accounts.deactivate_user(user.id)
    refused_within(url_b, keep)

    # B's subscriber connection killed: B's cache is cleared, so what was written behind its back shows
    second = make.user()
    t2 = make.token(second)
    assert status(url_b, t2) == 200
    cached_on(url_b, second, t2)
    RevokedFamily.create(family=accounts.decode_access_token(t2)["fam"], user=second.id, reason="test")
    assert status(url_b, t2) == 200  # still cached: nothing was published
    name = sessioncache.subscriber_name(app.config["LIENLAC"]).rsplit("-", 1)[0] + f"-{proc_b.pid}"
    assert _kill_subscriber(redis_url, name) == 1
    refused_within(url_b, t2)
    assert status(url_a, t2) == 401
