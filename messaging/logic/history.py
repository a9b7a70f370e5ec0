"""A conversation's messages as members see them: message and attachment views, the paged history."""
from __future__ import annotations

import collections

from service.errors import ValidationError
from service.pagination import decode_cursor, encode_cursor
from service.prepared import Prepared, any_of

from .. import storage as storage_mod
from ..models import Attachment, Conversation, Message


_ATTACHMENTS = Prepared("attachments_of_messages", lambda p: Attachment.select().where(
    any_of(Attachment.message, p.ids) & Attachment.deleted_at.is_null()).order_by(Attachment.id))


def _attachments_by_message(message_ids: list[int]) -> dict[int, list[Attachment]]:
    out: dict[int, list[Attachment]] = collections.defaultdict(list)
    if message_ids:
        for att in _ATTACHMENTS.run(ids=[int(m) for m in message_ids]):
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
    for name, value in (("before", before), ("after", after)):
        if value is not None and not 0 <= value < 2**63:  # a seq is a BIGINT: past it, a 422, not a database error
            raise ValidationError("Not a valid seq.", fields={"cursor" if cursor else name: ["Not a valid seq."]})
    return before, after


def _page_query(p, direction: str):
    query = Message.select().where(Message.conversation == p.conversation)
    if direction == "after":
        query = query.where(Message.seq > p.seq).order_by(Message.seq.asc())
    else:
        if direction == "before":
            query = query.where(Message.seq < p.seq)
        query = query.order_by(Message.seq.desc())
    return query.limit(p.limit)


_PAGES = {direction: Prepared(f"history_{direction}", lambda p, d=direction: _page_query(p, d))
          for direction in ("latest", "before", "after")}


def page(conv: Conversation, before, after, limit: int, cursor) -> tuple[list[Message], str | None]:
    before, after = _page_position(before, after, cursor)
    direction, seq = ("after", after) if after is not None else ("before", before) if before is not None else ("latest", 0)
    values = {"conversation": conv.id, "limit": limit + 1} | ({"seq": int(seq)} if direction != "latest" else {})
    rows = _PAGES[direction].run(**values)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        next_cursor = encode_cursor({"after": rows[-1].seq} if after is not None else {"before": rows[-1].seq})
    return rows, next_cursor


def history(conv: Conversation, before: int | None = None, after: int | None = None, limit: int = 50,
            cursor: str | None = None) -> dict:
    """Newest first (optionally ``before`` a seq); oldest first ``after`` a seq (offline catch-up)."""
    rows, next_cursor = page(conv, before, after, limit, cursor)
    return {"items": message_views(rows), "next_cursor": next_cursor}
