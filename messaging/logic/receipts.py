"""Read receipts: each member's read mark (it never goes back) and "seen by N of M"."""
from __future__ import annotations

import datetime as dt

import peewee as pw
from peewee import Case

from service.db import write_transaction
from service.errors import ValidationError

from ..models import Conversation, ReadMark
from .clock import now
from .conversations import activity_audience, members_and_teachers
from .history import page
from .publish import deliver


def advance_read(conversation_id: int, user_id: int, seq: int, ts: dt.datetime) -> None:
    """Raise a read mark to ``seq`` (never lower it): one upsert."""
    excluded = pw.EXCLUDED.up_to_seq
    ReadMark.insert(conversation=conversation_id, user=user_id, up_to_seq=seq, updated_at=ts).on_conflict(
        conflict_target=[ReadMark.conversation, ReadMark.user],
        update={ReadMark.up_to_seq: Case(None, [(ReadMark.up_to_seq < excluded, excluded)], ReadMark.up_to_seq),
                ReadMark.updated_at: ts},
    ).execute()


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
        advance_read(conv.id, user_id, target, ts)
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
    rows, next_cursor = page(conv, before, after, limit, cursor)
    items = []
    for msg in rows:
        others = [u for u in members if u != msg.sender_id]
        items.append({"message_id": msg.id, "seq": msg.seq, "sender_id": msg.sender_id,
                      "seen_by": sum(1 for u in others if marks.get(u, 0) >= msg.seq), "of": len(others)})
    visible = activity_audience(conv, user_id, members, teachers)  # the same rule as the live events
    return {"conversation_id": conv.id, "member_count": len(members),
            "reads": [{"user_id": u, "up_to_seq": marks.get(u, 0)} for u in visible],
            "items": items, "next_cursor": next_cursor}
