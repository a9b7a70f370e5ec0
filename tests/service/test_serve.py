"""``lienlac serve`` as shipped is the production server (gevent), on the embedded default (SQLite,
in-process jobs, no Redis) as on PostgreSQL + Redis + ``lienlac worker``.

Real processes only: the test talks HTTP, raw TCP and Socket.IO (python-socketio, WebSocket
transport) to ``lienlac serve`` started the way a deployment starts it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests
import socketio

from ..support.servers import (Processes, lienlac, process_env, requires_postgres, ROOT, truncate_all,
                               unique_channel, wait_for)

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 60  # connections held open at once, each in the middle of its request


@pytest.fixture
def procs(tmp_path):
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


def _seed(env) -> dict:
    done = subprocess.run(lienlac("seed-demo", "--classes", "1", "--students-per-class", "2"), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _login(url, account) -> str:
    r = requests.post(url + "/api/v1/auth/login", json={"phone": account["phone"], "password": account["password"]},
                      timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _assert_not_a_thread_per_connection(proc, url: str) -> None:
    """Hold SLOW_CLIENTS connections open, each having sent half its request (a slow client, or a
    keep-alive connection between requests). The Werkzeug server (threading) gives every open
    connection an OS thread of its own; gevent serves them all from greenlets in one thread. Then
    every one of them completes its request and gets its answer, and a plain request is answered
    meanwhile."""
    port = int(url.rsplit(":", 1)[1])
    before = _threads(proc.pid)
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the headers' end is still to come
            slow.append(s)
        time.sleep(0.5)  # every connection accepted and waiting in the server
        assert requests.get(url + "/healthz", timeout=10).status_code == 200  # not starved by them
        during = _threads(proc.pid)
        assert during < before + 5 and during < SLOW_CLIENTS // 2, (before, during)
        for s in slow:
            s.sendall(b"Connection: close\r\n\r\n")
        for s in slow:
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert b"werkzeug" not in answer.lower()
    finally:
        for s in slow:
            s.close()


class Socket:
    def __init__(self, url, token):
        self.sio = socketio.Client(reconnection=False)
        self.events: list = []
        self.disconnected = False
        self.sio.on("*", lambda event, *args: self.events.append((event, args[0] if args else None)))
        self.sio.on("disconnect", lambda *a: setattr(self, "disconnected", True))
        self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def event(self, name, match=lambda d: True):
        return next((d for e, d in self.events if e == name and match(d)), None)


def _exercise(procs, env, with_worker: bool) -> None:
    seeded = _seed(env)
    web, url = procs.web(env)

    # HTTP, and the JSON request log is the only line per request (no access log of the server's own)
    guardian_token, admin_token = _login(url, seeded["accounts"]["guardian"]), _login(url, seeded["accounts"]["admin"])
    me = requests.get(url + "/api/v1/me", headers={"Authorization": f"Bearer {guardian_token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["id"] == seeded["accounts"]["guardian"]["user_id"]
    assert "werkzeug" not in me.headers.get("Server", "").lower()
    _assert_not_a_thread_per_connection(web, url)

    # Socket.IO over WebSocket: ping → ack and pong; an announcement fanned out by a job (in-process
    # greenlet, or `lienlac worker` through Redis) reaches the guardian's socket
    sock = Socket(url, guardian_token)
    try:
        assert sock.sio.transport() == "websocket"
        ack = sock.sio.call("ping", {"nonce": "n1"}, timeout=10)
        assert ack["server_time"].endswith("Z")
        wait_for(lambda: sock.event("pong", lambda d: d["nonce"] == "n1"), 10, message="pong")
        if with_worker:
            procs.worker(env)
        title = f"Họp phụ huynh {uuid.uuid4().hex[:6]}"
        r = requests.post(url + "/api/v1/announcements", headers={"Authorization": f"Bearer {admin_token}"},
                          timeout=10, json={"title": title, "body": "Thứ bảy, 8 giờ.",
                                            "audience": {"class_ids": [seeded["class_id"]]}})
        assert r.status_code == 202, r.text
        wait_for(lambda: sock.event("notification:new", lambda d: d["notification"]["title"] == title), 60,
                 0.1, f"the announcement on the socket\n{web.output()[-3000:]}")
        inbox = requests.get(url + "/api/v1/notifications", headers={"Authorization": f"Bearer {guardian_token}"},
                             timeout=10).json()["items"]
        assert title in [n["title"] for n in inbox]

        # SIGTERM: the sockets are told, requests stop, the process exits 0
        web.popen.send_signal(signal.SIGTERM)
        assert web.wait(20) == 0, web.output()[-3000:]
        wait_for(lambda: sock.disconnected, 10, message="the socket to be disconnected")
    finally:
        sock.sio.disconnect()

    lines = web.output().splitlines()
    assert not [line for line in lines if '"GET /' in line or "HTTP/1.1" in line]  # no access log
    requests_logged = [json.loads(line) for line in lines if line.startswith("{") and '"lienlac.request"' in line]
    assert {"method": "GET", "path": "/api/v1/me", "status": 200} in [
        {k: r.get(k) for k in ("method", "path", "status")} for r in requests_logged]
    assert any(json.loads(line).get("msg") == "stopped" for line in lines if line.startswith("{"))


def test_serve_as_shipped_on_the_embedded_default(tmp_path, procs):
    """SQLite, in-process jobs, no Redis; SOCKETIO_ASYNC_MODE=threading does not make it Werkzeug."""
    env = process_env(f"sqlite:///{tmp_path / 'db' / 'lienlac.sqlite3'}", None, tmp_path, LOG_LEVEL="INFO",
                      SOCKETIO_ASYNC_MODE="threading", SOCKETIO_CHANNEL=unique_channel())
    _exercise(procs, env, with_worker=False)


@requires_postgres
def test_serve_as_shipped_on_postgres_and_redis(tmp_path, procs, pg_url, redis_url):
    truncate_all(pg_url)
    env = process_env(pg_url, redis_url, tmp_path, LOG_LEVEL="INFO", SOCKETIO_CHANNEL=unique_channel())
    _exercise(procs, env, with_worker=True)
