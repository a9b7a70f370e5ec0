"""Sending a message: stored in seq order, idempotent by ``client_id``, delivered, then pushed.

The send path (``send``: HTTP and sockets)
-------------------------------------------
Outside any lock, in this order: the conversation and its members now (one query for a direct
conversation, ``policy.conversation_with_direct_members``, which also says which of its teachers
keep office hours; two for a class channel, the second ``_class_audience``; every read of the path
is prepared); the caller must be among them, else 404: the same roster relations as
``policy.is_member``, so authorization and delivery cannot disagree), the posting rule, the
rate-limit hit (one Redis round trip). Then the critical section (below), whose PUBLISH carries
presence in its round trip: who of the recipients has a socket open now
(``service.presence.online_users_in``: one script call queued after the PUBLISH, which Redis runs
right after it; if it cannot ride, e.g. the script is not loaded, ``online_users`` asks on its own
after the lock; this process's table without Redis). Then outside the lock again: the sender's read
mark (on PostgreSQL it rides on the statement that releases the lock), office hours (the sender's
note: read only when a teacher of the conversation keeps some; a direct conversation's membership
read said whether). So a direct message costs three statements (membership, insert, release) and
two Redis round trips (rate limit, PUBLISH with presence). Nobody offline: no job at all. Someone offline: one job
(``messaging.jobs.push_new_message``, job id per message) for them only, which checks again
when it runs (the members now and who is connected now) so someone removed from the roster
meanwhile gets nothing, and asks ``notifications`` for the push (FCM is never waited for here).

Ordering and integrity of a conversation's messages
---------------------------------------------------
``seq`` is allocated in the statement that inserts the message: a failed insert (a ``client_id``
sent before) rolls the increment back with it: no gap, no duplicate (and a unique
``(conversation, seq)`` index behind it). A unique ``(sender, client_id)`` index makes sends
idempotent: the same ``client_id`` again returns the stored message.

``message:new`` is published (one PUBLISH whatever the number of members: python-socketio's
Redis manager sends one message naming every room, each web process resolves them locally)
after the commit but while a per-conversation lock is still held, through
``publish.emit_many_in_order``: senders publish in seq order, Redis keeps that order, every web
process delivers the conversation's messages in seq order. Nothing else is inside the lock but
the presence script riding in the PUBLISH's round trip (no round trip of its own: tens of
microseconds of Redis time, for one round trip less per message).

PostgreSQL: a session-level advisory lock per conversation, taken by the insert statement itself
and released by the next statement (two round trips for lock, seq, insert, unlock and the read
mark, where a lock and an unlock statement of their own made four)::

    WITH lock AS (SELECT pg_advisory_lock(ns, conv)),
         next AS (UPDATE conversation SET last_seq = last_seq + 1 … FROM lock WHERE id = conv RETURNING last_seq)
    INSERT INTO chat_message … SELECT … FROM next RETURNING id, seq        -- autocommit: committed
    (PUBLISH message:new)
    WITH unlock AS (SELECT pg_advisory_unlock(ns, conv)) INSERT INTO conversation_read_mark … FROM unlock …

The UPDATE joins ``lock``, so the advisory lock is held before the conversation row is locked
(its snapshot predates the wait, but READ COMMITTED re-reads the row updated meanwhile: seq is
always the latest + 1). A session lock survives its statement's commit (and a rollback), which
is what lets the publish happen after the commit and before the release; the unlock runs first
in the second statement, before its upsert. ``pg_advisory_xact_lock`` (or the row lock alone)
would be released by the commit: keeping the order would mean publishing before the commit, so
a client could hear of a message not yet visible to ``GET …/messages``, or never stored if the
commit failed. If a release fails the connection is closed rather than returned to the pool with
the lock (PostgreSQL frees a closed session's locks).

Concurrent sends of one web process (PostgreSQL, no attachments) go together: the first runs as
above at once, the ones arriving while it is in flight are stored, published and released as one
batch by the next (``batch``: one insert statement, one Redis round trip, one release statement
for the lot, the locks taken in key order; the same guarantees). Everything before the lock and
after the release stays per send.

SQLite (the one-process embedded default): a process lock per conversation around a
``BEGIN IMMEDIATE`` transaction (``UPDATE … RETURNING last_seq`` and the insert) and the emit.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import threading
from typing import Iterable

import peewee as pw
from flask import current_app

import notifications
from service import jobs, presence, ratelimit
from service.db import db, is_postgres, write_transaction
from service.errors import Conflict, NotFound, ValidationError
from service.prepared import Prepared, PreparedStatement
from service.roster import logic as roster
from service.roster.models import ClassTeacher, SchoolClass, Student, StudentGuardian

from .. import policy
from ..limits import MAX_ATTACHMENTS, MAX_BODY, MAX_CLIENT_ID, PUSH_PREVIEW
from ..models import Attachment, Conversation, Message, ReadMark
from . import batch
from .attachments import claimable
from .clock import now
from .history import message_view
from .office_hours import outside_hours
from .publish import emit_many_in_order
from .receipts import advance_read

log = logging.getLogger("lienlac.messaging")

_LOCK_NAMESPACE = batch.LOCK_NAMESPACE  # "msg": first key of the two-int advisory lock

_local_locks: dict[int, threading.Lock] = collections.defaultdict(threading.Lock)
_local_locks_guard = threading.Lock()


@contextlib.contextmanager
def _process_lock(conversation_id: int):
    with _local_locks_guard:
        lock = _local_locks[int(conversation_id)]
    with lock:
        yield


def check_body(body, has_attachments: bool, field: str = "body") -> str:
    if not isinstance(body, str):
        raise ValidationError("The message must be text.", fields={field: ["Not a string."]})
    if len(body) > MAX_BODY:
        raise ValidationError(f"A message holds at most {MAX_BODY} characters.",
                              fields={field: [f"Longer than {MAX_BODY} characters."]})
    if "\x00" in body:
        raise ValidationError("The message holds a NUL character.", fields={field: ["NUL characters are not allowed."]})
    if not body.strip() and not has_attachments:
        raise ValidationError("The message is empty.", fields={field: ["Write something or attach a file."]})
    return body


def _check_client_id(client_id) -> str:
    if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > MAX_CLIENT_ID:
        raise ValidationError("client_id is required.", fields={"client_id": [f"1 to {MAX_CLIENT_ID} characters."]})
    return client_id


# --- who is in the conversation now ----------------------------------------------------------
def _class_audience_query(p):
    homeroom = (SchoolClass.select(SchoolClass.homeroom_teacher, pw.Value(0), pw.Value(0))
                .where((SchoolClass.id == p.class_id) & SchoolClass.homeroom_teacher.is_null(False)))
    subject = (ClassTeacher.select(ClassTeacher.teacher, pw.Value(1), ClassTeacher.id)
               .where(ClassTeacher.school_class == p.class_id))
    guardians = (StudentGuardian.select(StudentGuardian.guardian, pw.Value(2), pw.Value(0))
                 .join(Student, on=(StudentGuardian.student == Student.id)).where(Student.school_class == p.class_id))
    return (homeroom + subject + guardians).tuples()


# the send path's reads, built once and prepared per PostgreSQL connection (service.prepared)
_CLASS_AUDIENCE = Prepared("class_audience", _class_audience_query)


def _class_audience(class_id: int) -> tuple[list[int], set[int]]:
    """A class channel's members now in one query: its teachers (homeroom first, then subject
    teachers) and the guardians of its students who are not its teachers (as
    ``conversations.members_and_teachers``, which takes three)."""
    rows = sorted(_CLASS_AUDIENCE.run(class_id=int(class_id)), key=lambda r: (r[1], r[2], r[0]))
    teachers = list(dict.fromkeys(u for u, kind, _ in rows if kind < 2))
    teacher_set = set(teachers)
    guardian_ids = sorted({u for u, kind, _ in rows if kind == 2} - teacher_set)
    return teachers + guardian_ids, teacher_set


def audience_of(conv: Conversation) -> tuple[list[int], set[int]]:
    """Everyone in the conversation now, and which of them are teachers: one query."""
    if conv.kind == "class":
        return _class_audience(conv.school_class_id)
    people = policy.direct_members([conv.id])[conv.id]
    return [u for u, _ in people], {u for u, role in people if role == "teacher"}


# --- storing in seq order ----------------------------------------------------------------------
def _lock_key(conversation_id: int) -> tuple[int, int]:
    return _LOCK_NAMESPACE, batch.lock_key(conversation_id)


def _tables() -> tuple[str, str, str]:
    return Conversation._meta.table_name, Message._meta.table_name, ReadMark._meta.table_name


def _insert_text() -> str:
    conv, msg, _mark = _tables()
    return (f'WITH lock AS (SELECT pg_advisory_lock($1, $2)), '
            f'next AS (UPDATE "{conv}" SET last_seq = last_seq + 1, last_message_at = $3, updated_at = $3 '
            f'FROM lock WHERE id = $4 RETURNING last_seq) '
            f'INSERT INTO "{msg}" (conversation_id, seq, sender_id, client_id, body, created_at) '
            f'SELECT $4, next.last_seq, $5, $6, $7, $3 FROM next RETURNING id, seq')


def _release_text() -> str:
    _conv, _msg, mark = _tables()
    return (f'WITH unlock AS (SELECT pg_advisory_unlock($1, $2)) '
            f'INSERT INTO "{mark}" (conversation_id, user_id, up_to_seq, updated_at) '
            f'SELECT $3, $4, $5, $6 FROM unlock '
            f'ON CONFLICT (conversation_id, user_id) DO UPDATE SET '
            f'up_to_seq = GREATEST("{mark}".up_to_seq, EXCLUDED.up_to_seq), updated_at = EXCLUDED.updated_at')


# the two statements of every message on PostgreSQL, prepared once per connection (no parsing nor
# planning per message; the release's runs while the lock is still held)
_PG_INSERT = PreparedStatement("send_insert", "int, int, timestamp, bigint, bigint, text, text", _insert_text)
_PG_RELEASE = PreparedStatement("send_release", "int, int, bigint, bigint, bigint, timestamp", _release_text)


def _insert_locked_pg(conversation_id: int, user_id: int, client_id: str, body: str, ts: dt.datetime) -> Message:
    """PostgreSQL: take the conversation's advisory lock, the next seq and insert, in one statement."""
    row = _PG_INSERT.execute(*_lock_key(conversation_id), ts, conversation_id, user_id, client_id, body).fetchone()
    if row is None:
        raise NotFound("No such conversation.")
    return Message(id=row[0], conversation=conversation_id, seq=row[1], sender=user_id, client_id=client_id,
                   body=body, created_at=ts)


def _release_pg(conversation_id: int, read_mark: tuple | None) -> None:
    """Release the advisory lock; with ``read_mark`` ``(user_id, seq, ts)``, advance it in the same statement."""
    key = _lock_key(conversation_id)
    try:
        if read_mark is None:
            db.execute_sql("SELECT pg_advisory_unlock(%s, %s)", key)
        else:
            _PG_RELEASE.execute(*key, conversation_id, *read_mark)
        return
    except Exception:  # noqa: BLE001 - the message is stored and published: never fail the send here
        log.warning("releasing a conversation lock failed; trying again", exc_info=True)
    try:  # (the unlock ran and the upsert failed, or nothing ran: an unlock of a free lock is a no-op)
        db.execute_sql("SELECT pg_advisory_unlock(%s, %s)", key)
    except Exception:  # noqa: BLE001 - the session is unusable: close it, its locks go with it
        log.exception("could not release a conversation lock: connection closed")
        batch.close_connection_with_locks()
        return
    if read_mark is not None:
        advance_read(conversation_id, *read_mark)


def _insert_sqlite(conversation_id: int, user_id: int, client_id: str, body: str, ts: dt.datetime) -> Message:
    """SQLite, in a ``BEGIN IMMEDIATE`` transaction (it holds the write lock): the next seq, then the insert."""
    seq = db.execute_sql(
        f'UPDATE "{Conversation._meta.table_name}" SET last_seq = last_seq + 1, last_message_at = ?, updated_at = ? '
        f'WHERE id = ? RETURNING last_seq', (ts, ts, conversation_id)).fetchone()
    if seq is None:
        raise NotFound("No such conversation.")
    return Message.create(conversation=conversation_id, seq=seq[0], sender=user_id, client_id=client_id, body=body,
                          created_at=ts)


def _store(conv_id: int, user_id: int, client_id: str, body: str, attachment_ids: list[int],
           ts: dt.datetime) -> tuple[Message | None, list[Attachment], Message | None]:
    """Inside the critical section: ``(message, its attachments, None)``, or ``(None, [], the message
    sent before with this client_id)``."""
    atts: list[Attachment] = []
    try:
        if is_postgres() and not attachment_ids:  # the common case: one statement, its own transaction
            return _insert_locked_pg(conv_id, user_id, client_id, body, ts), atts, None
        with write_transaction():
            if attachment_ids:
                atts = claimable(user_id, attachment_ids)
            insert = _insert_locked_pg if is_postgres() else _insert_sqlite
            msg = insert(conv_id, user_id, client_id, body, ts)
            if atts:
                Attachment.update(message=msg.id).where(Attachment.id.in_([a.id for a in atts])).execute()
        return msg, atts, None
    except pw.IntegrityError:
        # (sender, client_id) is taken: a concurrent send of the same message won (the seq increment
        # rolled back with this statement)
        existing = batch.find_sent(user_id, client_id)
        if existing is None:
            raise
        return None, [], existing


# --- sending -----------------------------------------------------------------------------------
def send(user_id: int, conversation_id, client_id, body, attachment_ids: Iterable[int] = ()) -> tuple[dict, bool]:
    """``send_message`` for a conversation named by a client: 404 unless the caller is in it now.

    Membership is read with the audience: for a direct conversation one query for the
    conversation and its members, for a class channel one more for its audience (the same roster
    relations as ``conversations.conversation_for``)."""
    conv, people, keeping_hours = policy.conversation_with_direct_members(conversation_id)
    if conv is None:
        audience, keeping_hours = ([], set()), None
    elif conv.kind == "class":
        audience, keeping_hours = _class_audience(conv.school_class_id), None
    else:
        audience = [u for u, _ in people], {u for u, role in people if role == "teacher"}
    if user_id not in audience[0]:
        raise NotFound("No such conversation.")
    return send_message(user_id, conv, client_id, body, attachment_ids, audience=audience,
                        keeping_hours=keeping_hours)


def send_message(user_id: int, conv: Conversation, client_id, body, attachment_ids: Iterable[int] = (),
                 when: dt.datetime | None = None,
                 audience: tuple[list[int], set[int]] | None = None,
                 keeping_hours: set[int] | None = None) -> tuple[dict, bool]:
    """Store a message (idempotent by ``(sender, client_id)``), emit ``message:new`` to the
    conversation's current members and have the ones not connected pushed.

    Returns ``(message view, created)``; ``created`` is False when this ``client_id`` was sent before.
    The caller must be a member (``send`` checks it; ``audience``: its ``audience_of(conv)``;
    ``keeping_hours``: which of its teachers keep office hours, when known, else they are read). Each
    sender has ``message_rate_limit`` (HTTP and sockets together): over it, ``RateLimited`` (429
    with ``Retry-After``), nothing stored.
    """
    client_id = _check_client_id(client_id)
    attachment_ids = list(dict.fromkeys(int(a) for a in (attachment_ids or [])))
    if len(attachment_ids) > MAX_ATTACHMENTS:
        raise ValidationError("Too many attachments.", fields={"attachments": [f"At most {MAX_ATTACHMENTS}."]})
    body = check_body(body, bool(attachment_ids))
    policy.require_may_post(user_id, conv)
    ratelimit.hit("message-send", f"user:{user_id}", current_app.config["LIENLAC"].message_rate_limit, gathered=True)
    ts = when or now()
    members, teachers = audience if audience is not None else audience_of(conv)
    # a resend is caught by the unique (sender, client_id) index; with files, look first (they are taken)
    existing, msg, view = (batch.find_sent(user_id, client_id) if attachment_ids else None), None, None
    online = None
    if existing is None:
        msg, view, existing, online = _store_and_publish(conv.id, user_id, client_id, body, attachment_ids, ts,
                                                         members)
    if existing is not None:
        if existing.conversation_id != conv.id:
            raise Conflict("This client_id was already used for another conversation.",
                           fields={"client_id": ["Already used in another conversation."]})
        return message_view(existing), False
    view["notice"] = _after_send(conv, msg, user_id, ts, members, teachers, online, keeping_hours)
    return view, True


def _store_and_publish(conv_id: int, user_id: int, client_id: str, body: str, attachment_ids: list[int],
                       ts: dt.datetime, members: list[int]
                       ) -> tuple[Message | None, dict | None, Message | None, set[int] | None]:
    """The critical section: seq, insert, ordered publish; then the sender's read mark (after the
    release). The last item: the recipients connected now, when presence rode on the PUBLISH."""
    if not is_postgres():
        with _process_lock(conv_id):
            msg, atts, existing = _store(conv_id, user_id, client_id, body, attachment_ids, ts)
            view, online = _publish(msg, atts, members, user_id) if msg is not None else (None, None)
        if msg is not None:
            advance_read(conv_id, user_id, msg.seq, ts)  # one has read what one writes
        return msg, view, existing, online
    if not attachment_ids and not db.in_transaction():  # (concurrent sends go together: batch's docstring)
        return batch.submit(batch.Send(conv_id, user_id, client_id, body, ts, members), _send_alone)
    return _store_and_publish_pg(conv_id, user_id, client_id, body, attachment_ids, ts, members)


def _send_alone(item: batch.Send) -> tuple:
    return _store_and_publish_pg(item.conv_id, item.user_id, item.client_id, item.body, [], item.ts, item.members)


def _store_and_publish_pg(conv_id: int, user_id: int, client_id: str, body: str, attachment_ids: list[int],
                          ts: dt.datetime, members: list[int]) -> tuple:
    """One send on PostgreSQL: insert (taking the lock), publish, release with the read mark."""
    db.connect(reuse_if_open=True)
    msg = view = existing = online = None
    try:
        msg, atts, existing = _store(conv_id, user_id, client_id, body, attachment_ids, ts)
        if msg is not None:
            view, online = _publish(msg, atts, members, user_id)
    finally:  # (the lock was taken by the insert statement, even one that failed on client_id)
        _release_pg(conv_id, (user_id, msg.seq, ts) if msg is not None else None)
    return msg, view, existing, online


def _publish(msg: Message, atts: list[Attachment], members: list[int], sender_id: int) -> tuple[dict, set[int] | None]:
    """``message:new`` to the members, with the question "who of the recipients is connected now"
    in the same Redis round trip (``presence.online_users_in``, run by Redis after the PUBLISH):
    ``(view, online or None)``."""
    view = message_view(msg, atts)
    [online] = emit_many_in_order([batch.new_message_event(view, members, sender_id)])
    return view, online


def _after_send(conv: Conversation, msg: Message, sender_id: int, ts: dt.datetime, members: list[int],
                teachers: set[int], online: set[int] | None = None, keeping_hours: set[int] | None = None
                ) -> dict | None:
    """Office hours now (the sender's note: read only for teachers who keep some, when
    ``keeping_hours`` says which); a push job only for the recipients not connected now
    (``online``: asked with the PUBLISH; None: asked here). Never fails the send: the message is
    stored and delivered already."""
    try:
        silent_for, notice = set(), None
        asked = teachers if keeping_hours is None else teachers & keeping_hours
        if sender_id not in teachers and asked:
            silent_for, notice = outside_hours(conv, sorted(asked), ts)
        recipients = [u for u in members if u != sender_id]
        if online is None:
            online = presence.online_users(recipients)
        offline = [u for u in recipients if u not in online]
        if offline:
            jobs.enqueue("messaging.jobs.push_new_message", msg.id, sorted(silent_for & set(offline)), offline,
                         queue="high", job_id=f"message-push-{msg.id}", retry=(2, [5, 30]))
        return notice
    except Exception:  # noqa: BLE001 - logged; the message itself is safe
        log.exception("after-send steps failed", extra={"event": "message:new"})
        return None


def push_new_message(message_id: int, silent_for: Iterable[int] = (), user_ids: Iterable[int] | None = None) -> int:
    """Ask ``notifications`` for a push to the members who have no socket open now.

    ``user_ids``: the recipients who were offline when it was sent (None: every member). Checked
    again now: someone who left the roster since the message was sent, or who has connected since,
    gets nothing. Runs as a job (``messaging.jobs.push_new_message``). ``silent_for``: teachers
    outside their office hours. Returns how many people were asked to be pushed.
    """
    msg = Message.get_or_none(Message.id == message_id)
    if msg is None or msg.deleted_at is not None:
        return 0
    conv = Conversation.get_by_id(msg.conversation_id)
    wanted = None if user_ids is None else {int(u) for u in user_ids}
    recipients = [u for u in audience_of(conv)[0] if u != msg.sender_id and (wanted is None or u in wanted)]
    online = presence.online_users(recipients)
    offline = [u for u in recipients if u not in online]
    if offline:
        _push(conv, msg, msg.sender_id, offline, set(silent_for))
    return len(offline)


def _push(conv: Conversation, msg: Message, sender_id: int, user_ids: list[int], silent_for: set[int]) -> None:
    names = roster.user_names([sender_id])
    title = names.get(sender_id, "") or "Lienlac"
    if conv.kind == "class":
        title = f"{title} · {conv.title}"
    preview = msg.body if len(msg.body) <= PUSH_PREVIEW else msg.body[:PUSH_PREVIEW - 1] + "…"
    if not msg.body.strip():
        preview = "📎 Tệp đính kèm"
    data = {"type": "conversation", "id": str(conv.id)}
    for silent in (False, True):
        ids = [u for u in user_ids if (u in silent_for) == silent]
        if ids:
            notifications.notify(ids, "message", title, preview, data=data, inbox=False, silent=silent,
                                 collapse_key=f"conversation:{conv.id}")
