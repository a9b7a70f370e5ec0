"""Messaging rules: conversations, messages, receipts, attachments, reports and office hours.

Plain functions with explicit arguments (the caller's user id first), usable from a view, a
socket handler, a job or a test. They return plain dicts/rows (``message_view``,
``conversation_views``); the schemas turn them into the JSON the clients see (``message_payload``
for socket events).

Ordering and integrity of a conversation's messages
---------------------------------------------------
``seq`` is allocated in the transaction that inserts the message. On PostgreSQL one statement
does both (``WITH next AS (UPDATE conversation SET last_seq = last_seq + 1 … RETURNING last_seq)
INSERT … SELECT``): the UPDATE row-locks the conversation until the commit, like ``SELECT … FOR
UPDATE`` would, in one round trip. On SQLite ``BEGIN IMMEDIATE`` holds the database write lock. A failed insert rolls the increment
back with it: no gap, no duplicate (and a unique ``(conversation, seq)`` index behind it). A
unique ``(sender, client_id)`` index makes sends idempotent: the same ``client_id`` again returns
the stored message.

``message:new`` must reach every socket in seq order even with concurrent senders on several
web processes. The emit happens after the commit but while a per-conversation lock is still
held (a PostgreSQL advisory lock; a process lock on SQLite, the one-process embedded default),
so senders publish to the Redis Socket.IO channel in seq order and Redis keeps that order. A
server's own emit would deliver to its local sockets at once and to the others through Redis,
and a local delivery could overtake a message of another process still in the channel: so
these events go out through a write-only publisher (``emit_in_order``) and every web process,
the sender's included, delivers them from the channel, in the channel's order.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import logging
import threading
from typing import Iterable

import peewee as pw
import socketio as socketio_lib
from flask import current_app, has_app_context
from peewee import Case, fn

import notifications
from service import jobs as jobs_mod
from service import permissions, presence, ratelimit, realtime
from service.roster import logic as roster
from service.db import db, is_postgres, utcnow, write_transaction
from service.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationError
from service.pagination import decode_cursor, encode_cursor

from . import officehours, policy
from . import storage as storage_mod
from .models import Attachment, Conversation, Message, MessageReport, OfficeHour, Participant, ReadMark

log = logging.getLogger("lienlac.messaging")

MAX_BODY = 4000
MAX_CLIENT_ID = 100
MAX_ATTACHMENTS = 10
MAX_DIRECT_PARTICIPANTS = 10
EDIT_WINDOW = dt.timedelta(minutes=15)
PUSH_PREVIEW = 180
_LOCK_NAMESPACE = 0x6D7367  # "msg": first key of the two-int advisory lock
_MAX_ID = 2**63


# --- time --------------------------------------------------------------------------------------
def now() -> dt.datetime:
    """Naive UTC now; tests inject a clock with ``app.extensions["lienlac.clock"] = callable``."""
    clock = current_app.extensions.get("lienlac.clock") if has_app_context() else None
    return clock() if clock is not None else utcnow()


def _valid_id(value) -> bool:
    try:
        return 0 < int(value) < _MAX_ID
    except (TypeError, ValueError):
        return False


# --- membership -------------------------------------------------------------------------------
# Membership follows the roster live (see ``policy``); every event goes to the ``user:<id>`` rooms
# of the members computed when it is sent (``deliver``), so a socket whose user left the roster
# hears nothing more, on any web process, without rooms to keep in step.
def member_class_ids(user_id: int) -> list[int]:
    """Classes whose channel the user belongs to: the classes they teach and their children's classes."""
    ids = set(roster.teacher_class_ids(user_id))
    ids.update(s.school_class_id for s in roster.children_of(user_id) if s.school_class_id)
    return sorted(ids)


def members_and_teachers(conv: Conversation) -> tuple[list[int], set[int]]:
    """Everyone in the conversation now, and which of them are the class's teachers."""
    if conv.kind == "class":
        teachers = roster.class_teacher_ids(conv.school_class_id)
        guardians = [g for g in roster.class_guardian_ids(conv.school_class_id) if g not in teachers]
        return teachers + guardians, set(teachers)
    people = policy.direct_members([conv.id])[conv.id]
    return [u for u, _ in people], {u for u, role in people if role == "teacher"}


def member_ids(conv: Conversation) -> list[int]:
    """Everyone in the conversation now (read from the roster)."""
    return members_and_teachers(conv)[0]


def is_member(conv: Conversation, user_id: int) -> bool:
    if conv.kind == "class":
        try:
            _klass, access = permissions.class_access(user_id, conv.school_class_id, guardians=True)
        except NotFound:
            return False
        return access.teacher or access.guardian
    return policy.is_direct_member(conv.id, user_id)


def conversation_for(user_id: int, conversation_id) -> Conversation:
    """The conversation if the caller is in it now; 404 otherwise (they must not learn it exists)."""
    conv = Conversation.get_or_none(Conversation.id == int(conversation_id)) if _valid_id(conversation_id) else None
    if conv is None or not is_member(conv, user_id):
        raise NotFound("No such conversation.")
    return conv


def ensure_class_conversations(class_ids: Iterable[int]) -> dict[int, int]:
    """The class channel of each class (created on first need, one per class): ``{class_id: conversation_id}``."""
    ids = sorted({int(c) for c in class_ids})
    if not ids:
        return {}
    found = {c.school_class_id: c.id for c in Conversation.select(Conversation.id, Conversation.school_class)
             .where(Conversation.school_class.in_(ids))}
    missing = [c for c in ids if c not in found]
    for class_id in missing:
        klass = roster.get_class(class_id)
        Conversation.insert(kind="class", school=klass.school_id, school_class=class_id, title=klass.name,
                            created_at=utcnow(), updated_at=utcnow()).on_conflict_ignore().execute()
    if missing:
        found.update({c.school_class_id: c.id for c in Conversation.select(Conversation.id, Conversation.school_class)
                      .where(Conversation.school_class.in_(missing))})
    return found


def class_conversation(user_id: int, class_id) -> Conversation:
    """The class channel of a class the caller belongs to (404 otherwise)."""
    if not _valid_id(class_id):
        raise NotFound("No such class.")
    try:
        _klass, access = permissions.class_access(user_id, int(class_id), guardians=True)
    except NotFound:
        raise NotFound("No such class.") from None
    if not (access.teacher or access.guardian):
        raise NotFound("No such class.")
    conv_id = ensure_class_conversations([int(class_id)])[int(class_id)]
    return Conversation.get_by_id(conv_id)


def user_conversation_ids(user_id: int) -> list[int]:
    """Every conversation the user is in now (class channels created on the way)."""
    ids = list(ensure_class_conversations(member_class_ids(user_id)).values())
    ids += [row.conversation_id for row in policy.direct_conversations_of(user_id)]
    return sorted(set(ids))


def activity_audience(conv: Conversation, actor_id: int, members: list[int] | None = None,
                      teachers: set[int] | None = None) -> list[int]:
    """Who hears of a member's reading and typing: everyone in a direct conversation; in a class
    channel, a guardian's only reach the teachers and the guardian's own devices (the receipts
    show guardians the teachers' marks and their own, never other families')."""
    if members is None or teachers is None:
        members, teachers = members_and_teachers(conv)
    if conv.kind != "class" or actor_id in teachers:
        return members
    return [u for u in members if u in teachers or u == actor_id]


# --- delivery to the members' sockets, on any web process ---------------------------------------
def _rooms(user_ids: Iterable[int]) -> list[str]:
    return [realtime.user_room(u) for u in dict.fromkeys(int(u) for u in user_ids)]


def deliver(user_ids: Iterable[int], event: str, data, ordered: bool = False, skip_sid: str | None = None) -> None:
    """Send ``event`` to every socket of these users (their ``user:<id>`` rooms).

    ``ordered``: through the write-only publisher (``emit_in_order``), for events that must keep
    the conversation's seq order across processes. Nobody to tell: nothing is sent (an empty room
    list would mean "everyone" to python-socketio).
    """
    rooms = _rooms(user_ids)
    if not rooms:
        return
    if ordered:
        emit_in_order(rooms, event, data)
    elif skip_sid is not None and realtime.socketio.server is not None:
        realtime.socketio.emit(event, data, to=rooms, skip_sid=skip_sid)
    else:
        realtime.emit_to(rooms, event, data)


def emit_in_order(rooms: str | list[str], event: str, data) -> None:
    """Emit so that every web process delivers in one global order (the Redis channel's).

    Without Redis (one process) this is the plain emit: ordered by the caller's lock.
    """
    config = current_app.config["LIENLAC"] if has_app_context() else None
    if config is None or not config.redis_url:
        realtime.emit_to(rooms, event, data)
        return
    key = (config.redis_url, config.socketio_channel)
    publisher = _publishers.get(key)
    if publisher is None:
        with _publishers_guard:
            publisher = _publishers.get(key)
            if publisher is None:
                publisher = socketio_lib.RedisManager(config.redis_url, channel=config.socketio_channel,
                                                      write_only=True)
                _publishers[key] = publisher
    publisher.emit(event, data, namespace="/", room=rooms)


_publishers: dict[tuple, "socketio_lib.RedisManager"] = {}
_publishers_guard = threading.Lock()


# --- direct conversations ---------------------------------------------------------------------
def _participant_key(student_id: int, people: Iterable[int]) -> str:
    raw = f"{student_id}:{','.join(str(p) for p in sorted(set(people)))}"
    return hashlib.sha256(raw.encode()).hexdigest()


def open_direct(user_id: int, student_id, participant_ids: Iterable[int]) -> tuple[Conversation, bool]:
    """The conversation between these people about this student (the same one every time).

    The caller must be a guardian or a teacher of the student (others who may see the student,
    the school's cafeteria staff or admin, get 403; anyone else 404). The others must be the
    student's guardians or teachers of the student's class, and the conversation must hold at
    least one of each.
    """
    student, access = permissions.student_access(user_id, student_id)
    if not (access.guardian or access.teacher):
        raise Forbidden("Only the student's guardians and teachers can open a conversation about them.")
    others = {int(p) for p in participant_ids} - {user_id}
    if not others:
        raise ValidationError("Name the people to talk with.", fields={"participant_ids": ["Add at least one person."]})
    if len(others) + 1 > MAX_DIRECT_PARTICIPANTS:
        raise ValidationError("Too many people.", fields={"participant_ids": [f"At most {MAX_DIRECT_PARTICIPANTS - 1}."]})
    teachers = set(roster.class_teacher_ids(student.school_class_id)) if student.school_class_id else set()
    guardians = set(roster.guardian_ids_of_student(student.id))
    strangers = others - teachers - guardians
    if strangers:
        raise ValidationError("Only the student's guardians and teachers can be in this conversation.",
                              fields={"participant_ids": ["Not a guardian or teacher of this student: "
                                                          + ", ".join(str(s) for s in sorted(strangers))]})
    people = others | {user_id}
    if not (people & teachers) or not (people & guardians):
        raise ValidationError("A conversation about a student is between their guardians and their teachers.",
                              fields={"participant_ids": ["Include a guardian and a teacher of the student."]})
    key = _participant_key(student.id, people)
    created = False
    with write_transaction():
        conv = Conversation.get_or_none(Conversation.participant_key == key)
        if conv is None:
            try:
                with db.atomic():  # a savepoint: a concurrent open of the same conversation may win
                    ts = utcnow()
                    conv = Conversation.create(kind="direct", school=student.school_id, student=student.id,
                                               participant_key=key, created_by=user_id, created_at=ts, updated_at=ts)
                    Participant.insert_many([{"conversation": conv.id, "user": p, "joined_at": ts}
                                             for p in sorted(people)]).execute()
                created = True
            except pw.IntegrityError:
                conv = Conversation.get(Conversation.participant_key == key)
    return conv, created


def update_conversation(user_id: int, conv: Conversation, changes: dict) -> Conversation:
    """A teacher of the class makes its channel announcement-only (or open) again."""
    if "announcement_only" in changes:
        if conv.kind != "class":
            raise ValidationError("Only class channels can be announcement-only.",
                                  fields={"announcement_only": ["Only for class channels."]})
        if not permissions.is_teacher_of_class(user_id, conv.school_class_id):
            raise Forbidden("Only the class's teachers can change this.")
        value = bool(changes["announcement_only"])
        Conversation.update(announcement_only=value).where(Conversation.id == conv.id).execute()
        conv = Conversation.get_by_id(conv.id)
        deliver(member_ids(conv), "conversation:updated", {"conversation_id": str(conv.id), "announcement_only": value})
    return conv


# --- reading conversations --------------------------------------------------------------------
def _attachments_by_message(message_ids: list[int]) -> dict[int, list[Attachment]]:
    out: dict[int, list[Attachment]] = collections.defaultdict(list)
    if message_ids:
        for att in (Attachment.select().where(Attachment.message.in_(message_ids) & Attachment.deleted_at.is_null())
                    .order_by(Attachment.id)):
            out[att.message_id].append(att)
    return out


def attachment_view(att: Attachment) -> dict:
    url = storage_mod.storage().url(att.storage_key) or f"/api/v1/attachments/{att.id}"
    return {"id": att.id, "content_type": att.content_type, "size": att.size, "filename": att.filename, "url": url}


def message_view(msg: Message, attachments: list[Attachment] | None = None, notice: dict | None = None) -> dict:
    deleted = msg.deleted_at is not None
    if attachments is None:
        attachments = [] if deleted else _attachments_by_message([msg.id]).get(msg.id, [])
    return {"id": msg.id, "conversation_id": msg.conversation_id, "sender_id": msg.sender_id,
            "body": "" if deleted else msg.body, "client_id": msg.client_id, "created_at": msg.created_at,
            "seq": msg.seq, "edited_at": msg.edited_at, "deleted": deleted,
            "attachments": [] if deleted else [attachment_view(a) for a in attachments],
            "notice": notice}


def message_views(messages: list[Message]) -> list[dict]:
    atts = _attachments_by_message([m.id for m in messages if m.deleted_at is None])
    return [message_view(m, atts.get(m.id, [])) for m in messages]


def message_payload(view: dict) -> dict:
    """The JSON of a message, as sent on sockets."""
    from .schemas import MessageOut

    return MessageOut().dump(view)


def _unread_counts(user_id: int, conversation_ids: list[int]) -> dict[int, int]:
    if not conversation_ids:
        return {}
    mark = ReadMark.alias()
    query = (Message.select(Message.conversation, fn.COUNT(Message.id).alias("n"))
             .join(mark, pw.JOIN.LEFT_OUTER, on=((mark.conversation == Message.conversation) & (mark.user == user_id)))
             .where(Message.conversation.in_(conversation_ids) & (Message.sender != user_id)
                    & Message.deleted_at.is_null() & (Message.seq > fn.COALESCE(mark.up_to_seq, 0)))
             .group_by(Message.conversation))
    return {row.conversation_id: row.n for row in query}


def conversation_views(user_id: int, convs: list[Conversation]) -> list[dict]:
    """What a member sees of each conversation: title, participants (names, never phone numbers),
    last message and unread count."""
    if not convs:
        return []
    ids = [c.id for c in convs]
    last = {m.conversation_id: m for m in Message.select().join(
        Conversation, on=((Message.conversation == Conversation.id) & (Message.seq == Conversation.last_seq)))
        .where(Conversation.id.in_(ids))}
    last_views = dict(zip(last.keys(), message_views(list(last.values()))))
    unread = _unread_counts(user_id, ids)
    # the members now, a constant number of queries for the whole page
    direct = [c for c in convs if c.kind == "direct"]
    people_of: dict[int, list[tuple[int, str]]] = policy.direct_members([c.id for c in direct]) if direct else {}
    student_names = roster.student_names(c.student_id for c in direct)
    by_class = roster.class_members(c.school_class_id for c in convs if c.kind == "class")
    for conv in convs:
        if conv.kind == "class":
            people_of[conv.id] = by_class[conv.school_class_id]
    names = roster.user_names({u for people in people_of.values() for u, _ in people})
    out = []
    for conv in convs:
        participants = [{"id": u, "name": names.get(u, ""), "role": role} for u, role in people_of[conv.id]]
        if conv.kind == "class":
            title = conv.title
        else:
            others = [p["name"] for p in participants if p["id"] != user_id] or [names.get(user_id, "")]
            title = f"{', '.join(others)} · {student_names.get(conv.student_id, '')}"
        out.append({"id": conv.id, "kind": conv.kind, "title": title, "student_id": conv.student_id,
                    "class_id": conv.school_class_id, "announcement_only": conv.announcement_only,
                    "participants": participants, "last_message": last_views.get(conv.id),
                    "unread_count": unread.get(conv.id, 0), "last_seq": conv.last_seq,
                    "updated_at": conv.updated_at, "created_at": conv.created_at})
    return out


def list_conversations(user_id: int, limit: int = 50, cursor: str | None = None) -> dict:
    """The caller's conversations, most recently active first."""
    class_ids = member_class_ids(user_id)
    ensure_class_conversations(class_ids)
    mine = policy.direct_conversations_of(user_id)
    query = Conversation.select().where(Conversation.id.in_(mine) | Conversation.school_class.in_(class_ids))
    position = decode_cursor(cursor)
    if position is not None:
        try:
            at, last_id = dt.datetime.fromisoformat(position[0]), int(position[1])
        except (TypeError, ValueError, IndexError, KeyError):
            raise ValidationError("Not a valid cursor.", fields={"cursor": ["Not a valid cursor."]}) from None
        query = query.where((Conversation.updated_at < at)
                            | ((Conversation.updated_at == at) & (Conversation.id < last_id)))
    rows = list(query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1].updated_at.isoformat(), rows[-1].id]) if more else None
    return {"items": conversation_views(user_id, rows), "next_cursor": next_cursor}


# --- history ----------------------------------------------------------------------------------
def _page_position(before, after, cursor) -> tuple[int | None, int | None]:
    if cursor:
        position = decode_cursor(cursor)
        if not (isinstance(position, dict) and len(position) == 1 and position.keys() <= {"before", "after"}
                and isinstance(next(iter(position.values())), int)):
            raise ValidationError("Not a valid cursor.", fields={"cursor": ["Not a valid cursor."]})
        if before is not None or after is not None:
            raise ValidationError("Give a cursor or before/after, not both.", fields={"cursor": ["Not with before/after."]})
        before, after = position.get("before"), position.get("after")
    if before is not None and after is not None:
        raise ValidationError("Give before or after, not both.", fields={"after": ["Not with before."]})
    return before, after


def _page(conv: Conversation, before, after, limit: int, cursor) -> tuple[list[Message], str | None]:
    before, after = _page_position(before, after, cursor)
    query = Message.select().where(Message.conversation == conv.id)
    if after is not None:
        query = query.where(Message.seq > after).order_by(Message.seq.asc())
    else:
        if before is not None:
            query = query.where(Message.seq < before)
        query = query.order_by(Message.seq.desc())
    rows = list(query.limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        next_cursor = encode_cursor({"after": rows[-1].seq} if after is not None else {"before": rows[-1].seq})
    return rows, next_cursor


def history(conv: Conversation, before: int | None = None, after: int | None = None, limit: int = 50,
            cursor: str | None = None) -> dict:
    """Newest first (optionally ``before`` a seq); oldest first ``after`` a seq (offline catch-up)."""
    rows, next_cursor = _page(conv, before, after, limit, cursor)
    return {"items": message_views(rows), "next_cursor": next_cursor}


# --- sending ----------------------------------------------------------------------------------
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


def _advance_read(conversation_id: int, user_id: int, seq: int, ts: dt.datetime) -> None:
    """Raise a read mark to ``seq`` (never lower it): one upsert."""
    excluded = pw.EXCLUDED.up_to_seq
    ReadMark.insert(conversation=conversation_id, user=user_id, up_to_seq=seq, updated_at=ts).on_conflict(
        conflict_target=[ReadMark.conversation, ReadMark.user],
        update={ReadMark.up_to_seq: Case(None, [(ReadMark.up_to_seq < excluded, excluded)], ReadMark.up_to_seq),
                ReadMark.updated_at: ts},
    ).execute()


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
    if conv.kind == "class" and conv.announcement_only and not permissions.is_teacher_of_class(user_id, conv.school_class_id):
        raise Forbidden("Only the teachers post in this channel.")
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
                            atts = _claimable_attachments(user_id, attachment_ids)
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
    _advance_read(conv.id, user_id, msg.seq, ts)  # one has read what one writes (outside the critical section)
    view["notice"] = _after_send(conv, msg, user_id, ts, teachers)
    return view, True


def _claimable_attachments(user_id: int, attachment_ids: list[int]) -> list[Attachment]:
    """The caller's uploaded files not sent yet, locked, in the order given; 422 otherwise."""
    query = Attachment.select().where(Attachment.id.in_(attachment_ids) & (Attachment.uploader == user_id)
                                      & Attachment.message.is_null() & Attachment.deleted_at.is_null())
    atts = list(query.for_update() if is_postgres() else query)
    if len(atts) != len(attachment_ids):
        raise ValidationError("An attachment is not yours to send or was sent already.",
                              fields={"attachments": ["Upload each file first; a file is sent once."]})
    order = {a: i for i, a in enumerate(attachment_ids)}
    return sorted(atts, key=lambda a: order[a.id])


def _after_send(conv: Conversation, msg: Message, sender_id: int, ts: dt.datetime,
                teachers: set[int]) -> dict | None:
    """Office hours now (the sender's note); pushes in a job. Never fails the send: the message
    is stored and delivered already."""
    try:
        silent_for, notice = set(), None
        if sender_id not in teachers:
            silent_for, notice = _office_hours_effect(conv, sorted(teachers), ts)
        from . import jobs

        jobs_mod.enqueue(jobs.push_new_message, msg.id, sorted(silent_for), queue="high",
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


def _office_hours_effect(conv: Conversation, teacher_ids: list[int], ts: dt.datetime) -> tuple[set[int], dict | None]:
    """Teachers outside their office hours get a silent push; the guardian gets a note."""
    slots = office_hours_of(teacher_ids)
    if not slots:
        return set(), None
    tz = roster.school_timezone(conv.school_id)
    outside = {t for t, s in slots.items() if s and not officehours.is_within(s, tz, ts)}
    if not outside:
        return set(), None
    starts = [(officehours.next_start(slots[t], tz, ts), t) for t in outside]
    starts = [(s, t) for s, t in starts if s is not None]
    start, teacher = min(starts) if starts else (None, None)
    text = "Tin nhắn đã được gửi ngoài giờ hỗ trợ phụ huynh của giáo viên."
    if start is not None:
        text += f" Giáo viên sẽ phản hồi từ giờ hỗ trợ tiếp theo: {officehours.describe(start, tz)}."
    return outside, {"kind": "outside_office_hours", "text": text, "next_office_hour": start, "teacher_id": teacher}


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


# --- edit, delete, report -----------------------------------------------------------------------
def _own_message(user_id: int, conv: Conversation, message_id, ts: dt.datetime) -> Message:
    msg = (Message.get_or_none((Message.id == int(message_id)) & (Message.conversation == conv.id))
           if _valid_id(message_id) else None)
    if msg is None:
        raise NotFound("No such message.")
    if msg.sender_id != user_id:
        raise Forbidden("Only the sender can change a message.")
    if ts - msg.created_at > EDIT_WINDOW:
        raise Forbidden("A message can be changed for 15 minutes after it was sent.")
    return msg


def edit_message(user_id: int, conv: Conversation, message_id, body, when: dt.datetime | None = None) -> dict:
    ts = when or now()
    with write_transaction():
        msg = _own_message(user_id, conv, message_id, ts)
        if msg.deleted_at is not None:
            raise Conflict("The message was deleted.")
        has_files = Attachment.select().where((Attachment.message == msg.id) & Attachment.deleted_at.is_null()).exists()
        msg.body = check_body(body, has_files)
        msg.edited_at = ts
        Message.update(body=msg.body, edited_at=ts).where(Message.id == msg.id).execute()
    view = message_view(msg)
    deliver(member_ids(conv), "message:updated", {"message": message_payload(view)}, ordered=True)
    return view


def delete_message(user_id: int, conv: Conversation, message_id, when: dt.datetime | None = None) -> dict:
    """The body and files go; a tombstone (``deleted: true``) keeps the seq in place."""
    ts = when or now()
    with write_transaction():
        msg = (Message.get_or_none((Message.id == int(message_id)) & (Message.conversation == conv.id))
               if _valid_id(message_id) else None)
        if msg is not None and msg.deleted_at is not None and msg.sender_id == user_id:
            return message_view(msg)  # deleting twice is fine
        msg = _own_message(user_id, conv, message_id, ts)
        files = list(Attachment.select().where((Attachment.message == msg.id) & Attachment.deleted_at.is_null()))
        Message.update(body="", deleted_at=ts).where(Message.id == msg.id).execute()
        if files:
            Attachment.update(deleted_at=ts).where(Attachment.id.in_([a.id for a in files])).execute()
    for att in files:
        storage_mod.storage().delete(att.storage_key)
    msg = Message.get_by_id(msg.id)
    view = message_view(msg)
    deliver(member_ids(conv), "message:updated", {"message": message_payload(view)}, ordered=True)
    return view


def report_message(user_id: int, conv: Conversation, message_id, reason: str,
                   when: dt.datetime | None = None) -> tuple[MessageReport, bool]:
    """A member reports someone else's message to the school admin (once per message and member)."""
    msg = (Message.get_or_none((Message.id == int(message_id)) & (Message.conversation == conv.id))
           if _valid_id(message_id) else None)
    if msg is None:
        raise NotFound("No such message.")
    if msg.sender_id == user_id:
        raise ValidationError("You cannot report your own message.", fields={"message_id": ["Your own message."]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say what is wrong.", fields={"reason": ["Required."]})
    existing = MessageReport.get_or_none((MessageReport.message == msg.id) & (MessageReport.reporter == user_id))
    if existing is not None:
        return existing, False
    try:
        with write_transaction():
            report = MessageReport.create(message=msg.id, conversation=conv.id, school=conv.school_id,
                                          reporter=user_id, reason=reason, body_snapshot=msg.body,
                                          sender_id_snapshot=msg.sender_id, created_at=when or now())
    except pw.IntegrityError:
        return MessageReport.get((MessageReport.message == msg.id) & (MessageReport.reporter == user_id)), False
    try:
        admins = [row.user_id for row in roster.staff_query(conv.school_id, "admin")]
        if admins:
            notifications.notify(admins, "message", "Tin nhắn bị báo cáo",
                                 "Một phụ huynh hoặc giáo viên đã báo cáo một tin nhắn.",
                                 data={"type": "message_report", "id": str(report.id)})
    except Exception:  # noqa: BLE001 - the report is stored; admins also list them
        log.exception("report notification failed")
    return report, True


def reports_for_school(user_id: int, school_id, limit: int = 50, cursor: str | None = None) -> dict:
    from service.pagination import paginate_by_id

    school_id = permissions.school_for(user_id, school_id, ("admin",))
    return paginate_by_id(MessageReport.select().where(MessageReport.school == school_id), MessageReport.id,
                          limit, cursor, newest_first=True)


# --- read receipts ----------------------------------------------------------------------------
def mark_read(user_id: int, conv: Conversation, up_to_seq: int, when: dt.datetime | None = None) -> int:
    """Raise the caller's read mark (never lowers it; capped at the last message). Emits ``message:read``
    to the members who may see this mark (``activity_audience``)."""
    if isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
        raise ValidationError("up_to_seq is a seq number.", fields={"up_to_seq": ["A whole number ≥ 0."]})
    ts = when or now()
    with write_transaction():
        last_seq = Conversation.select(Conversation.last_seq).where(Conversation.id == conv.id).scalar() or 0
        target = min(up_to_seq, last_seq)
        current = ReadMark.select(ReadMark.up_to_seq).where(
            (ReadMark.conversation == conv.id) & (ReadMark.user == user_id)).scalar() or 0
        if target <= current:
            return current
        _advance_read(conv.id, user_id, target, ts)
    deliver(activity_audience(conv, user_id), "message:read",
            {"conversation_id": str(conv.id), "user_id": str(user_id), "up_to_seq": target})
    return target


def receipts(user_id: int, conv: Conversation, before: int | None = None, after: int | None = None,
             limit: int = 50, cursor: str | None = None) -> dict:
    """Each member's read mark and, per message, "seen by N of M" (M: the members but the sender).

    In class channels a guardian sees the counts and the teachers' marks, not other families' marks.
    """
    members, teachers = members_and_teachers(conv)
    marks = {m.user_id: m.up_to_seq for m in ReadMark.select(ReadMark.user, ReadMark.up_to_seq)
             .where((ReadMark.conversation == conv.id) & ReadMark.user.in_(members))} if members else {}
    rows, next_cursor = _page(conv, before, after, limit, cursor)
    items = []
    for msg in rows:
        others = [u for u in members if u != msg.sender_id]
        items.append({"message_id": msg.id, "seq": msg.seq, "sender_id": msg.sender_id,
                      "seen_by": sum(1 for u in others if marks.get(u, 0) >= msg.seq), "of": len(others)})
    visible = activity_audience(conv, user_id, members, teachers)  # the same rule as the live events
    return {"conversation_id": conv.id, "member_count": len(members),
            "reads": [{"user_id": u, "up_to_seq": marks.get(u, 0)} for u in visible],
            "items": items, "next_cursor": next_cursor}


# --- attachments ------------------------------------------------------------------------------
UPLOAD_QUOTA_WINDOW = dt.timedelta(days=1)


def _check_upload_quota(user_id: int, size: int, ts: dt.datetime) -> None:
    """At most ``upload_quota_bytes_per_day`` uploaded by one user over the last 24 hours (files
    deleted since, sent or not, still count); over it, 429 with the wait until enough has aged out."""
    quota = current_app.config["LIENLAC"].upload_quota_bytes_per_day
    since = ts - UPLOAD_QUOTA_WINDOW
    rows = list(Attachment.select(Attachment.size, Attachment.created_at)
                .where((Attachment.uploader == user_id) & (Attachment.created_at > since))
                .order_by(Attachment.created_at))
    used = sum(r.size for r in rows)
    if used + size <= quota:
        return
    free_at = ts + UPLOAD_QUOTA_WINDOW
    for row in rows:  # the oldest uploads leave the window first
        used -= row.size
        if used + size <= quota:
            free_at = row.created_at + UPLOAD_QUOTA_WINDOW
            break
    retry_after = max(1, int((free_at - ts).total_seconds()) + 1)
    raise RateLimited(f"You have uploaded {quota} bytes in the last 24 hours; try again later.",
                      headers={"Retry-After": str(retry_after)})


def store_attachment(user_id: int, data: bytes, filename: str | None, when: dt.datetime | None = None) -> Attachment:
    """Keep an uploaded file (JPEG, PNG, WebP or PDF by its content; at most ``max_upload_bytes``).

    Only people of a school upload (a staff role or a linked child; others 403), within their
    daily quota (429). A file never sent is deleted after ``unsent_attachment_seconds``
    (``purge_unsent_attachments``)."""
    if not policy.may_upload(user_id):
        raise Forbidden("Only the school's staff and families can upload files.")
    limit = current_app.config["LIENLAC"].max_upload_bytes
    if not data:
        raise ValidationError("The file is empty.", fields={"file": ["Empty file."]})
    if len(data) > limit:
        raise ValidationError(f"The file is larger than {limit} bytes.", fields={"file": [f"At most {limit} bytes."]})
    content_type = storage_mod.sniff(data)
    if content_type is None:
        raise ValidationError("Only JPEG, PNG, WebP images and PDF documents can be sent.",
                              fields={"file": ["Not a JPEG, PNG, WebP or PDF file."]})
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "").strip()[:200]
    ts = when or now()
    _check_upload_quota(user_id, len(data), ts)
    key = storage_mod.new_key(ts)
    store = storage_mod.storage()
    store.put(key, data, content_type)
    try:
        att = Attachment.create(uploader=user_id, content_type=content_type, size=len(data), filename=name,
                                storage_key=key, sha256=hashlib.sha256(data).hexdigest(), created_at=ts)
    except Exception:
        store.delete(key)
        raise
    _schedule_purge()
    return att


def _schedule_purge() -> None:
    """A purge job for when this upload expires (wall clock: RQ's scheduler runs on it)."""
    from . import jobs

    ttl = dt.timedelta(seconds=current_app.config["LIENLAC"].unsent_attachment_seconds)
    try:
        jobs.schedule_purge(utcnow() + ttl)
    except Exception:  # noqa: BLE001 - the file is stored; a later upload's purge deletes it if unsent
        log.warning("could not schedule the purge of unsent attachments", exc_info=True)


def attachment_for(user_id: int, attachment_id) -> Attachment:
    """The uploader until it is sent; then the members of the conversation it was sent to. 404 otherwise."""
    att = Attachment.get_or_none(Attachment.id == int(attachment_id)) if _valid_id(attachment_id) else None
    if att is None or att.deleted_at is not None:
        raise NotFound("No such attachment.")
    if att.message_id is None:
        if att.uploader_id != user_id:
            raise NotFound("No such attachment.")
        return att
    msg = Message.get_or_none(Message.id == att.message_id)
    if msg is None or msg.deleted_at is not None:
        raise NotFound("No such attachment.")
    conv = Conversation.get_or_none(Conversation.id == msg.conversation_id)
    if conv is None or not is_member(conv, user_id):
        raise NotFound("No such attachment.")
    return att


def attachment_bytes(att: Attachment) -> bytes:
    return storage_mod.storage().get(att.storage_key)


def purge_unsent_attachments(when: dt.datetime | None = None, batch: int = 500) -> int:
    """Delete the files uploaded more than ``unsent_attachment_seconds`` ago and never sent.

    The row stays, marked deleted (it still counts toward the uploader's quota and can no longer be
    sent: ``_claimable_attachments`` skips deleted rows); the bytes go. Each row is marked with a
    conditional update, so a file being sent at this moment is either sent or purged, never both.
    Returns how many were deleted.
    """
    ts = when or now()
    cutoff = ts - dt.timedelta(seconds=current_app.config["LIENLAC"].unsent_attachment_seconds)
    store = storage_mod.storage()
    purged = 0
    while True:
        rows = list(Attachment.select(Attachment.id, Attachment.storage_key)
                    .where(Attachment.message.is_null() & Attachment.deleted_at.is_null()
                           & (Attachment.created_at < cutoff))
                    .order_by(Attachment.id).limit(batch))
        for row in rows:
            marked = Attachment.update(deleted_at=ts).where(
                (Attachment.id == row.id) & Attachment.message.is_null() & Attachment.deleted_at.is_null()).execute()
            if marked:
                store.delete(row.storage_key)
                purged += 1
        if len(rows) < batch:
            return purged


# --- office hours -----------------------------------------------------------------------------
def office_hours_of(teacher_ids: Iterable[int]) -> dict[int, list[tuple[int, int, int]]]:
    ids = list(teacher_ids)
    out: dict[int, list[tuple[int, int, int]]] = collections.defaultdict(list)
    if ids:
        for row in OfficeHour.select().where(OfficeHour.teacher.in_(ids)).order_by(
                OfficeHour.weekday, OfficeHour.start_minute):
            out[row.teacher_id].append((row.weekday, row.start_minute, row.end_minute))
    return dict(out)


def set_office_hours(user_id: int, slots: list[dict]) -> list[tuple[int, int, int]]:
    """Replace a teacher's weekly office hours (``[{weekday 1-7, start "HH:MM", end "HH:MM"}]``)."""
    permissions.require_staff_role(user_id, ("teacher",))
    parsed = set()
    for i, slot in enumerate(slots):
        try:
            start, end = officehours.parse_hhmm(slot["start"]), officehours.parse_hhmm(slot["end"])
        except (ValueError, KeyError):
            raise ValidationError("Times are HH:MM.", fields={"slots": {i: ["Times are HH:MM."]}}) from None
        if not 1 <= int(slot["weekday"]) <= 7 or start >= end:
            raise ValidationError("A slot starts before it ends, on weekday 1 (Monday) to 7 (Sunday).",
                                  fields={"slots": {i: ["start < end; weekday 1-7."]}})
        parsed.add((int(slot["weekday"]), start, end))
    with write_transaction():
        OfficeHour.delete().where(OfficeHour.teacher == user_id).execute()
        if parsed:
            OfficeHour.insert_many([{"teacher": user_id, "weekday": d, "start_minute": s, "end_minute": e}
                                    for d, s, e in sorted(parsed)]).on_conflict_ignore().execute()
    return office_hours_of([user_id]).get(user_id, [])
