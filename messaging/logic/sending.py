"""Sending a message: stored in seq order, idempotent by ``client_id``, delivered, then pushed.

Ordering and integrity of a conversation's messages
---------------------------------------------------
``seq`` is allocated in the transaction that inserts the message. On PostgreSQL one statement
does both (``WITH next AS (UPDATE conversation SET last_seq = last_seq + 1 … RETURNING last_seq)
INSERT … SELECT``): the UPDATE row-locks the conversation until the commit, like ``SELECT … FOR
UPDATE`` would, in one round trip. On SQLite ``BEGIN IMMEDIATE`` holds the database write lock.
A failed insert rolls the increment back with it: no gap, no duplicate (and a unique
``(conversation, seq)`` index behind it). A unique ``(sender, client_id)`` index makes sends
idempotent: the same ``client_id`` again returns the stored message.

``message:new`` is emitted after the commit but while a per-conversation lock is still held (a
PostgreSQL advisory lock; a process lock on SQLite, the one-process embedded default), through
``publish.emit_in_order``: every web process delivers the conversation's messages in seq order.
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
from service.roster import logic as roster

from .. import policy
from ..limits import MAX_ATTACHMENTS, MAX_BODY, MAX_CLIENT_ID, PUSH_PREVIEW
from ..models import Attachment, Conversation, Message
from .attachments import claimable
from .clock import now
from .conversations import member_ids, members_and_teachers
from .history import message_view
from .office_hours import outside_hours
from .publish import deliver, message_payload
from .receipts import advance_read

log = logging.getLogger("lienlac.messaging")

_LOCK_NAMESPACE = 0x6D7367  # "msg": first key of the two-int advisory lock

_local_locks: dict[int, threading.Lock] = collections.defaultdict(threading.Lock)
_local_locks_guard = threading.Lock()


@contextlib.contextmanager
def conversation_lock(conversation_id: int):
    """Serialise writers of one conversation from before their transaction until after their emit."""
    if is_postgres():
        db.connect(reuse_if_open=True)
        args = (_LOCK_NAMESPACE, int(conversation_id) % 2**31)
        db.execute_sql("SELECT pg_advisory_lock(%s, %s)", args)
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s, %s)", args)
    else:
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


def _next_seq(conversation_id: int, ts: dt.datetime) -> int:
    """SQLite: take the next seq (the ``BEGIN IMMEDIATE`` transaction holds the write lock)."""
    Conversation.update(last_seq=Conversation.last_seq + 1, last_message_at=ts, updated_at=ts).where(
        Conversation.id == conversation_id).execute()
    return Conversation.select(Conversation.last_seq).where(Conversation.id == conversation_id).scalar()


_PG_INSERT = None


def _insert_message_pg(conversation_id: int, user_id: int, client_id: str, body: str, ts: dt.datetime) -> Message:
    """PostgreSQL: take the next seq and insert the message in one statement.

    The ``UPDATE … RETURNING`` row-locks the conversation (as ``SELECT … FOR UPDATE`` would) until
    the statement's transaction ends; if the insert fails (a ``client_id`` sent before), the
    increment is undone with it.
    """
    global _PG_INSERT
    if _PG_INSERT is None:
        conv, msg = Conversation._meta.table_name, Message._meta.table_name
        _PG_INSERT = (
            f'WITH next AS (UPDATE "{conv}" SET last_seq = last_seq + 1, last_message_at = %s, updated_at = %s '
            f'WHERE id = %s RETURNING last_seq) '
            f'INSERT INTO "{msg}" (conversation_id, seq, sender_id, client_id, body, created_at) '
            f'SELECT %s, next.last_seq, %s, %s, %s, %s FROM next RETURNING id, seq')
    row = db.execute_sql(_PG_INSERT, (ts, ts, conversation_id, conversation_id, user_id, client_id, body,
                                      ts)).fetchone()
    if row is None:
        raise NotFound("No such conversation.")
    return Message(id=row[0], conversation=conversation_id, seq=row[1], sender=user_id, client_id=client_id,
                   body=body, created_at=ts)


def _find_sent(user_id: int, client_id: str) -> Message | None:
    return Message.get_or_none((Message.sender == user_id) & (Message.client_id == client_id))


def send_message(user_id: int, conv: Conversation, client_id, body, attachment_ids: Iterable[int] = (),
                 when: dt.datetime | None = None) -> tuple[dict, bool]:
    """Store a message (idempotent by ``(sender, client_id)``), emit ``message:new`` to the
    conversation's current members and ask for a push to those who are not connected.

    Returns ``(message view, created)``; ``created`` is False when this ``client_id`` was sent before.
    The caller must be a member (``conversation_for``). Each sender has ``message_rate_limit``
    (HTTP and sockets together): over it, ``RateLimited`` (429 with ``Retry-After``), nothing stored.
    """
    client_id = _check_client_id(client_id)
    attachment_ids = list(dict.fromkeys(int(a) for a in (attachment_ids or [])))
    if len(attachment_ids) > MAX_ATTACHMENTS:
        raise ValidationError("Too many attachments.", fields={"attachments": [f"At most {MAX_ATTACHMENTS}."]})
    body = check_body(body, bool(attachment_ids))
    policy.require_may_post(user_id, conv)
    ratelimit.hit("message-send", f"user:{user_id}", current_app.config["LIENLAC"].message_rate_limit)
    ts = when or now()
    members, teachers = members_and_teachers(conv)  # read before the critical section, kept short
    # a resend is caught by the unique (sender, client_id) index; with files, look first (they are taken)
    existing, msg, atts = (_find_sent(user_id, client_id) if attachment_ids else None), None, []
    if existing is None:
        # Critical section, per conversation: transaction (seq, insert) + emit. Kept short on purpose.
        with conversation_lock(conv.id):
            try:
                if is_postgres() and not attachment_ids:
                    # the common case in one statement (its own transaction): one round trip
                    msg = _insert_message_pg(conv.id, user_id, client_id, body, ts)
                else:
                    with write_transaction():
                        if attachment_ids:
                            atts = claimable(user_id, attachment_ids)
                        if is_postgres():
                            msg = _insert_message_pg(conv.id, user_id, client_id, body, ts)
                        else:
                            seq = _next_seq(conv.id, ts)
                            msg = Message.create(conversation=conv.id, seq=seq, sender=user_id,
                                                 client_id=client_id, body=body, created_at=ts)
                        if atts:
                            Attachment.update(message=msg.id).where(
                                Attachment.id.in_([a.id for a in atts])).execute()
            except pw.IntegrityError:
                # (sender, client_id) is taken: a concurrent send of the same message won (the seq
                # increment rolled back with this transaction)
                msg, existing = None, _find_sent(user_id, client_id)
                if existing is None:
                    raise
            if msg is not None:
                view = message_view(msg, atts)
                deliver(members, "message:new", {"message": message_payload(view)}, ordered=True)
    if existing is not None:
        if existing.conversation_id != conv.id:
            raise Conflict("This client_id was already used for another conversation.",
                           fields={"client_id": ["Already used in another conversation."]})
        return message_view(existing), False
    advance_read(conv.id, user_id, msg.seq, ts)  # one has read what one writes (outside the critical section)
    view["notice"] = _after_send(conv, msg, user_id, ts, teachers)
    return view, True


def _after_send(conv: Conversation, msg: Message, sender_id: int, ts: dt.datetime,
                teachers: set[int]) -> dict | None:
    """Office hours now (the sender's note); pushes in a job. Never fails the send: the message
    is stored and delivered already."""
    try:
        silent_for, notice = set(), None
        if sender_id not in teachers:
            silent_for, notice = outside_hours(conv, sorted(teachers), ts)
        jobs.enqueue("messaging.jobs.push_new_message", msg.id, sorted(silent_for), queue="high",
                     job_id=f"message-push-{msg.id}", retry=(2, [5, 30]))
        return notice
    except Exception:  # noqa: BLE001 - logged; the message itself is safe
        log.exception("after-send steps failed", extra={"event": "message:new"})
        return None


def push_new_message(message_id: int, silent_for: Iterable[int] = ()) -> int:
    """Ask ``notifications`` for a push to the members who have no socket open now (members now:
    someone who left the roster since the message was sent gets nothing).

    Runs as a job (``messaging.jobs.push_new_message``) so the send path stays short. ``silent_for``:
    teachers outside their office hours. Returns how many people were asked to be pushed.
    """
    msg = Message.get_or_none(Message.id == message_id)
    if msg is None or msg.deleted_at is not None:
        return 0
    conv = Conversation.get_by_id(msg.conversation_id)
    recipients = [u for u in member_ids(conv) if u != msg.sender_id]
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
