"""Production shape, for real: several web processes, RQ workers and the CLI sharing Redis and PostgreSQL.

Every process is a real subprocess (``lienlac serve``, ``gunicorn``, ``lienlac worker``, ``lienlac
emit``); the test process talks to them with python-socketio clients and HTTP only.
"""
from __future__ import annotations

import json
import queue
import signal
import threading
import uuid

import pytest
import requests
import socketio

from service import jobs, presence
from service.accounts import logic as accounts

from ..support import sample_jobs
from ..support.factories import Factory
from ..support.servers import (SHARED_SECRET, Processes, process_env, requires_postgres, run_lienlac, shared_app,
                               truncate_all, unique_channel, wait_for)

pytestmark = [requires_postgres, pytest.mark.slow]


class Client:
    """A real Socket.IO client that records every event it receives."""

    def __init__(self, url: str, token: str | None = None, transports=("websocket",)):
        self.sio = socketio.Client(reconnection=False)
        self.events: queue.Queue = queue.Queue()
        self.refusal = None

        @self.sio.on("*")
        def _any(event, *args):
            self.events.put((event, args[0] if args else None))

        @self.sio.on("connect_error")
        def _refused(data):
            self.refusal = data

        self.sio.connect(url, auth={"token": token} if token is not None else None,
                         transports=list(transports), wait_timeout=10)

    def wait_event(self, event: str, timeout: float = 30, match=None):
        """The next ``event`` (skipping others); ``match(data)`` narrows it down."""
        seen = []
        while True:
            try:
                name, data = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {event!r} within {timeout}s; got {seen}") from None
            if name == event and (match is None or match(data)):
                return data
            seen.append((name, data))

    def close(self) -> threading.Thread:
        """Disconnect without waiting for the WebSocket closing handshake (python-socketio's client
        waits up to 3 s for a close frame the Werkzeug server never sends; the server has seen the
        disconnect long before)."""
        thread = threading.Thread(target=self.sio.disconnect, daemon=True)
        thread.start()
        return thread


def refused(url: str, auth, transport: str = "polling") -> dict:
    """Connect with ``auth`` expecting a refusal; the connect_error's ``data`` (the error body).

    (Polling by default: python-socketio's WebSocket client then waits 3 s for a closing handshake
    the Werkzeug server does not send; the refusal itself is the same on either transport.)
    """
    sio = socketio.Client(reconnection=False)
    errors = []
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(url, auth=auth, transports=[transport], wait_timeout=10)
    sio.disconnect()
    assert errors and errors[0]["message"] == errors[0]["data"]["message"], errors
    return errors[0]["data"]


@pytest.fixture
def cluster(pg_url, redis_url, make_config, tmp_path):
    """This process shares the database, Redis, secret and Socket.IO channel with the ones it starts."""
    truncate_all(pg_url)
    config = make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                         socketio_channel=unique_channel())
    env = process_env(pg_url, redis_url, tmp_path, SOCKETIO_CHANNEL=config.socketio_channel,
                      PRESENCE_REFRESH_SECONDS=1)
    with shared_app(config) as app:
        yield app, env


@pytest.fixture
def procs(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_REFRESH_SECONDS", "1")  # this process reads presence like the servers
    processes = Processes(tmp_path)
    clients: list[Client] = []
    processes.clients = clients
    yield processes
    for closing in [client.close() for client in clients]:
        closing.join(1)
    processes.stop_all()


def test_rooms_and_presence_span_web_processes_workers_and_the_cli(cluster, procs):
    app, env = cluster
    make = Factory(app)
    (web_a, url_a), (web_b, url_b) = procs.webs(env, "web-a", "web-b")
    user, other, third = make.user(), make.user(), make.user()
    token = make.token(user)

    # a bad or missing token is refused at connect
    assert refused(url_a, None)["code"] == "unauthorized"
    assert refused(url_a, {"token": "not-a-jwt"})["code"] == "unauthorized"
    assert refused(url_a, {"token": make.token(user)[:-4] + "AAAA"})["code"] == "unauthorized"
    assert refused(url_a, {"token": accounts.start_session(user)["refresh_token"]})["code"] == "unauthorized"

    on_a = Client(url_a, token)
    on_b = Client(url_b, token)  # the same user's second device, on the other process
    other_on_b = Client(url_b, make.token(other))
    procs.clients.extend([on_a, on_b, other_on_b])

    # process B emits (its `ping` handler answers `pong` to the user's room): A's socket gets it
    nonce = uuid.uuid4().hex
    ack = on_b.sio.call("ping", {"nonce": nonce}, timeout=10)
    assert ack["server_time"].endswith("Z")
    assert on_a.wait_event("pong", match=lambda d: d["nonce"] == nonce)["server_time"] == ack["server_time"]
    on_b.wait_event("pong", match=lambda d: d["nonce"] == nonce)

    # a job run by a real worker emits through the queue
    jobs.enqueue(sample_jobs.emit_to_user, user.id, "test:from-worker", {"nonce": nonce, "text": "Chào"})
    worker = procs.worker(env, "--burst")
    assert worker.wait(60) == 0, worker.output()
    assert on_a.wait_event("test:from-worker") == {"nonce": nonce, "text": "Chào"}

    # so does the operator's CLI
    done = run_lienlac(env, "emit", f"user:{user.id}", "test:from-cli", json.dumps({"nonce": nonce}))
    assert done.returncode == 0, done.stderr
    assert on_a.wait_event("test:from-cli") == {"nonce": nonce}
    assert on_b.wait_event("test:from-cli") == {"nonce": nonce}

    # rooms are per user: the other user's socket heard none of it
    assert other_on_b.events.empty()

    # presence, read from this third process
    third_on_b = Client(url_b, make.token(third))
    procs.clients.append(third_on_b)
    ids = [user.id, other.id, third.id]
    wait_for(lambda: presence.online_users(ids) == set(ids), timeout=20, message="everyone online")
    other_on_b.close()
    wait_for(lambda: presence.online_users(ids) == {user.id, third.id}, timeout=20,
             message="a disconnect to count")

    # a web process that dies without a goodbye stops holding its users online within 3 refreshes;
    # A keeps re-stamping the sockets it holds
    web_b.kill(signal.SIGKILL)
    wait_for(lambda: presence.online_users(ids) == {user.id}, timeout=20, message="B's sockets to go stale")
    assert on_a.sio.call("ping", {"nonce": "after"}, timeout=10)


def test_gunicorn_gevent_and_gevent_serve_share_rooms(cluster, procs):
    app, env = cluster
    make = Factory(app)
    _g, url_g = procs.gunicorn(env)
    _s, url_s = procs.web(dict(env, SOCKETIO_ASYNC_MODE="gevent"), "serve-gevent")

    ready = requests.get(url_g + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    user = make.user()
    login = requests.post(url_g + "/api/v1/auth/login", json={"phone": user.phone, "password": "mat-khau-123"},
                          timeout=10)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]

    on_g = Client(url_g, token)  # WebSocket only: polling alone would hide a broken upgrade
    on_s = Client(url_s, token)
    procs.clients.extend([on_g, on_s])
    assert on_g.sio.transport() == "websocket" and on_s.sio.transport() == "websocket"
    on_g.sio.call("ping", {"nonce": "g"}, timeout=10)
    assert on_s.wait_event("pong", match=lambda d: d["nonce"] == "g")
    on_s.sio.call("ping", {"nonce": "s"}, timeout=10)
    assert on_g.wait_event("pong", match=lambda d: d["nonce"] == "s")
    assert refused(url_g, {"token": "nope"}, "websocket")["code"] == "unauthorized"


def test_ended_sessions_drop_their_sockets_on_every_web_process(cluster, procs):
    """Issue 7: logout on one process drops the session's sockets on both; a password change drops
    every other session's sockets; nothing sent on a dropped socket is stored."""
    app, env = cluster
    make = Factory(app)
    (_a, url_a), (_b, url_b) = procs.webs(env, "web-a", "web-b")
    fam = make.family()
    guardian, teacher = fam["guardian"], fam["teacher"]
    session = accounts.start_session(guardian)
    token = session["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    r = requests.post(url_a + "/api/v1/conversations", headers=h, timeout=10,
                      json={"kind": "direct", "student_id": str(fam["student"].id), "participant_ids": [str(teacher.id)]})
    assert r.status_code in (200, 201), r.text
    conv = r.json()["id"]

    on_a, on_b = Client(url_a, token), Client(url_b, token)  # one session, a socket on each process
    other_token = make.token(guardian)  # another device (session) of the same guardian, on B
    other_on_b = Client(url_b, other_token)
    third_token = make.token(guardian)
    third_on_a = Client(url_a, third_token)
    procs.clients.extend([on_a, on_b, other_on_b, third_on_a])
    ack = on_b.sio.call("message:send", {"conversation_id": conv, "client_id": "before", "body": "trước"}, timeout=10)
    assert ack["message"]["body"] == "trước"

    assert requests.post(url_a + "/api/v1/auth/logout", headers=h, timeout=10).status_code == 204
    wait_for(lambda: not on_a.sio.connected and not on_b.sio.connected, timeout=20,
             message="the logged-out session's sockets on both processes to go")
    assert other_on_b.sio.connected and third_on_a.sio.connected
    assert refused(url_b, {"token": token})["code"] == "unauthorized"
    with pytest.raises(socketio.exceptions.SocketIOError):
        on_b.sio.call("message:send", {"conversation_id": conv, "client_id": "after", "body": "sau"}, timeout=2)

    # a password change through B ends every other session: the third one's socket on A goes
    r = requests.patch(url_b + "/api/v1/me", headers={"Authorization": f"Bearer {other_token}"}, timeout=10,
                       json={"password": "mat-khau-moi-789", "current_password": "mat-khau-123"})
    assert r.status_code == 200, r.text
    wait_for(lambda: not third_on_a.sio.connected, timeout=20, message="the other session's socket on A to go")
    assert other_on_b.sio.call("ping", {"nonce": "still"}, timeout=10)["server_time"]
    history = requests.get(f"{url_a}/api/v1/conversations/{conv}/messages", timeout=10,
                           headers={"Authorization": f"Bearer {make.token(teacher)}"}).json()["items"]
    assert [m["body"] for m in history] == ["trước"]
