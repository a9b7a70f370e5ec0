"""Editing and deleting one's own message, within ``EDIT_WINDOW`` of sending it (``message:updated``)."""
from __future__ import annotations

import datetime as dt

from service.db import write_transaction
from service.errors import Conflict, NotFound

from .. import policy
from .. import storage as storage_mod
from ..models import Attachment, Conversation, Message
from .clock import now
from .conversations import member_ids
from .history import message_view
from .publish import deliver, message_payload
from .sending import check_body


def _message_in(conv: Conversation, message_id) -> Message | None:
    return (Message.get_or_none((Message.id == int(message_id)) & (Message.conversation == conv.id))
            if policy.valid_id(message_id) else None)


def _own_message(user_id: int, conv: Conversation, message_id, ts: dt.datetime) -> Message:
    msg = _message_in(conv, message_id)
    if msg is None:
        raise NotFound("No such message.")
    policy.require_may_change(user_id, msg, ts)
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
        msg = _message_in(conv, message_id)
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
