"""Shared helpers for the fault tests (issue 14): a Redis server of the test's own that it may kill
and start again, PostgreSQL backends found and terminated by ``application_name``, an HTTP client
that retries what a fault broke (and records what it had to retry), and a Socket.IO client that
records what it receives.

Every test here runs real processes (``lienlac serve``, ``lienlac worker``) on PostgreSQL and
asserts on what is observable from outside: HTTP answers, socket events, database rows and the
local FCM server's record. The shared Redis on 6379 is never restarted: a test that restarts
Redis starts its own ``redis-server`` (without persistence: a restart loses every job in it).
"""
from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import peewee
import pytest
import redis as redis_lib
import requests
import socketio

from tests.conftest import BACKENDS

from ..support.servers import free_port

needs_postgres = pytest.mark.skipif("postgres" not in BACKENDS, reason="the fault tests run on PostgreSQL")
needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


# --- a Redis server of our own -----------------------------------------------------------------
class RedisServer:
    """``redis-server`` on a free port, in ``directory``; ``restart`` keeps both. ``persist``: AOF
    on (what the README asks of production); off (the default here), a restart loses every queued
    job, scheduled retry and lock: the worst case, which the database-driven recovery sweep covers."""

    def __init__(self, directory, port: int | None = None, persist: bool = False):
        self.persist = persist
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.port = port or free_port()
        self.popen: subprocess.Popen | None = None
        self.log = os.path.join(self.directory, "redis.log")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> "RedisServer":
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
                "--appendonly", "yes" if self.persist else "no", "--appendfsync", "everysec", "--save", "", "--logfile", self.log,
                "--protected-mode", "no"]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():  # answers once the AOF is loaded (LOADING errors before)
                    return self
            except redis_lib.exceptions.RedisError:
                pass
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {open(self.log).read()[-2000:]}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGKILL, timeout: float = 10) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.popen = None

    def restart(self, sig=signal.SIGKILL, down_seconds: float = 1.0) -> float:
        """Stop (SIGKILL: what a crash or an OOM kill does), stay down a while, start again on the
        same port and directory. Returns the seconds it was unreachable."""
        t0 = time.monotonic()
        self.stop(sig)
        time.sleep(down_seconds)
        self.start()
        return time.monotonic() - t0


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop(signal.SIGKILL)


# --- the fan-out rig's environment ---------------------------------------------------------------
def fanout_env(pg_url, redis_url, tmp_path, channel, fcm, **extra) -> dict:
    """Web and worker processes pushing to the local FCM server ``fcm``, with short fault timings:
    claims stale after 5 s (shorter, a window still being sent on this loaded machine is taken
    over and resent), the recovery sweep every second, retries after 50 ms."""
    from ..support.servers import process_env

    settings = dict(SOCKETIO_CHANNEL=channel, FCM_ENDPOINT=fcm.url, FIREBASE_PROJECT_ID=fcm.project_id,
                    FCM_RATE_PER_SECOND=100000, FCM_RETRY_BASE_SECONDS=0.05, PUSH_CLAIM_TIMEOUT_SECONDS=5,
                    RECOVERY_SWEEP_SECONDS=1)
    return process_env(pg_url, redis_url, tmp_path, **{**settings, **extra})


# --- PostgreSQL backends -----------------------------------------------------------------------
def with_application_name(url: str, name: str) -> str:
    """The DATABASE_URL of one process, its connections named ``name`` in pg_stat_activity."""
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, f"application_name={name}"]))
    return urlunsplit(parts._replace(query=query))


def _admin(url: str) -> peewee.PostgresqlDatabase:
    from playhouse.db_url import parse

    params = parse(url)
    params.pop("application_name", None)
    return peewee.PostgresqlDatabase(params.pop("database"), **params)


def backends(url: str, application_name: str) -> list[int]:
    """Pids of the server processes serving connections named ``application_name`` to ``url``'s database."""
    admin = _admin(url)
    with contextlib.closing(admin.connection()):
        cursor = admin.execute_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (application_name,))
        return [pid for (pid,) in cursor.fetchall()]


def terminate_backends(url: str, application_name: str) -> int:
    """``pg_terminate_backend`` every connection named ``application_name``: how many were ended."""
    admin = _admin(url)
    with contextlib.closing(admin.connection()):
        cursor = admin.execute_sql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s", (application_name,))
        return cursor.fetchone()[0]


# --- HTTP that retries what a fault broke ------------------------------------------------------
class Http:
    """Requests the way the mobile app makes them: a 5xx or a refused/broken connection is retried
    (same request, same ``client_id``) until ``cure_seconds`` have passed. Every answer is recorded,
    so a test can say how many requests a fault broke and that a retry cured every one."""

    def __init__(self, cure_seconds: float = 20.0, timeout: float = 20.0):
        self.session = requests.Session()
        self.cure_seconds, self.timeout = cure_seconds, timeout
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: list[tuple[str, str, object]] = []  # (method, url, status code or exception name)
        self.uncured: list[tuple[str, str, object]] = []

    def request(self, method: str, url: str, **kw) -> requests.Response | None:
        deadline = time.monotonic() + self.cure_seconds
        kw.setdefault("timeout", self.timeout)
        with self.lock:
            self.requests += 1
        while True:
            try:
                response = self.session.request(method, url, **kw)
                outcome = response.status_code
                if outcome < 500:
                    return response
            except requests.RequestException as exc:
                response, outcome = None, type(exc).__name__
            with self.lock:
                self.faults.append((method, url, outcome))
            if time.monotonic() > deadline:
                with self.lock:
                    self.uncured.append((method, url, outcome))
                return response
            time.sleep(0.2)

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def server_errors(self) -> list:
        """The 5xx answers seen (cured or not)."""
        with self.lock:
            return [f for f in self.faults if isinstance(f[2], int)]


# --- a real Socket.IO client -------------------------------------------------------------------
class SocketClient:
    """python-socketio, WebSocket transport, no automatic reconnection (the test reconnects it as
    the app would: to another URL, same token); records every event in order."""

    def __init__(self, url: str, token: str, name: str = ""):
        self.name, self.url, self.token = name, url, token
        self.events: queue.Queue = queue.Queue()
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.disconnected = threading.Event()
        self.sio = self._connect(url)

    def _connect(self, url: str) -> socketio.Client:
        sio = socketio.Client(reconnection=False)

        @sio.on("*")
        def _any(event, *args):
            item = (event, args[0] if args else None)
            with self.lock:
                self.log.append(item)
            self.events.put(item)

        @sio.on("disconnect")
        def _gone(*_args):
            self.disconnected.set()

        sio.connect(url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)
        return sio

    def reconnect(self, url: str) -> None:
        with contextlib.suppress(Exception):
            self.sio.disconnect()
        self.url = url
        self.disconnected.clear()
        self.sio = self._connect(url)

    def received(self, event: str) -> list:
        with self.lock:
            return [data for name, data in self.log if name == event]

    def close(self) -> None:
        threading.Thread(target=self.sio.disconnect, daemon=True).start()


# --- what a stuck fan-out left where ------------------------------------------------------------
def diagnose_fanout(redis_url, ann_id) -> str:
    """What is left where, for a failure message: RQ's queues and registries, the fan-out's rows."""
    import redis as redis_lib
    from peewee import fn
    from rq import Queue
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from service.jobs import QUEUES

    from notifications.models import AnnouncementChunk, Notification, PushAttempt

    conn = redis_lib.Redis.from_url(redis_url)
    out = {}
    for name in QUEUES:
        q = Queue(name, connection=conn)
        out[name] = {"queued": q.count, "started": StartedJobRegistry(queue=q).get_job_ids(),
                     "scheduled": len(ScheduledJobRegistry(queue=q)), "failed": FailedJobRegistry(queue=q).get_job_ids()}
    out["due_in"] = [round(score - time.time(), 1) for name in QUEUES
                     for _, score in conn.zrange(ScheduledJobRegistry(queue=Queue(name, connection=conn)).key, 0, -1,
                                                 withscores=True)]
    out["schedulers"] = {k.decode(): {f.decode(): v.decode() for f, v in conn.hgetall(k).items()}
                         for k in conn.scan_iter("rq:scheduler:*")}
    out["workers"] = [w.decode() for w in conn.smembers("rq:workers")]
    out["locks"] = {k.decode(): (conn.get(k) or b"").decode() for k in conn.scan_iter("rq:scheduler-lock:*")}
    out["chunks_open"] = AnnouncementChunk.select().where((AnnouncementChunk.announcement == int(ann_id))
                                                         & AnnouncementChunk.done_at.is_null()).count()
    out["attempts"] = dict(PushAttempt.select(PushAttempt.status, fn.COUNT(PushAttempt.id))
                           .where(PushAttempt.announcement_id == int(ann_id)).group_by(PushAttempt.status).tuples())
    retry = PushAttempt.select(fn.MIN(PushAttempt.next_at), fn.MAX(PushAttempt.next_at), fn.MAX(PushAttempt.tries)).where(
        (PushAttempt.announcement_id == int(ann_id)) & (PushAttempt.status == "retry")).tuples().first()
    from service.db import utcnow
    out["retry_next_at"] = [round((t - utcnow()).total_seconds(), 1) if hasattr(t, "year") else t for t in retry]
    out["notifications"] = dict(Notification.select(Notification.push_status, fn.COUNT(Notification.id))
                                .where(Notification.announcement == int(ann_id))
                                .group_by(Notification.push_status).tuples())
    return repr(out)
