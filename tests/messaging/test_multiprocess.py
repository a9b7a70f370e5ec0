"""Issue 3 acceptance, for real: two ``lienlac serve`` processes and an RQ worker sharing PostgreSQL
and Redis, real python-socketio clients, and the local FCM server for pushes.

One set of processes serves the whole module (starting them is the slow part); every test works
in conversations of its own.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time
import uuid

import pytest
import redis as redis_lib
import requests
import socketio

from messaging.models import Message
from tests.support.fcm_server import FcmTestServer
from service.accounts import logic as accounts
from service.roster import logic as roster
from service.config import Config
from service.db import connection

from ..support.servers import (REDIS_BASE_URL, SHARED_SECRET, Processes, process_env, requires_postgres, shared_app,
                               truncate_all, unique_channel, wait_for)
from .conftest import PNG, VIETNAMESE

pytestmark = [requires_postgres, pytest.mark.slow]

API = "/api/v1"


class Client:
    """A real Socket.IO client recording every event it receives, in order."""

    def __init__(self, url: str, token: str, name: str = ""):
        self.name, self.url = name, url
        self.sio = socketio.Client(reconnection=False)
        self.events: queue.Queue = queue.Queue()
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()

        @self.sio.on("*")
        def _any(event, *args):
            item = (event, args[0] if args else None)
            with self.lock:
                self.log.append(item)
            self.events.put(item)

        self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def wait_event(self, event: str, timeout: float = 15, match=None):
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                name, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.name}: no {event!r} within {timeout}s; got {seen}") from None
            if name == event and (match is None or match(data)):
                return data
            seen.append((name, data))

    def received(self, event: str, conversation_id: str | None = None) -> list:
        with self.lock:
            return [d for n, d in self.log if n == event and (
                conversation_id is None or (d.get("message", d).get("conversation_id") == conversation_id))]

    def call(self, event: str, data, timeout: float = 30):
        return self.sio.call(event, data, timeout=timeout)

    def close(self) -> threading.Thread:
        # don't wait for the WebSocket closing handshake the Werkzeug server never sends
        thread = threading.Thread(target=self.sio.disconnect, daemon=True)
        thread.start()
        return thread


class Cluster:
    def __init__(self, app, urls, fcm, tmp):
        self.app, self.urls, self.fcm, self.tmp = app, urls, fcm, tmp
        self.tokens: dict[int, str] = {}
        self.clients: list[Client] = []
        self.http = requests.Session()

    def token(self, user) -> str:
        if user.id not in self.tokens:
            with self.app.app_context(), connection():
                self.tokens[user.id] = accounts.start_session(user)["access_token"]
        return self.tokens[user.id]

    def h(self, user) -> dict:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def connect(self, user, on: int, name: str = "") -> Client:
        client = Client(self.urls[on], self.token(user), name or f"user{user.id}@{'AB'[on]}")
        self.clients.append(client)
        return client

    def get(self, user, path, on=0, **kw):
        return self.http.get(self.urls[on] + API + path, headers=self.h(user), timeout=30, **kw)

    def post(self, user, path, json=None, on=0, **kw):
        return self.http.post(self.urls[on] + API + path, json=json, headers=self.h(user), timeout=30, **kw)

    def count(self, conversation_id) -> int:
        with self.app.app_context(), connection():
            return Message.select().where(Message.conversation == int(conversation_id)).count()

    def seqs(self, conversation_id) -> list[int]:
        with self.app.app_context(), connection():
            return [m.seq for m in Message.select(Message.seq).where(
                Message.conversation == int(conversation_id)).order_by(Message.seq)]


class People:
    """Class 3A: homeroom ``teacher``, students s1 (guardians ``g1`` and ``g1b``, the one who stays
    offline) and s2 (``g2``). Class 3B: ``stranger`` (a guardian) and its teacher. Class 5C, for the
    crowd: ``crowd_teacher`` and 19 guardians, every member connected."""

    def __init__(self):
        seq = iter(range(1, 10_000))

        def user(name):
            return roster.ensure_user(f"+8498{os.getpid() % 1000:03d}{next(seq):04d}", name)

        school = roster.create_school("Trường Tiểu học Lý Thường Kiệt")

        def teacher(name):
            u = user(name)
            roster.add_staff(school.id, u.id, "teacher")
            return u

        def guardian(student, name):
            u = user(name)
            roster.link_guardian(student.id, u.id, "mother")
            return u

        self.teacher, self.other_teacher, self.crowd_teacher = teacher("Cô Lan"), teacher("Cô Hoa"), teacher("Thầy Minh")
        self.klass = roster.create_class(school.id, "3A", 3, self.teacher.id)
        self.klass_b = roster.create_class(school.id, "3B", 3, self.other_teacher.id)
        self.crowd_class = roster.create_class(school.id, "5C", 5, self.crowd_teacher.id)
        self.s1 = roster.create_student(school.id, "Nguyễn Minh An", self.klass.id)
        self.s2 = roster.create_student(school.id, "Trần Bảo Ngọc", self.klass.id)
        s3 = roster.create_student(school.id, "Lê Gia Huy", self.klass_b.id)
        self.g1, self.g1b = guardian(self.s1, "Chị Mai"), guardian(self.s1, "Anh Dũng")
        self.g2 = guardian(self.s2, "Anh Tuấn")
        self.stranger = guardian(s3, "Chị Vy")
        self.crowd = [guardian(roster.create_student(school.id, f"Học sinh {i}", self.crowd_class.id), f"Phụ huynh {i}")
                      for i in range(19)]


@pytest.fixture(scope="module")
def cluster(pg_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("messaging-mp")
    redis_url = REDIS_BASE_URL + "/" + os.environ.get("LIENLAC_TEST_REDIS_DB", "9")
    redis_lib.Redis.from_url(redis_url).flushdb()
    truncate_all(pg_url)
    channel = unique_channel()
    config = Config(database_url=pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, testing=True,
                    socketio_channel=channel, upload_dir=str(tmp / "uploads"))
    with FcmTestServer(retry_after=0) as fcm, shared_app(config) as app:
        env = process_env(pg_url, redis_url, tmp, SOCKETIO_CHANNEL=channel, FCM_ENDPOINT=fcm.url,
                          FIREBASE_PROJECT_ID=fcm.project_id, MAX_UPLOAD_BYTES=4096, PRESENCE_REFRESH_SECONDS=5,
                          MESSAGE_RATE_LIMIT="100000 per minute")
        processes = Processes(tmp)
        clients: list[Client] = []
        try:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                webs = [pool.submit(processes.web, env, name) for name in ("web-a", "web-b")]
                processes.worker(env, "--simple")
                urls = [w.result()[1] for w in webs]
            c = Cluster(app, urls, fcm, tmp)
            clients = c.clients
            c.people = People()
            yield c
        finally:
            for client in clients:  # (daemon threads: no need to wait for the closing handshakes)
                client.close()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:  # stop them all at once
                list(pool.map(lambda proc: proc.kill(timeout=2), processes.started))
            processes.stop_all()


# --- 1. both ways across processes, receipts, typing, a push for the guardian who is away ---------
def test_guardian_on_a_and_teacher_on_b(cluster):
    p = cluster.people
    guardian, teacher = cluster.connect(p.g1, on=0, name="g1@A"), cluster.connect(p.teacher, on=1, name="teacher@B")
    stranger = cluster.connect(p.stranger, on=1, name="stranger@B")
    # the away guardian has a phone registered (through the notifications API) and no socket
    token = f"fcm-{uuid.uuid4().hex}"
    assert cluster.post(p.g1b, "/devices", {"token": token, "platform": "android"}, on=1).status_code in (200, 201)

    # opened on A after both are connected: the teacher's socket on B joins the room too
    r = cluster.post(p.g1, "/conversations", {"kind": "direct", "student_id": str(p.s1.id),
                                               "participant_ids": [str(p.teacher.id), str(p.g1b.id)]}, on=0)
    assert r.status_code == 201, r.text
    conv = r.json()["id"]

    # guardian (socket on A) → teacher (B)
    ack = guardian.call("message:send", {"conversation_id": conv, "client_id": "g-1", "body": VIETNAMESE})
    assert ack["message"]["seq"] == 1 and ack["message"]["body"] == VIETNAMESE
    got = teacher.wait_event("message:new")["message"]
    assert (got["body"], got["sender_id"], got["seq"]) == (VIETNAMESE, str(p.g1.id), 1)

    # teacher (HTTP on B) → guardian (A)
    r = cluster.post(p.teacher, f"/conversations/{conv}/messages",
                     {"client_id": "t-1", "body": "Cô đã nhận, chúc cháu mau khỏe 💐"}, on=1)
    assert r.status_code == 201
    got = guardian.wait_event("message:new", match=lambda d: d["message"]["seq"] == 2)["message"]
    assert got["body"] == "Cô đã nhận, chúc cháu mau khỏe 💐" and got["sender_id"] == str(p.teacher.id)

    # typing both ways, relayed across processes, never echoed to the typist
    teacher.sio.emit("typing", {"conversation_id": conv})
    assert guardian.wait_event("typing") == {"conversation_id": conv, "user_id": str(p.teacher.id)}
    guardian.sio.emit("typing", {"conversation_id": conv})
    assert teacher.wait_event("typing") == {"conversation_id": conv, "user_id": str(p.g1.id)}

    # read receipts both ways
    assert guardian.call("message:read", {"conversation_id": conv, "up_to_seq": 2}) == {"up_to_seq": 2}
    assert teacher.wait_event("message:read") == {"conversation_id": conv, "user_id": str(p.g1.id), "up_to_seq": 2}
    # (the teacher read up to 2 by answering; the other parent reads on the web, over HTTP)
    assert cluster.post(p.g1b, f"/conversations/{conv}/read", {"up_to_seq": 1}, on=1).status_code == 204
    for c in (guardian, teacher):
        assert c.wait_event("message:read", match=lambda d: d["user_id"] == str(p.g1b.id))["up_to_seq"] == 1
    receipts = cluster.get(p.g1, f"/conversations/{conv}/receipts", on=1).json()
    assert {r["user_id"]: r["up_to_seq"] for r in receipts["reads"]} == {
        str(p.g1.id): 2, str(p.teacher.id): 2, str(p.g1b.id): 1}
    assert [(i["seq"], i["seen_by"], i["of"]) for i in receipts["items"]] == [(2, 1, 2), (1, 2, 2)]
    assert [e for e in guardian.received("typing") if e["user_id"] == str(p.g1.id)] == []

    # the guardian who is away got push requests, delivered by the worker to (the local) FCM
    pushes = wait_for(lambda: [m for m in cluster.fcm.accepted() if m["token"] == token and
                               m["message"].get("data", {}).get("id") == conv] or None,
                      timeout=30, message="a push to the away guardian")
    assert pushes[0]["message"]["data"]["type"] == "conversation"
    assert not [m for m in cluster.fcm.accepted() if m["token"] != token]  # connected people get no push

    # the stranger heard none of it
    assert stranger.log == []


# --- 2. twenty clients, fifty messages each, one class channel, two processes ---------------------
# python-socketio's threaded client runs each incoming event in a thread of its own (their order is
# lost before a handler sees them); its asyncio client handles them in arrival order, as the apps do.
async def _crowd(urls: list[str], tokens: list[str], channel: str, away: int, fetch_missed) -> dict:
    received: dict[int, list[dict]] = {i: [] for i in range(len(tokens))}
    clients = []
    for i, token in enumerate(tokens):
        client = socketio.AsyncClient(reconnection=False)
        client.on("message:new", handler=lambda data, i=i: received[i].append(data["message"]))
        await client.connect(urls[i % 2], auth={"token": token}, transports=["websocket"], wait_timeout=10)
        clients.append(client)
    errors = []

    async def send(i, client, prefix, count):
        for n in range(count):
            ack = await client.call("message:send", {"conversation_id": channel, "client_id": f"{prefix}{i}-{n}",
                                                     "body": f"{prefix}{i}:{n}"}, timeout=60)
            if "message" not in ack:
                errors.append(ack)

    started = time.monotonic()
    await asyncio.gather(*(send(i, c, "", 50) for i, c in enumerate(clients)))
    sent = time.monotonic() - started
    deadline = time.monotonic() + 60
    while any(len(r) < 1000 for r in received.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    delivered = time.monotonic() - started

    # one member goes away; 200 more arrive; back, it asks for what it missed with after=
    await clients[away].disconnect()
    await asyncio.gather(*(send(i, clients[i], "late-", 50) for i in range(4)))
    missed = await asyncio.to_thread(fetch_missed, 1000)
    await asyncio.gather(*(asyncio.wait_for(c.disconnect(), 5) for i, c in enumerate(clients) if i != away),
                         return_exceptions=True)
    return {"received": received, "errors": errors, "sent": sent, "delivered": delivered, "missed": missed}


def test_twenty_clients_fifty_messages_each(cluster):
    p = cluster.people
    channel = cluster.post(p.crowd_teacher, "/conversations", {"kind": "class", "class_id": str(p.crowd_class.id)}).json()["id"]
    members = [p.crowd_teacher] + p.crowd  # 20 members, all connected, all sending
    away = 5

    def fetch_missed(last_seen):
        caught, cursor = [], None
        while True:
            query = {"after": last_seen, "limit": 75} if cursor is None else {"cursor": cursor, "limit": 75}
            page = cluster.get(members[away], f"/conversations/{channel}/messages", on=1, params=query).json()
            caught += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return caught

    out = asyncio.run(_crowd(cluster.urls, [cluster.token(u) for u in members], channel, away, fetch_missed))
    assert out["errors"] == []
    assert cluster.seqs(channel) == list(range(1, 1201))  # no gap, no duplicate
    for i, messages in out["received"].items():
        first = [m["seq"] for m in messages][:1000]
        assert first == list(range(1, 1001)), f"member {i}"  # all of them, once, in seq order
    bodies = {m["body"] for m in out["received"][0][:1000]}
    assert bodies == {f"{i}:{n}" for i in range(20) for n in range(50)}
    # the one who was away gets exactly the 200 it missed (three pages), the others heard them live
    assert [m["seq"] for m in out["missed"]] == list(range(1001, 1201))
    assert sorted(m["body"] for m in out["missed"]) == sorted(f"late-{i}:{n}" for i in range(4) for n in range(50))
    assert [m["seq"] for m in out["received"][0]] == list(range(1, 1201))
    print(f"\n1,000 messages, 20 senders over 2 processes: stored in {out['sent']:.1f} s, "
          f"all delivered to all 20 in {out['delivered']:.1f} s")


# --- 3. the same client_id three times at once, HTTP and socket mixed ----------------------------
def test_same_client_id_three_times_at_once(cluster):
    p = cluster.people
    conv = cluster.post(p.g2, "/conversations", {"kind": "direct", "student_id": str(p.s2.id),
                                                  "participant_ids": [str(p.teacher.id)]}).json()["id"]
    sock = cluster.connect(p.g2, on=1, name="g2@B")
    listener = cluster.connect(p.teacher, on=0, name="teacher@A")
    body = {"client_id": "xin-nghi-thu-6", "body": "Xin cho cháu Ngọc nghỉ học thứ Sáu ạ."}
    barrier = threading.Barrier(3)

    def via_http(on):
        barrier.wait()
        r = cluster.post(p.g2, f"/conversations/{conv}/messages", body, on=on)
        return r.status_code, r.json()["id"]

    def via_socket():
        barrier.wait()
        return "ack", sock.call("message:send", dict(body, conversation_id=conv))["message"]["id"]

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = [f.result() for f in (pool.submit(via_http, 0), pool.submit(via_http, 1), pool.submit(via_socket))]
    assert len({mid for _, mid in results}) == 1, results
    statuses = sorted(str(s) for s, _ in results)
    assert statuses in (["200", "200", "ack"], ["200", "201", "ack"]), results  # the socket may have won
    assert cluster.count(conv) == 1
    listener.wait_event("message:new")
    time.sleep(0.5)
    assert len(listener.received("message:new", conv)) == 1  # delivered once


# --- 4. outsiders, announcement-only, bad input ----------------------------------------------------
def test_outsiders_announcements_and_bad_input(cluster):
    p = cluster.people
    conv = cluster.post(p.g1, "/conversations", {"kind": "direct", "student_id": str(p.s1.id),
                                                  "participant_ids": [str(p.teacher.id)]}, on=1).json()["id"]
    channel = cluster.post(p.teacher, "/conversations", {"kind": "class", "class_id": str(p.klass.id)}).json()["id"]
    member = cluster.connect(p.g1, on=0, name="g1@A")
    outsider = cluster.connect(p.stranger, on=1, name="stranger@B")
    # a guardian not in them: 404 on every path, on either process
    for cid_ in (conv, channel):
        for on in (0, 1):
            assert cluster.get(p.stranger, f"/conversations/{cid_}", on=on).status_code == 404
            assert cluster.get(p.stranger, f"/conversations/{cid_}/messages", on=on).status_code == 404
            assert cluster.post(p.stranger, f"/conversations/{cid_}/messages", {"client_id": "x", "body": "?"},
                                on=on).status_code == 404
            assert cluster.post(p.stranger, f"/conversations/{cid_}/read", {"up_to_seq": 1}, on=on).status_code == 404
        assert outsider.call("message:send", {"conversation_id": cid_, "client_id": "y", "body": "vào"})["error"]["code"] == "not_found"
        assert outsider.call("message:read", {"conversation_id": cid_, "up_to_seq": 1})["error"]["code"] == "not_found"
        outsider.sio.emit("typing", {"conversation_id": cid_})
    r = cluster.post(p.stranger, "/conversations", {"kind": "direct", "student_id": str(p.s1.id),
                                                     "participant_ids": [str(p.teacher.id)]})
    assert r.status_code == 404  # cannot join by opening one about someone else's child
    # the members' traffic never reaches the outsider
    cluster.post(p.teacher, f"/conversations/{channel}/messages", {"client_id": "ann-0", "body": "Chào các phụ huynh"}, on=1)
    member.wait_event("message:new", match=lambda d: d["message"]["conversation_id"] == channel)
    member.sio.emit("typing", {"conversation_id": channel})

    # announcement-only: the guardian's post is refused with 403, nothing stored
    r = requests.patch(cluster.urls[1] + API + f"/conversations/{channel}", json={"announcement_only": True},
                       headers=cluster.h(p.teacher), timeout=30)
    assert r.status_code == 200 and r.json()["announcement_only"] is True
    assert member.wait_event("conversation:updated") == {"conversation_id": channel, "announcement_only": True}
    r = cluster.post(p.g1, f"/conversations/{channel}/messages", {"client_id": "q", "body": "Cho em hỏi"}, on=0)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert member.call("message:send", {"conversation_id": channel, "client_id": "q2", "body": "?"})["error"]["code"] == "forbidden"

    # participants: names and roles, never a phone number
    listing = cluster.get(p.g1, "/conversations", on=1).text
    assert "phone" not in listing and p.g2.phone not in listing and p.teacher.phone not in listing

    # oversized or empty bodies, bad attachments: 422 and nothing stored
    before = cluster.count(conv)
    for bad in ("", "  ", "ơ" * 4001):
        r = cluster.post(p.g1, f"/conversations/{conv}/messages", {"client_id": uuid.uuid4().hex, "body": bad}, on=1)
        assert r.status_code == 422, r.text
    files = {"file": ("anh.png", b"MZ\x90\x00 not an image", "image/png")}
    r = cluster.http.post(cluster.urls[0] + API + "/attachments", files=files, headers=cluster.h(p.g1), timeout=30)
    assert r.status_code == 422
    big = {"file": ("anh.png", PNG + b"\x00" * 5000, "image/png")}  # the processes allow 4,096 bytes
    r = cluster.http.post(cluster.urls[1] + API + "/attachments", files=big, headers=cluster.h(p.g1), timeout=30)
    assert r.status_code == 422
    theirs = cluster.http.post(cluster.urls[1] + API + "/attachments", files={"file": ("a.png", PNG, "image/png")},
                               headers=cluster.h(p.teacher), timeout=30).json()["id"]
    r = cluster.post(p.g1, f"/conversations/{conv}/messages",
                     {"client_id": uuid.uuid4().hex, "body": "ảnh", "attachments": [theirs]}, on=0)
    assert r.status_code == 422
    assert cluster.count(conv) == before == 0 and cluster.count(channel) == 1

    time.sleep(0.5)  # anything misrouted would have arrived by now
    assert outsider.log == []
    assert [d for d in member.received("typing") if d["user_id"] == str(p.stranger.id)] == []


# --- 5. a roster change takes an already-open socket out of the conversations (issue 7) ----------
def test_roster_change_silences_an_open_socket_on_another_process(cluster):
    p = cluster.people
    base = f"+8497{os.getpid() % 1000:03d}"
    with cluster.app.app_context(), connection():
        student = roster.create_student(p.klass.school_id, "Phạm Thu Hà", p.klass.id)
        leaving = roster.ensure_user(base + "0001", "Chị Hà")
        roster.link_guardian(student.id, leaving.id, "mother")
        admin = roster.ensure_user(base + "0002", "Hiệu trưởng")
        roster.add_staff(p.klass.school_id, admin.id, "admin")
    channel = cluster.post(p.teacher, "/conversations", {"kind": "class", "class_id": str(p.klass.id)}).json()["id"]
    conv = cluster.post(leaving, "/conversations", {"kind": "direct", "student_id": str(student.id),
                                                     "participant_ids": [str(p.teacher.id)]}, on=1).json()["id"]
    gone = cluster.connect(leaving, on=1, name="leaving@B")
    witness = cluster.connect(p.g2, on=1, name="g2@B")  # stays in the class channel
    teacher = cluster.connect(p.teacher, on=0, name="teacher@A")
    assert cluster.post(p.teacher, f"/conversations/{channel}/messages", {"client_id": uuid.uuid4().hex,
                                                                           "body": "trước"}).status_code == 201
    gone.wait_event("message:new", match=lambda d: d["message"]["conversation_id"] == channel)

    # the admin unlinks the guardian on A; the guardian's socket stays open on B
    r = requests.delete(f"{cluster.urls[0]}{API}/students/{student.id}/guardians/{leaving.id}",
                        headers=cluster.h(admin), timeout=30)
    assert r.status_code == 204
    assert cluster.post(p.teacher, f"/conversations/{channel}/messages", {"client_id": uuid.uuid4().hex,
                                                                           "body": "sau"}).status_code == 201
    assert cluster.post(p.teacher, f"/conversations/{conv}/messages", {"client_id": uuid.uuid4().hex,
                                                                        "body": "riêng"}).status_code == 201
    witness.wait_event("message:new", match=lambda d: d["message"]["body"] == "sau")
    teacher.wait_event("message:new", match=lambda d: d["message"]["body"] == "riêng")
    ack = gone.call("message:send", {"conversation_id": conv, "client_id": uuid.uuid4().hex, "body": "?"})
    assert ack["error"]["code"] == "not_found"
    ack = gone.call("message:send", {"conversation_id": channel, "client_id": uuid.uuid4().hex, "body": "?"})
    assert ack["error"]["code"] == "not_found"
    gone.sio.emit("typing", {"conversation_id": channel})
    witness.sio.emit("typing", {"conversation_id": channel})  # a guardian's typing: teachers only
    teacher.wait_event("typing", match=lambda d: d["user_id"] == str(p.g2.id))
    time.sleep(0.5)  # anything misrouted would have arrived by now
    assert [d["message"]["body"] for d in gone.received("message:new")] == ["trước"]
    assert gone.received("typing") == [] and witness.received("typing") == []
    assert [d for d in teacher.received("typing") if d["user_id"] == str(leaving.id)] == []


# --- 6. one 1:1 conversation, both people sending from both processes at once (issue 13) -----------
async def _duet(urls: list[str], people: list[tuple[str, str]], conv: str, per_socket: int, resend_over_http) -> dict:
    """Each person has a socket on each process (4 sockets); all four send ``per_socket`` messages at
    once. Every third message is sent again with the same client_id right after its acknowledgement,
    alternately over the same socket and over HTTP on the other process."""
    received: dict[int, list[dict]] = {}
    clients = []
    for i, (token, _name) in enumerate(p for p in people for _ in (0, 1)):
        client = socketio.AsyncClient(reconnection=False)
        received[i] = []
        client.on("message:new", handler=lambda data, i=i: received[i].append(data["message"]))
        await client.connect(urls[i % 2], auth={"token": token}, transports=["websocket"], wait_timeout=10)
        clients.append(client)
    acks: dict[str, list[dict]] = {}
    errors = []

    async def send(i, client):
        for n in range(per_socket):
            client_id = f"duet-{i}-{n}-{uuid.uuid4().hex[:6]}"
            payload = {"conversation_id": conv, "client_id": client_id, "body": f"{i}:{n}"}
            answers = [await client.call("message:send", payload, timeout=60)]
            if n % 3 == 0:  # a retry: the client never saw the ack (or thinks so) and sends again
                if n % 2 == 0:
                    answers.append(await client.call("message:send", payload, timeout=60))
                else:
                    answers.append(await asyncio.to_thread(resend_over_http, i // 2, 1 - i % 2, client_id, f"{i}:{n}"))
            for a in answers:
                if "message" not in a:
                    errors.append(a)
            acks[client_id] = [a.get("message") for a in answers]

    await asyncio.gather(*(send(i, c) for i, c in enumerate(clients)))
    total = len(clients) * per_socket
    deadline = time.monotonic() + 30
    while any(len(r) < total for r in received.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a duplicate delivery would have arrived by now
    await asyncio.gather(*(asyncio.wait_for(c.disconnect(), 5) for c in clients), return_exceptions=True)
    return {"received": received, "acks": acks, "errors": errors}


def test_one_to_one_from_both_processes_at_once_one_order_everywhere(cluster):
    p = cluster.people
    with cluster.app.app_context(), connection():  # a family of its own: a fresh conversation
        student = roster.create_student(p.klass.school_id, "Đỗ Quang Vinh", p.klass.id)
        guardian = roster.ensure_user(f"+8496{os.getpid() % 1000:03d}0001", "Chị Thảo")
        roster.link_guardian(student.id, guardian.id, "mother")
    r = cluster.post(guardian, "/conversations", {"kind": "direct", "student_id": str(student.id),
                                                   "participant_ids": [str(p.teacher.id)]}, on=1)
    assert r.status_code == 201, r.text
    conv = r.json()["id"]
    users = [guardian, p.teacher]

    def resend_over_http(person, on, client_id, body):
        r = cluster.post(users[person], f"/conversations/{conv}/messages", {"client_id": client_id, "body": body}, on=on)
        assert r.status_code == 200, r.text  # the same client_id again: 200 with the stored message
        return {"message": r.json()}

    per_socket = 30
    out = asyncio.run(_duet(cluster.urls, [(cluster.token(u), str(u.id)) for u in users], conv, per_socket,
                            resend_over_http))
    total = 4 * per_socket
    assert out["errors"] == []
    # stored: seq 1..N, no gap, no duplicate, one row per client_id
    assert cluster.seqs(conv) == list(range(1, total + 1))
    assert len(out["acks"]) == total
    for client_id, answers in out["acks"].items():  # a retry answers with the same message
        assert len({(a["id"], a["seq"], a["client_id"]) for a in answers}) == 1, answers
    by_seq = {answers[0]["seq"]: answers[0] for answers in out["acks"].values()}
    assert sorted(by_seq) == list(range(1, total + 1))
    # delivered: every socket (both people, both processes) got every message once, in seq order
    expected = [by_seq[s]["id"] for s in range(1, total + 1)]
    for i, messages in out["received"].items():
        assert [m["seq"] for m in messages] == list(range(1, total + 1)), f"socket {i}"
        assert [m["id"] for m in messages] == expected, f"socket {i}"
    # and history over HTTP, on either process, tells the same order
    for on in (0, 1):
        caught, cursor = [], None
        while True:
            params = {"after": 0, "limit": 200} if cursor is None else {"cursor": cursor, "limit": 200}
            page = cluster.get(guardian, f"/conversations/{conv}/messages", on=on, params=params).json()
            caught += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [m["id"] for m in caught] == expected
