"""Issue 13, the send path with Redis: no job when every recipient is connected, one push job for
the offline ones only, one PUBLISH per message whatever the number of members.

The app is served in this process by Werkzeug's threaded server on SQLite and PostgreSQL, with a
real Redis (RQ queues, presence, the Socket.IO channel of its own) and real python-socketio
clients over long-polling. Jobs are looked for in the RQ queues and registries in Redis (nothing
runs them until the test starts a burst ``service.worker.Worker`` in this process); the channel's
traffic is read by a plain Redis subscriber, so nothing on the path is mocked.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import queue
import threading
import time
import uuid

import pytest
import redis as redis_lib
import socketio
from rq import Queue
from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry,
                         StartedJobRegistry)

from messaging.logic import sending
from service import jobs, presence
from service.accounts.models import User
from service.roster import logic as roster
from service.worker import Worker

from ..support.apps import running_app
from ..support.servers import unique_channel, wait_for
from .conftest import World, cid
from .test_socket_sessions import served

API = "/api/v1"


class Client:
    """A real python-socketio client recording the events it receives."""

    def __init__(self, url: str, token: str):
        self.sio = socketio.Client(reconnection=False)
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()

        @self.sio.on("*")
        def _any(event, *args):
            with self.lock:
                self.log.append((event, args[0] if args else None))

        self.sio.connect(url, auth={"token": token}, transports=["polling"], wait_timeout=10)

    def new_messages(self) -> list[dict]:
        with self.lock:
            return [d["message"] for n, d in self.log if n == "message:new"]

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()


class Setup:
    def __init__(self, app, url, make, fcm, channel):
        self.app, self.url, self.fcm, self.channel = app, url, fcm, channel
        self.http = app.test_client()
        self.world = World(make)
        self.redis = jobs.redis_connection()
        self.clients: list[Client] = []
        self.devices: dict[int, str] = {}

    def h(self, user):
        return self.world.h(user)

    def connect(self, user) -> Client:
        client = Client(self.url, self.world.make.token(user))
        self.clients.append(client)
        wait_for(lambda: user.id in presence.online_users([user.id]), message="presence after connect")
        return client

    def disconnect(self, client: Client, user) -> None:
        client.close()
        wait_for(lambda: user.id not in presence.online_users([user.id]), message="presence after disconnect")

    def device(self, user) -> str:
        token = f"fcm-{uuid.uuid4().hex}"
        r = self.http.post(f"{API}/devices", headers=self.h(user), json={"token": token, "platform": "android"})
        assert r.status_code in (200, 201), r.json
        self.devices[user.id] = token
        return token

    def send(self, user, conv, body) -> dict:
        r = self.http.post(f"{API}/conversations/{conv}/messages", headers=self.h(user),
                           json={"client_id": cid(), "body": body})
        assert r.status_code == 201, r.json
        return r.json

    def jobs_in_redis(self) -> list[tuple[str, str, tuple]]:
        """Every RQ job waiting, scheduled, running, deferred, finished or failed, on every queue:
        ``(queue, function name, args)``."""
        found = []
        for name in jobs.QUEUES:
            q = Queue(name, connection=self.redis)
            ids = set(q.job_ids)
            for registry in (ScheduledJobRegistry, StartedJobRegistry, DeferredJobRegistry, FinishedJobRegistry,
                             FailedJobRegistry):
                ids.update(registry(name, connection=self.redis).get_job_ids())
            for job in q.job_class.fetch_many(sorted(ids), connection=self.redis):
                if job is not None:
                    found.append((name, job.func_name, tuple(job.args)))
        return found

    def pushed_tokens(self) -> list[str]:
        return [m["token"] for m in self.fcm.accepted()]


@pytest.fixture
def setup(database_url, make_config, redis_url, make, fcm):
    channel = unique_channel()
    config = make_config(database_url, redis_url=redis_url, socketio_channel=channel, jobs_inline=False,
                         fcm_endpoint=fcm.url, firebase_project_id=fcm.project_id, fcm_rate_per_second=100000.0)
    with running_app(config) as app, served(app) as url:
        s = Setup(app, url, make, fcm, channel)
        try:
            yield s
        finally:
            sids = {c.sio.get_sid("/") for c in s.clients if c.sio.connected}  # (the server's sid for "/")
            for c in s.clients:
                c.close()
            # the server has handled each disconnect (no socket of this test left in this process's
            # tables for the next test to find)
            wait_for(lambda: not sids & set().union(*presence.local_sockets().values()), timeout=10,
                     message="the server to forget this test's sockets")


def run_jobs(setup) -> None:
    """What ``lienlac worker --burst`` does, in this process: every queue until empty."""
    Worker(list(jobs.QUEUES), connection=setup.redis).work(burst=True)


def test_no_job_when_every_recipient_is_connected_one_job_for_the_offline(setup):
    s, w = setup, setup.world
    for user in (w.g1, w.teacher, w.subject_teacher, w.g2):
        s.device(user)
    conv = s.http.post(f"{API}/conversations", headers=s.h(w.g1),
                       json={"kind": "direct", "student_id": str(w.s1.id), "participant_ids": [str(w.teacher.id)]}).json["id"]
    channel = s.http.post(f"{API}/conversations", headers=s.h(w.teacher),
                          json={"kind": "class", "class_id": str(w.klass.id)}).json["id"]
    before = s.jobs_in_redis()
    assert not [j for j in before if j[1] == "messaging.jobs.push_new_message"]

    # 1:1, both connected: over HTTP and over the socket, delivered, and not one job
    guardian, teacher = s.connect(w.g1), s.connect(w.teacher)
    sent = s.send(w.g1, conv, "Cô ơi, cháu An xin nghỉ hôm nay ạ")
    ack = teacher.sio.call("message:send", {"conversation_id": conv, "client_id": cid(), "body": "Cô biết rồi"},
                           timeout=10)
    assert ack["message"]["seq"] == 2, ack
    for c in (guardian, teacher):
        wait_for(lambda c=c: [m["seq"] for m in c.new_messages()] == [1, 2], message="both messages delivered")
    assert sent["seq"] == 1
    assert s.jobs_in_redis() == before  # no job at all
    assert s.pushed_tokens() == []

    # class channel (teacher, subject teacher, g1, g2): g2 has no socket
    sub = s.connect(w.subject_teacher)
    msg = s.send(w.teacher, channel, "Thứ Sáu họp phụ huynh lúc 17:00")
    for c in (guardian, teacher, sub):
        wait_for(lambda c=c: msg["id"] in [m["id"] for m in c.new_messages()], message="the channel message")
    new = [j for j in s.jobs_in_redis() if j not in before]
    assert len(new) == 1, new
    queue_name, func, args = new[0]
    assert (queue_name, func) == ("high", "messaging.jobs.push_new_message")
    assert int(args[0]) == int(msg["id"]) and sorted(args[2]) == [w.g2.id]  # the offline one only
    run_jobs(s)
    wait_for(lambda: s.pushed_tokens(), message="the push to the offline guardian")
    time.sleep(0.3)
    assert s.pushed_tokens() == [s.devices[w.g2.id]]  # connected people's phones stay quiet

    # the teacher leaves: the guardian's next 1:1 message makes one job, for the teacher only
    s.disconnect(teacher, w.teacher)
    before = s.jobs_in_redis()
    msg = s.send(w.g1, conv, "Cháu đã đỡ sốt rồi ạ")
    new = [j for j in s.jobs_in_redis() if j not in before]
    assert [(q, f, int(a[0]), list(a[2])) for q, f, a in new] == [
        ("high", "messaging.jobs.push_new_message", int(msg["id"]), [w.teacher.id])]
    run_jobs(s)
    wait_for(lambda: len(s.pushed_tokens()) == 2, message="the push to the teacher")
    assert s.pushed_tokens()[1] == s.devices[w.teacher.id]
    assert s.devices[w.g1.id] not in s.pushed_tokens() and s.devices[w.subject_teacher.id] not in s.pushed_tokens()


def test_presence_asked_again_when_it_could_not_ride_on_the_publish(setup, redis_url, monkeypatch):
    """Presence rides on the PUBLISH's round trip as an EVALSHA; a Redis without that script (restarted,
    SCRIPT FLUSH: here a SHA it never saw, rather than flushing a shared server's scripts) answers it
    with an error: the message is still published once, and presence is asked on its own, so the push
    job is still for the offline recipient only."""
    s, w = setup, setup.world
    conv = s.http.post(f"{API}/conversations", headers=s.h(w.g1),
                       json={"kind": "direct", "student_id": str(w.s1.id), "participant_ids": [str(w.teacher.id)]}).json["id"]
    guardian, teacher = s.connect(w.g1), s.connect(w.teacher)
    before = s.jobs_in_redis()
    with ChannelTap(redis_url, s.channel) as t:
        time.sleep(0.2)
        t.drain()
        monkeypatch.setattr(presence, "_ONLINE_SHA", "0" * 40)
        first = s.send(w.g1, conv, "Cô ơi")  # both connected: no job
        for c in (guardian, teacher):
            wait_for(lambda c=c: [m["seq"] for m in c.new_messages()] == [1], message="the first message")
        assert s.jobs_in_redis() == before
        s.disconnect(teacher, w.teacher)
        second = s.send(w.g1, conv, "Cô ơi, cháu ốm ạ")  # the teacher is away: one job, for the teacher only
        new = [j for j in s.jobs_in_redis() if j not in before]
        assert [(f, int(a[0]), list(a[2])) for _q, f, a in new] == [
            ("messaging.jobs.push_new_message", int(second["id"]), [w.teacher.id])]
        wait_for(lambda: [m["seq"] for m in guardian.new_messages()] == [1, 2], message="the second message")
        time.sleep(0.3)
        published = [m for m in t.drain() if m.get("event") == "message:new"]
    assert [m["data"][0]["message"]["id"] for m in published] == [first["id"], second["id"]]  # once each


class ChannelTap:
    """A plain Redis subscriber on the Socket.IO channel: every PUBLISH to it,
    decoded as python-socketio's pub/sub manager wrote it."""

    def __init__(self, redis_url: str, channel: str):
        self.items: queue.Queue = queue.Queue()
        self.pubsub = redis_lib.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(**{channel: lambda m: self.items.put(self.decode(m["data"]))})
        self.thread = self.pubsub.run_in_thread(sleep_time=0.01, daemon=True)

    @staticmethod
    def decode(data: bytes) -> dict:  # python-socketio writes JSON (pickle in older releases)
        return json.loads(data) if data[:1] == b"{" else pickle.loads(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.thread.stop()
        self.thread.join(5)
        self.pubsub.close()

    def drain(self) -> list[dict]:
        out = []
        while True:
            try:
                out.append(self.items.get_nowait())
            except queue.Empty:
                return out


def test_one_publish_per_message_whatever_the_members(setup, redis_url):
    s, w = setup, setup.world
    for _ in range(8):  # class 3A: 2 teachers and 10 guardians
        roster.link_guardian(w.make.student(w.klass).id, w.user("Phụ huynh").id, "father")
    channel = s.http.post(f"{API}/conversations", headers=s.h(w.teacher),
                          json={"kind": "class", "class_id": str(w.klass.id)}).json["id"]
    members = s.http.get(f"{API}/conversations/{channel}", headers=s.h(w.teacher)).json["participants"]
    member_ids = sorted(int(p["id"] if isinstance(p, dict) else p) for p in members)
    assert len(member_ids) == 12
    clients = {uid: s.connect(User.get_by_id(uid)) for uid in member_ids}
    teacher = clients[w.teacher.id]

    with ChannelTap(redis_url, s.channel) as t:
        time.sleep(0.2)  # (subscribed: SUBSCRIBE went out with the first command)
        t.drain()
        msg = s.send(w.teacher, channel, "Kính gửi các phụ huynh lớp 3A")  # over HTTP
        for c in clients.values():
            wait_for(lambda c=c: msg["id"] in [m["id"] for m in c.new_messages()], message="delivered to every member")
        time.sleep(0.3)
        published = t.drain()
        ack = teacher.sio.call("message:send", {"conversation_id": channel, "client_id": cid(), "body": "Cảm ơn"},
                               timeout=10)  # over the socket
        for c in clients.values():
            wait_for(lambda c=c: ack["message"]["id"] in [m["id"] for m in c.new_messages()], message="delivered")
        time.sleep(0.3)
        published_socket = t.drain()

    for what in (published, published_socket):
        assert len(what) == 1, [(p.get("method"), p.get("event"), p.get("room")) for p in what]
        [p] = what
        assert (p["method"], p["event"]) == ("emit", "message:new")
        assert sorted(p["room"]) == sorted(f"user:{u}" for u in member_ids)
    for c in clients.values():  # and each member's socket got each message once
        assert [m["seq"] for m in c.new_messages()] == [1, 2]


# --- what runs while the conversation's ordering lock is held ---------------------------------------
class SendTrace:
    """The SQL statements and Redis commands this thread sends, in order, with the ordering lock's
    taking and release: the advisory lock's statements on PostgreSQL, ``sending._process_lock`` on
    SQLite. Everything still runs for real; the wrappers only write down what passes."""

    def __init__(self, monkeypatch):
        from messaging.logic import sending
        from service import db as dbmod
        from service import prepared

        self.events: list[tuple[str, str]] = []
        me = threading.get_ident()

        def note(kind, what):
            if threading.get_ident() == me:
                self.events.append((kind, what))

        database = dbmod.db.obj
        run_sql = database.execute_sql

        def execute_sql(sql, params=None):
            text = prepared.source_of(sql)  # EXECUTE of a prepared statement: its text
            word = text.lstrip(" (").split(None, 1)[0].upper()
            if "pg_advisory_lock(" in text:
                note("lock", "pg_advisory_lock")
            if word in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
                note("sql", text)
            result = run_sql(sql, params)
            if "pg_advisory_unlock(" in text:
                note("unlock", "pg_advisory_unlock")
            return result

        monkeypatch.setattr(database, "execute_sql", execute_sql)
        command = redis_lib.Redis.execute_command

        def execute_command(client, *args, **options):
            note("redis", str(args[0]).upper())
            return command(client, *args, **options)

        pipeline = redis_lib.client.Pipeline.execute

        def execute_pipeline(pipe, *args, **kwargs):
            note("redis", "pipeline " + " ".join(str(c[0][0]).upper() for c in pipe.command_stack))
            return pipeline(pipe, *args, **kwargs)

        monkeypatch.setattr(redis_lib.Redis, "execute_command", execute_command)
        monkeypatch.setattr(redis_lib.client.Pipeline, "execute", execute_pipeline)
        process_lock = sending._process_lock

        @contextlib.contextmanager
        def traced_lock(conversation_id):
            with process_lock(conversation_id):
                note("lock", "process lock")
                yield
                note("unlock", "process lock")

        monkeypatch.setattr(sending, "_process_lock", traced_lock)

    def index(self, kind: str, contains: str = "") -> list[int]:
        return [i for i, (k, what) in enumerate(self.events) if k == kind and contains in what]


def test_nothing_avoidable_runs_while_the_ordering_lock_is_held(setup, monkeypatch):
    s, w = setup, setup.world
    conv = s.http.post(f"{API}/conversations", headers=s.h(w.g1),
                       json={"kind": "direct", "student_id": str(w.s1.id), "participant_ids": [str(w.teacher.id)]}).json["id"]
    s.connect(w.g1)  # the teacher has no socket: the send decides on a push job
    s.send(w.g1, conv, "khởi động")  # (first-use set-up, e.g. the publisher's connection, out of the way)
    trace = SendTrace(monkeypatch)
    asked_hours = []
    real_outside_hours = sending.outside_hours
    monkeypatch.setattr(sending, "outside_hours", lambda *a: asked_hours.append(a) or real_outside_hours(*a))
    msg = s.send(w.g1, conv, "Cô ơi, chiều nay cháu về sớm ạ")
    monkeypatch.undo()
    events = trace.events
    [lock], [unlock] = trace.index("lock"), trace.index("unlock")
    held = events[lock + 1:unlock]
    # held: the seq and the insert, and the PUBLISH, whose round trip carries presence (who of the
    # recipients is connected: one script call Redis runs after the PUBLISH). (PostgreSQL: the lock
    # is taken by the insert statement and released by the next one, which then advances the
    # sender's read mark.)
    assert [what for kind, what in held if kind == "redis"] == ["pipeline PUBLISH EVALSHA"], events
    held_sql = [what for kind, what in held if kind == "sql"]
    if "pg_advisory_lock(" in events[lock + 1][1]:
        assert len(held_sql) == 2 and "pg_advisory_unlock(" in held_sql[1], events
    else:
        assert [q.split(None, 1)[0] for q in held_sql] == ["UPDATE", "INSERT"], events
    # before: the audience and the rate limit (one Redis round trip); after: the sender's read mark
    # (SQLite), office hours, then the push job for the teacher who is away: no Redis round trip of
    # its own for presence (two per message in all, then the job's)
    before, after = events[:lock], events[unlock + 1:]
    assert [what for kind, what in before if kind == "redis"] == ["EVALSHA"], events
    after_redis = [what for kind, what in after if kind == "redis"]
    assert after_redis[0].startswith("pipeline") and "EVALSHA" not in after_redis[0], events
    # the teacher keeps no office hours (the membership read, before the lock, says so): not read after
    assert asked_hours == [], asked_hours
    assert [(q, f, int(a[0])) for q, f, a in s.jobs_in_redis() if int(a[0]) == int(msg["id"])] == [
        ("high", "messaging.jobs.push_new_message", int(msg["id"]))]
