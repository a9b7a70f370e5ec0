"""Concurrent senders in one process, on SQLite and PostgreSQL: seq 1..N without gaps, one row per client_id."""
from __future__ import annotations

import threading

from messaging.logic import conversations, sending
from messaging.models import Message
from service.db import connection
from service.realtime import socketio


def _threads(app, target, count):
    errors = []
    start = threading.Barrier(count)

    def run(i):
        try:
            with app.app_context(), connection():
                start.wait()
                target(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_concurrent_senders_get_consecutive_seqs_in_order(app, world):
    conv = conversations.class_conversation(world.teacher.id, world.klass.id)
    listener = socketio.test_client(app, auth={"token": world.make.token(world.g2)})
    senders = [world.teacher, world.subject_teacher, world.g1, world.g2]
    per_sender = 15

    def send(i):
        user = senders[i % len(senders)]
        for n in range(per_sender):
            sending.send_message(user.id, conv, f"{i}-{n}", f"tin {i}-{n}")

    _threads(app, send, 8)
    total = 8 * per_sender
    seqs = [m.seq for m in Message.select(Message.seq).where(Message.conversation == conv.id).order_by(Message.seq)]
    assert seqs == list(range(1, total + 1))
    received = [e["args"][0]["message"]["seq"] for e in listener.get_received() if e["name"] == "message:new"]
    assert received == list(range(1, total + 1))  # emitted in seq order
    listener.disconnect()


def test_same_client_id_at_once_stores_one(app, world):
    conv, _ = conversations.open_direct(world.g1.id, world.s1.id, [world.teacher.id])
    results = []

    def send(_i):
        results.append(sending.send_message(world.g1.id, conv, "once", "Chỉ một lần")[0]["id"])

    _threads(app, send, 6)
    assert len(set(results)) == 1 and len(results) == 6
    assert Message.select().where(Message.conversation == conv.id).count() == 1
