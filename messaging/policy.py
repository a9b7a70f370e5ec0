"""Who may do what in messaging: membership, posting, editing, uploads, reports and office hours,
built on ``service/permissions.py``. Logic asks it; the ``require_*`` functions raise ``NotFound``
(404: the caller may not know it exists) or ``Forbidden`` (403: the caller's role never may).

Membership follows the roster live. A class channel's members are the class's teachers and the
guardians of its students (read from the roster). A direct conversation stores the people it was
opened between (``Participant``), but a stored participant is a member only while they still have
a roster relation to the conversation's student: a guardian still linked to the student, a teacher
still teaching the student's current class (homeroom or subject) with the teacher role in the
student's school (``permissions.student_relation_exprs``). Nobody else was ever a participant:
``open_direct`` admits the student's guardians and teachers only. A former member gets 404
everywhere and no events or pushes; linked again, they find the conversation again.

Each membership function is one query, whatever the number of conversations: the conversation
list asks ``direct_conversations_of`` (a subquery of its page query) and ``direct_members_named``
once for the whole page (on PostgreSQL both are parts of the list's one statement, ``list_json``).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

import peewee
from flask import current_app, has_app_context

from service import permissions
from service.roster import queries as roster_queries
from service.accounts.models import User
from service.db import db, is_postgres, release
from service.errors import Forbidden, NotFound
from service.gather import Gatherer, Waiting, per_app
from service.prepared import Prepared, among, any_of

from .limits import EDIT_WINDOW
from .models import Attachment, Conversation, Message, OfficeHour, Participant

_MAX_ID = 2**63


def valid_id(value) -> bool:
    """An id a client sent that can name a row (a positive 64-bit integer)."""
    try:
        return 0 < int(value) < _MAX_ID
    except (TypeError, ValueError):
        return False


def _relations():
    return permissions.student_relation_exprs(Participant.user, Conversation.student)


def _direct_members_query(conversation_ids, *columns):
    """The current members of direct conversations: ``conversation_ids`` a list, or a parameter of
    a prepared query (a list of ids either way)."""
    guardian, teacher = _relations()
    return (Participant.select(Participant.conversation, Participant.user, teacher.alias("is_teacher"), *columns)
            .join(Conversation, on=(Participant.conversation == Conversation.id))
            .where(among(Participant.conversation, conversation_ids) & (Conversation.kind == "direct") & (guardian | teacher))
            .order_by(Participant.id))


_DIRECT_MEMBERS = Prepared("direct_members", lambda p: _direct_members_query(p.ids).tuples())


def direct_members(conversation_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """``{conversation_id: [(user_id, "teacher"|"guardian"), ...]}``: the current members of these
    direct conversations, in the order they joined (one query, prepared: the send path asks it
    for every message)."""
    ids = sorted({int(c) for c in conversation_ids})
    out: dict[int, list[tuple[int, str]]] = {c: [] for c in ids}
    if ids:
        for conversation_id, user_id, is_teacher in _DIRECT_MEMBERS.run(ids=ids):
            out[conversation_id].append((user_id, "teacher" if is_teacher else "guardian"))
    return out


def direct_members_named_query(conversations):
    """The current members of direct conversations with their names, in the order they joined:
    ``conversation_id, user_id, is_teacher, name`` (and ``pid``, the order). ``conversations``: a
    list of ids, a parameter of a prepared query, or a subquery of ids. Each member's two roster
    tests (``_relations``) are evaluated once per participant, in a subquery the planner may not
    flatten (``OFFSET 0``): flattened, the teacher test ran twice, in the filter and the column."""
    guardian, teacher = _relations()
    tested = (Participant.select(Participant.id.alias("pid"), Participant.conversation.alias("conversation_id"),
                                 Participant.user.alias("user_id"), guardian.alias("is_guardian"),
                                 teacher.alias("is_teacher"), User.name.alias("name"))
              .join(Conversation, on=(Participant.conversation == Conversation.id))
              .join_from(Participant, User, on=(User.id == Participant.user))
              .where(among(Participant.conversation, conversations) & (Conversation.kind == "direct"))
              .offset(0).alias("tested"))
    return (peewee.Select([tested], [tested.c.conversation_id, tested.c.user_id, tested.c.is_teacher, tested.c.name,
                                     tested.c.pid])
            .where(tested.c.is_guardian | tested.c.is_teacher).order_by(tested.c.pid).bind(db))


_DIRECT_MEMBERS_NAMED = Prepared("direct_members_named", lambda p: direct_members_named_query(p.ids).tuples())


def direct_members_named(conversation_ids: Iterable[int]) -> dict[int, list[tuple[int, str, str]]]:
    """As ``direct_members``, with each member's name: ``(user_id, role, name)`` (one query)."""
    ids = sorted({int(c) for c in conversation_ids})
    out: dict[int, list[tuple[int, str, str]]] = {c: [] for c in ids}
    if ids:
        for conversation_id, user_id, is_teacher, name, _pid in _DIRECT_MEMBERS_NAMED.raw(ids=ids):
            out[conversation_id].append((user_id, "teacher" if is_teacher else "guardian", name))
    return out


def _conversation_with_direct_members(ids):
    guardian, teacher = _relations()
    keeps_hours = peewee.fn.EXISTS(OfficeHour.select(OfficeHour.id).where(OfficeHour.teacher == Participant.user))
    return (Conversation.select(Conversation, Participant.user.alias("member_id"), teacher.alias("member_is_teacher"),
                                keeps_hours.alias("member_keeps_hours"))
            .join(Participant, peewee.JOIN.LEFT_OUTER,
                  on=((Participant.conversation == Conversation.id) & (Conversation.kind == "direct")
                      & (guardian | teacher)))
            .where(ids(Conversation.id)).order_by(Conversation.id, Participant.id).objects())


_CONVERSATION_WITH_DIRECT_MEMBERS = Prepared("conversation_with_direct_members",
                                             lambda p: _conversation_with_direct_members(lambda f: f == p.id))
_CONVERSATIONS_WITH_DIRECT_MEMBERS = Prepared("conversations_with_direct_members",
                                              lambda p: _conversation_with_direct_members(lambda f: any_of(f, p.ids)))


def _with_members(rows) -> tuple[Conversation | None, list[tuple[int, str]], set[int]]:
    if not rows:
        return None, [], set()
    members = [(r.member_id, "teacher" if r.member_is_teacher else "guardian") for r in rows if r.member_id is not None]
    keeping = {r.member_id for r in rows if r.member_id is not None and r.member_is_teacher and r.member_keeps_hours}
    return rows[0], members, keeping


def _read_alone(item: Waiting):
    return _with_members(_CONVERSATION_WITH_DIRECT_MEMBERS.run(id=item.value))


def _read_together(items: list[Waiting]) -> None:
    rows: dict[int, list] = {}
    for row in _CONVERSATIONS_WITH_DIRECT_MEMBERS.run(ids=sorted({i.value for i in items})):
        rows.setdefault(row.id, []).append(row)
    for item in items:
        item.outcome = _with_members(rows.get(item.value, []))


def conversation_with_direct_members(conversation_id) -> tuple[Conversation | None, list[tuple[int, str]], set[int]]:
    """A conversation named by a client and, for a direct one, its current members as
    ``direct_members`` gives them (none for a class channel), and which of its teachers keep
    office hours (the others are never outside them): one query, prepared (the send path asks it
    for every message). On PostgreSQL in a web process, the reads of concurrent sends are
    gathered (``service.gather``): one query for those arriving while one is in flight."""
    if not valid_id(conversation_id):
        return None, [], set()
    item = Waiting(int(conversation_id))
    if not (has_app_context() and is_postgres()) or db.in_transaction():
        return _read_alone(item)
    return per_app(current_app, "lienlac_membership_reads",
                   lambda: Gatherer(_read_alone, _read_together, limit=200, release=release)).submit(item)


def is_direct_member(conversation_id: int, user_id: int) -> bool:
    guardian, teacher = _relations()
    return (Participant.select(Participant.id)
            .join(Conversation, on=(Participant.conversation == Conversation.id))
            .where((Participant.conversation == int(conversation_id)) & (Participant.user == int(user_id))
                   & (guardian | teacher))
            .exists())


def direct_conversations_of(user_id: int):
    """A subquery of the ids of the direct conversations the user is a member of now."""
    guardian, teacher = _relations()
    return (Participant.select(Participant.conversation)
            .join(Conversation, on=(Participant.conversation == Conversation.id))
            .where((Participant.user == int(user_id)) & (guardian | teacher)))


# --- conversations -------------------------------------------------------------------------------
_MEMBER_CONVERSATION = Prepared("member_conversation", lambda p: Conversation.select().where(
    (Conversation.id == p.conversation)
    & (Conversation.id.in_(direct_conversations_of(p.user))
       | ((Conversation.kind == "class")
          & Conversation.school_class.in_(roster_queries.member_class_ids_query(p.user))))).limit(1))


def member_conversation(user_id: int, conversation_id) -> Conversation | None:
    """The conversation if the caller is in it now (``is_member``'s rule), else None: one query
    (the row and the membership test together)."""
    if not valid_id(conversation_id):
        return None
    rows = _MEMBER_CONVERSATION.run(user=int(user_id), conversation=int(conversation_id))
    return rows[0] if rows else None


def is_member(conv: Conversation, user_id: int) -> bool:
    """In the conversation now: a class channel's teachers and guardians, a direct conversation's
    participants still related to its student."""
    if conv.kind == "class":
        try:
            _klass, access = permissions.class_access(user_id, conv.school_class_id, guardians=True)
        except NotFound:
            return False
        return access.teacher or access.guardian
    return is_direct_member(conv.id, user_id)


def require_member(user_id: int, conv: Conversation | None) -> Conversation:
    """The conversation if the caller is in it now; 404 otherwise (they must not learn it exists)."""
    if conv is None or not is_member(conv, user_id):
        raise NotFound("No such conversation.")
    return conv


def require_class_member(user_id: int, class_id) -> int:
    """A class whose channel the caller belongs to (a teacher of it or a guardian in it): its id; 404 otherwise."""
    if not valid_id(class_id):
        raise NotFound("No such class.")
    try:
        _klass, access = permissions.class_access(user_id, int(class_id), guardians=True)
    except NotFound:
        raise NotFound("No such class.") from None
    if not (access.teacher or access.guardian):
        raise NotFound("No such class.")
    return int(class_id)


def require_may_talk_about(user_id: int, student_id):
    """The student, if the caller may open a conversation about them: a guardian or a teacher of the
    student (others who may see the student, the school's cafeteria staff or admin, get 403; anyone
    else 404)."""
    student, access = permissions.student_access(user_id, student_id)
    if not (access.guardian or access.teacher):
        raise Forbidden("Only the student's guardians and teachers can open a conversation about them.")
    return student


def require_may_moderate(user_id: int, conv: Conversation) -> None:
    """Only the class's teachers change a class channel (announcement-only)."""
    if not permissions.is_teacher_of_class(user_id, conv.school_class_id):
        raise Forbidden("Only the class's teachers can change this.")


def require_may_post(user_id: int, conv: Conversation) -> None:
    """A member posts, except a guardian in an announcement-only class channel."""
    if conv.kind == "class" and conv.announcement_only and not permissions.is_teacher_of_class(user_id, conv.school_class_id):
        raise Forbidden("Only the teachers post in this channel.")


# --- messages -------------------------------------------------------------------------------------
def require_may_change(user_id: int, msg: Message, ts: dt.datetime) -> None:
    """Only the sender edits or deletes a message, within ``EDIT_WINDOW`` of sending it."""
    if msg.sender_id != user_id:
        raise Forbidden("Only the sender can change a message.")
    if ts - msg.created_at > EDIT_WINDOW:
        raise Forbidden("A message can be changed for 15 minutes after it was sent.")


def require_report_reader(user_id: int, school_id) -> int:
    """The school whose reported messages the caller reads: its admin only (the school's id)."""
    return permissions.school_for(user_id, school_id, ("admin",))


# --- attachments ----------------------------------------------------------------------------------
def require_uploader(user_id: int) -> None:
    """Only people of a school upload files: a staff role somewhere, or a linked child."""
    if not permissions.has_any_role(user_id):
        raise Forbidden("Only the school's staff and families can upload files.")


def require_may_see_attachment(user_id: int, att: Attachment | None) -> Attachment:
    """The uploader until it is sent; then the members of the conversation it was sent to. 404 otherwise."""
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


# --- office hours ---------------------------------------------------------------------------------
def require_teacher(user_id: int) -> None:
    """Office hours are a teacher's (a teacher role in some school; 403 otherwise)."""
    permissions.require_staff_role(user_id, ("teacher",))
