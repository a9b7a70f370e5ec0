"""Who is in a conversation now, and who may upload: messaging's rules built on ``service/permissions.py``.

Membership follows the roster live. A class channel's members are the class's teachers and the
guardians of its students (read from the roster). A direct conversation stores the people it was
opened between (``Participant``), but a stored participant is a member only while they still have
a roster relation to the conversation's student: a guardian still linked to the student, a teacher
still teaching the student's current class (homeroom or subject) with the teacher role in the
student's school (``permissions.student_relation_exprs``). Nobody else was ever a participant:
``open_direct`` admits the student's guardians and teachers only. A former member gets 404
everywhere and no events or pushes; linked again, they find the conversation again.

Each function is one query, whatever the number of conversations.
"""
from __future__ import annotations

from typing import Iterable

from service import permissions

from .models import Conversation, Participant


def _relations():
    return permissions.student_relation_exprs(Participant.user, Conversation.student)


def direct_members(conversation_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """``{conversation_id: [(user_id, "teacher"|"guardian"), ...]}``: the current members of these
    direct conversations, in the order they joined (one query)."""
    ids = sorted({int(c) for c in conversation_ids})
    out: dict[int, list[tuple[int, str]]] = {c: [] for c in ids}
    if not ids:
        return out
    guardian, teacher = _relations()
    query = (Participant.select(Participant.conversation, Participant.user, teacher.alias("is_teacher"))
             .join(Conversation, on=(Participant.conversation == Conversation.id))
             .where(Participant.conversation.in_(ids) & (Conversation.kind == "direct") & (guardian | teacher))
             .order_by(Participant.id))
    for row in query:
        out[row.conversation_id].append((row.user_id, "teacher" if row.is_teacher else "guardian"))
    return out


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


def may_upload(user_id: int) -> bool:
    """Only people of a school upload files: a staff role somewhere, or a linked child."""
    return permissions.has_any_role(user_id)
