"""Conversations: who is in one now, class channels, direct conversations about a student, the list.

Membership follows the roster live (``messaging.policy``): it is computed when it is needed, so
a member who left the roster sees and hears nothing more.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Iterable

import peewee as pw
from peewee import fn

from service.db import db, utcnow, write_transaction
from service.errors import NotFound, ValidationError
from service.pagination import decode_cursor, encode_cursor
from service.prepared import Prepared, any_of
from service.roster import logic as roster
from service.roster import queries as roster_queries
from service.roster.models import Student

from .. import policy
from ..limits import MAX_DIRECT_PARTICIPANTS
from ..models import Conversation, Message, Participant, ReadMark
from .history import message_views
from .publish import deliver


# --- membership -------------------------------------------------------------------------------
def member_class_ids(user_id: int) -> list[int]:
    """Classes whose channel the user belongs to: the classes they teach and their children's classes
    (one query)."""
    return sorted({row[0] for row in roster_queries.member_class_ids_query(user_id).tuples()})


def missing_channels_query(p):
    """The classes whose channel the caller (``p.user``) belongs to that have no channel yet (``id``)."""
    classes = roster_queries.member_class_ids_query(p.user).alias("mc")
    return (Conversation.select(classes.c.id).from_(classes)
            .join(Conversation, pw.JOIN.LEFT_OUTER, on=(Conversation.school_class == classes.c.id))
            .where(Conversation.id.is_null()).tuples())


_MISSING_CHANNELS = Prepared("missing_channels", missing_channels_query)


def _ensure_member_channels(user_id: int) -> None:
    """Create the channels of the user's classes that have none yet (one query when all exist)."""
    ids = [row[0] for row in _MISSING_CHANNELS.run(user=int(user_id))]
    if ids:
        ensure_class_conversations(ids)


def members_and_teachers(conv: Conversation) -> tuple[list[int], set[int]]:
    """Everyone in the conversation now, and which of them are the class's teachers."""
    if conv.kind == "class":  # one query: the teachers (homeroom first), then the other guardians by id
        people = roster_queries.class_members_named([conv.school_class_id])[conv.school_class_id]
        return [u for u, _, _ in people], {u for u, role, _ in people if role == "teacher"}
    people = policy.direct_members([conv.id])[conv.id]
    return [u for u, _ in people], {u for u, role in people if role == "teacher"}


def member_ids(conv: Conversation) -> list[int]:
    """Everyone in the conversation now (read from the roster)."""
    return members_and_teachers(conv)[0]


def conversation_for(user_id: int, conversation_id) -> Conversation:
    """The conversation if the caller is in it now; 404 otherwise (they must not learn it exists)."""
    conv = policy.member_conversation(user_id, conversation_id)  # one query: the row and the membership
    if conv is None:
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
    class_id = policy.require_class_member(user_id, class_id)
    conv_id = ensure_class_conversations([class_id])[class_id]
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


def typing(user_id: int, conv: Conversation, skip_sid: str | None = None) -> None:
    """A member is typing: tell the others who may hear it (``activity_audience``), never stored."""
    deliver(activity_audience(conv, user_id), "typing",
            {"conversation_id": str(conv.id), "user_id": str(user_id)}, skip_sid=skip_sid)


# --- direct conversations ---------------------------------------------------------------------
def _participant_key(student_id: int, people: Iterable[int]) -> str:
    raw = f"{student_id}:{','.join(str(p) for p in sorted(set(people)))}"
    return hashlib.sha256(raw.encode()).hexdigest()


def open_direct(user_id: int, student_id, participant_ids: Iterable[int]) -> tuple[Conversation, bool]:
    """The conversation between these people about this student (the same one every time).

    The caller must be a guardian or a teacher of the student (``policy.require_may_talk_about``).
    The others must be the student's guardians or teachers of the student's class, and the
    conversation must hold at least one of each.
    """
    student = policy.require_may_talk_about(user_id, student_id)
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
        policy.require_may_moderate(user_id, conv)
        value = bool(changes["announcement_only"])
        Conversation.update(announcement_only=value).where(Conversation.id == conv.id).execute()
        conv = Conversation.get_by_id(conv.id)
        deliver(member_ids(conv), "conversation:updated", {"conversation_id": str(conv.id), "announcement_only": value})
    return conv


# --- reading conversations --------------------------------------------------------------------
_LAST_COLUMNS = ("id", "seq", "sender", "client_id", "body", "created_at", "edited_at", "deleted_at")


def _annotated(user_id, last_prefix: str = "last_"):
    """Conversations with what their list entry needs, in the one query of the page, as dicts: the
    conversation's columns, its last message's (``last_*``, or ``last_prefix``), the caller's unread count
    (``unread_n``: others' messages after the caller's read mark, deleted ones aside) and the
    student's name (``student_name``). Plain rows, not models: the page's hot loop."""
    last, counted, mark = Message.alias("last"), Message.alias("counted"), ReadMark.alias("mark")
    unread = (counted.select(fn.COUNT(counted.id))
              .where((counted.conversation == Conversation.id) & (counted.sender != user_id)
                     & counted.deleted_at.is_null() & (counted.seq > fn.COALESCE(mark.up_to_seq, 0))))
    return (Conversation.select(Conversation.id, Conversation.kind, Conversation.title, Conversation.student,
                                Conversation.school_class, Conversation.announcement_only, Conversation.last_seq,
                                Conversation.updated_at, Conversation.created_at,
                                *(getattr(last, c).alias(f"{last_prefix}{c}") for c in _LAST_COLUMNS),
                                unread.alias("unread_n"), Student.name.alias("student_name"))
            .join_from(Conversation, last, pw.JOIN.LEFT_OUTER,
                       on=((last.conversation == Conversation.id) & (last.seq == Conversation.last_seq)))
            .join_from(Conversation, Student, pw.JOIN.LEFT_OUTER, on=(Student.id == Conversation.student))
            .join_from(Conversation, mark, pw.JOIN.LEFT_OUTER,
                       on=((mark.conversation == Conversation.id) & (mark.user == user_id)))
            .dicts())


_BY_IDS = Prepared("conversations_annotated", lambda p: _annotated(p.user).where(any_of(Conversation.id, p.ids)))


def _last_message(row: dict):
    """The row's last message as ``message_views`` takes it (None before the first message)."""
    if row["last_id"] is None:
        return None
    return Message(conversation=row["id"], **{c: row[f"last_{c}"] for c in _LAST_COLUMNS})


def conversation_views(user_id: int, convs: list) -> list[dict]:
    """What a member sees of each conversation: title, participants (names, never phone numbers),
    last message and unread count. ``convs``: the page's rows (``_annotated``), or conversations
    loaded otherwise (re-read here). A constant number of queries for the whole page: the page
    itself, the last messages' attachments, the direct conversations' members and the class
    channels' members."""
    if not convs:
        return []
    if not all(isinstance(c, dict) for c in convs):
        by_id = {r["id"]: r for r in _BY_IDS.run(user=int(user_id), ids=[c.id for c in convs])}
        convs = [by_id[c.id] for c in convs]
    last = {c["id"]: m for c in convs if (m := _last_message(c)) is not None}
    last_views = dict(zip(last.keys(), message_views(list(last.values()))))
    direct = [c["id"] for c in convs if c["kind"] == "direct"]
    people_of = policy.direct_members_named(direct) if direct else {}
    by_class = roster_queries.class_members_named(c["school_class"] for c in convs if c["kind"] == "class")
    for conv in convs:
        if conv["kind"] == "class":
            people_of[conv["id"]] = by_class[conv["school_class"]]
    out = []
    for conv in convs:
        participants = [{"id": u, "name": name, "role": role} for u, role, name in people_of[conv["id"]]]
        if conv["kind"] == "class":
            title = conv["title"]
        else:
            others = [p["name"] for p in participants if p["id"] != user_id]
            if not others:
                others = [p["name"] for p in participants if p["id"] == user_id][:1] or [""]
            title = f"{', '.join(others)} · {conv['student_name'] or ''}"
        out.append({"id": conv["id"], "kind": conv["kind"], "title": title, "student_id": conv["student"],
                    "class_id": conv["school_class"], "announcement_only": conv["announcement_only"],
                    "participants": participants, "last_message": last_views.get(conv["id"]),
                    "unread_count": conv["unread_n"] or 0, "last_seq": conv["last_seq"],
                    "updated_at": conv["updated_at"], "created_at": conv["created_at"]})
    return out


def page_query(p, after_cursor: bool, last_prefix: str = "last_"):
    """The page of the list (``_annotated`` rows, ``p.limit`` of them, most recently active first):
    the caller's conversations now, after the cursor's position (``p.at``, ``p.last_id``) if any."""
    query = _annotated(p.user, last_prefix).where(Conversation.id.in_(policy.direct_conversations_of(p.user))
                                     | Conversation.school_class.in_(roster_queries.member_class_ids_query(p.user)))
    if after_cursor:
        query = query.where((Conversation.updated_at < p.at) | ((Conversation.updated_at == p.at)
                                                               & (Conversation.id < p.last_id)))
    return query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(p.limit)


# the page of the list, first and next (membership as subqueries: the direct conversations the
# caller is in now, ``policy.direct_conversations_of``, and the channels of the caller's classes now)
_FIRST_PAGE = Prepared("conversation_page", lambda p: page_query(p, False))
_NEXT_PAGE = Prepared("conversation_page_after", lambda p: page_query(p, True))


def page_position(cursor: str | None) -> tuple[dt.datetime, int] | None:
    """Where a ``next_cursor`` of the list resumes: ``(updated_at, id)`` of the last row shown (422 if
    it is not one), or None for the first page."""
    position = decode_cursor(cursor)
    if position is None:
        return None
    try:
        at, last_id = dt.datetime.fromisoformat(position[0]), int(position[1])
        if not 0 < last_id < 2**63:
            raise ValueError(last_id)
    except (TypeError, ValueError, IndexError, KeyError):
        raise ValidationError("Not a valid cursor.", fields={"cursor": ["Not a valid cursor."]}) from None
    return at, last_id


def page_cursor(updated_at: dt.datetime, conversation_id: int) -> str:
    """The ``next_cursor`` after a page whose last row is this one (when more rows follow)."""
    return encode_cursor([updated_at.isoformat(), conversation_id])


def list_conversations(user_id: int, limit: int = 50, cursor: str | None = None) -> dict:
    """The caller's conversations, most recently active first: the page in one query, whatever the
    number of conversations. (On PostgreSQL the HTTP list is ``list_json.page_json``: the same
    answer built by the database; the tests compare the two byte for byte.)"""
    user_id = int(user_id)
    _ensure_member_channels(user_id)
    position = page_position(cursor)
    if position is not None:
        rows = _NEXT_PAGE.run(user=user_id, at=position[0], last_id=position[1], limit=limit + 1)
    else:
        rows = _FIRST_PAGE.run(user=user_id, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = page_cursor(rows[-1]["updated_at"], rows[-1]["id"]) if more else None
    return {"items": conversation_views(user_id, rows), "next_cursor": next_cursor}
