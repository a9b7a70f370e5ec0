"""Sends of one web process stored together (``messaging.logic.batch``, PostgreSQL): seqs, order,
resends, failures, and the statements a batch costs."""
from __future__ import annotations

import pytest

from messaging.logic import batch, conversations, sending
from messaging.logic.clock import now
from messaging.models import Conversation, Message, ReadMark
from service.db import connection, is_postgres
from service.prepared import source_of
from service.realtime import socketio
from tests.support.queries import count_queries


def _item(conv, user, client_id, body="tin"):
    members = sending.audience_of(conv)[0]
    return batch.Send(conv.id, user.id, client_id, body, now(), members)


@pytest.fixture
def pg(app):
    with app.app_context():
        if not is_postgres():
            pytest.skip("batches are PostgreSQL's (SQLite sends one at a time under its write lock)")
    return app


def test_a_batch_stores_in_arrival_order_and_publishes_in_seq_order(pg, world):
    with pg.app_context(), connection():
        channel = conversations.class_conversation(world.teacher.id, world.klass.id)
        direct, _ = conversations.open_direct(world.g1.id, world.s1.id, [world.teacher.id])
        listener = socketio.test_client(pg, auth={"token": world.make.token(world.teacher)})
        items = [_item(channel, world.g1, "a"), _item(direct, world.g1, "b"), _item(channel, world.g2, "c"),
                 _item(channel, world.teacher, "d"), _item(direct, world.teacher, "e")]
        with count_queries() as q:
            batch.run(items, sending._send_alone)
        assert [i.error for i in items] == [None] * 5
        # five messages in two conversations: one insert, one release (no send went alone)
        assert [source_of(s).split("(")[0] for s in q.statements] == ["WITH input AS ", "WITH unlock AS "], str(q)
        assert [(i.outcome[0].conversation_id, i.outcome[0].seq) for i in items] == [
            (channel.id, 1), (direct.id, 1), (channel.id, 2), (channel.id, 3), (direct.id, 2)]
        stored = {m.client_id: (m.conversation_id, m.seq, m.sender_id, m.body)
                  for m in Message.select().where(Message.client_id.in_(["a", "b", "c", "d", "e"]))}
        assert stored["c"] == (channel.id, 2, world.g2.id, "tin")
        assert Conversation.get_by_id(channel.id).last_seq == 3 and Conversation.get_by_id(direct.id).last_seq == 2
        marks = {(r.conversation_id, r.user_id): r.up_to_seq for r in ReadMark.select()}
        assert marks[(channel.id, world.g1.id)] == 1 and marks[(channel.id, world.teacher.id)] == 3
        assert marks[(direct.id, world.teacher.id)] == 2
        got = [(e["args"][0]["message"]["conversation_id"], e["args"][0]["message"]["seq"])
               for e in listener.get_received() if e["name"] == "message:new"]
        assert [s for c, s in got if c == str(channel.id)] == [1, 2, 3]
        assert [s for c, s in got if c == str(direct.id)] == [1, 2]
        listener.disconnect()


def _advisory_locks_held() -> int:
    from service.db import db
    return db.execute_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                          ).fetchone()[0]


def test_resends_in_a_batch_are_answered_with_the_stored_message(pg, world):
    with pg.app_context(), connection():
        direct, _ = conversations.open_direct(world.g1.id, world.s1.id, [world.teacher.id])
        before, created = sending.send_message(world.g1.id, direct, "sent-before", "lần đầu")
        assert created
        items = [_item(direct, world.g1, "sent-before", "lần hai"), _item(direct, world.teacher, "new"),
                 _item(direct, world.g1, "twice"), _item(direct, world.g1, "twice", "lại")]
        with count_queries() as q:
            batch.run(items, sending._send_alone)
        assert [i.error for i in items] == [None] * 4
        resend, new, first, again = (i.outcome for i in items)
        assert resend[0] is None and resend[2].id == before["id"] and resend[2].body == "lần đầu"
        assert new[0].seq == 2 and first[0].seq == 3
        assert again[0] is None and again[2].id == first[0].id  # the same client_id twice: one message
        assert Message.select().where(Message.conversation == direct.id).count() == 3
        assert Conversation.get_by_id(direct.id).last_seq == 3  # no gap: resends took no seq
        assert _advisory_locks_held() == 0
        assert len(q.statements) <= 6, str(q)


def test_a_batch_that_cannot_be_stored_goes_one_by_one(pg, world):
    """A send PostgreSQL refuses (a NUL in the text, which ``check_body`` stops before any send
    gets here) fails the batch's one statement: nothing of it is stored, every other send is
    stored alone, and the refused one gets its own error."""
    with pg.app_context(), connection():
        direct, _ = conversations.open_direct(world.g1.id, world.s1.id, [world.teacher.id])
        listener = socketio.test_client(pg, auth={"token": world.make.token(world.teacher)})
        items = [_item(direct, world.g1, "ok-1"), _item(direct, world.g1, "bad", "a\x00b"),
                 _item(direct, world.teacher, "ok-2")]
        batch.run(items, sending._send_alone)
        assert items[0].error is None and items[2].error is None and items[1].error is not None
        assert [items[0].outcome[0].seq, items[2].outcome[0].seq] == [1, 2]
        assert [m.client_id for m in Message.select().where(Message.conversation == direct.id).order_by(Message.seq)
                ] == ["ok-1", "ok-2"]
        assert _advisory_locks_held() == 0
        got = [e["args"][0]["message"]["seq"] for e in listener.get_received() if e["name"] == "message:new"]
        assert got == [1, 2]
        listener.disconnect()


def test_a_gone_conversation_is_not_found_and_the_rest_is_stored(pg, world):
    with pg.app_context(), connection():
        direct, _ = conversations.open_direct(world.g1.id, world.s1.id, [world.teacher.id])
        ghost = Conversation(id=direct.id + 10_000, kind="direct")
        items = [_item(direct, world.g1, "here"), batch.Send(ghost.id, world.g1.id, "nowhere", "x", now(), [])]
        batch.run(items, sending._send_alone)
        assert items[0].error is None and items[0].outcome[0].seq == 1
        assert items[1].error is not None and items[1].error.code == "not_found"
        assert _advisory_locks_held() == 0


def test_concurrent_sends_of_one_process_go_in_batches_in_order(pg, world):
    """Threads sending at once: the gatherer runs them in batches (fewer inserts than messages),
    and every conversation still has seqs 1..N, delivered in seq order."""
    import threading

    with pg.app_context(), connection():
        channel = conversations.class_conversation(world.teacher.id, world.klass.id)
        listener = socketio.test_client(pg, auth={"token": world.make.token(world.teacher)})
    senders = [world.teacher, world.subject_teacher, world.g1, world.g2]
    start, errors = threading.Barrier(8), []

    def run(i):
        try:
            with pg.app_context(), connection():
                start.wait()
                for n in range(10):
                    sending.send(senders[i % 4].id, channel.id, f"t{i}-{n}", f"tin {i}-{n}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    with pg.app_context(), count_queries() as q:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    inserts = [s for s in q.statements if source_of(s).startswith(("WITH lock", "WITH input"))]
    assert len([s for s in inserts if source_of(s).startswith("WITH input")]) >= 1  # some went together
    assert len(inserts) < 80
    with pg.app_context(), connection():
        seqs = [m.seq for m in Message.select(Message.seq).where(Message.conversation == channel.id).order_by(Message.seq)]
        assert seqs == list(range(1, 81))
        got = [e["args"][0]["message"]["seq"] for e in listener.get_received() if e["name"] == "message:new"]
        assert got == list(range(1, 81))
        listener.disconnect()


def test_membership_reads_of_concurrent_sends_are_gathered(pg, world):
    """Many threads asking at once who is in which conversation: fewer queries than questions,
    and each gets exactly what a read of its own gives (members, teachers keeping hours, none
    for a conversation that does not exist)."""
    import threading

    from messaging import policy

    with pg.app_context(), connection():
        d1, _ = conversations.open_direct(world.g1.id, world.s1.id, [world.teacher.id])
        d2, _ = conversations.open_direct(world.g2.id, world.s2.id, [world.teacher.id])
        channel = conversations.class_conversation(world.teacher.id, world.klass.id)
        asked = [d1.id, d2.id, channel.id, d2.id + 10_000] * 6
        alone = {c: policy._read_alone(policy.Waiting(c)) for c in set(asked)}
    start, got, errors = threading.Barrier(len(asked)), {}, []

    def run(i):
        try:
            with pg.app_context(), connection():
                start.wait()
                got[i] = policy.conversation_with_direct_members(asked[i])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    with pg.app_context(), count_queries() as q:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(asked))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []

    def plain(answer):
        conv, members, keeping = answer
        return (conv.id if conv else None), members, keeping

    assert all(plain(got[i]) == plain(alone[c]) for i, c in enumerate(asked))
    assert plain(alone[d1.id])[1] and plain(alone[d2.id + 10_000]) == (None, [], set())
    assert len(q.statements) < len(asked), str(q)
