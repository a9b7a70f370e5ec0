"""Socket.IO: ``message:send``, ``message:read`` and ``typing`` from clients; the rooms a socket joins.

A socket joins ``conversation:<id>`` for every conversation its user is in when it connects
(``on_connect`` hook). Conversations that appear later reach its sockets through
``logic.join_rooms`` (from whichever web process creates them) or, after a roster change, when
the user lists conversations or acts in one ("join on demand" below).
"""
from __future__ import annotations

import logging

from flask import request
from marshmallow import EXCLUDE
from marshmallow import ValidationError as SchemaError

from service import presence, realtime
from service.apidocs import socket_event
from service.db import connection
from service.errors import ApiError, ValidationError
from service.realtime import socketio, socket_user_id

from . import logic
from .schemas import (ConversationUpdatedEvent, MessageEvent, MessageReadAck, MessageReadEvent, MessageReadPayload, MessageSendAck, MessageSendPayload,
                      TypingEvent, TypingPayload)

log = logging.getLogger("lienlac.messaging.events")

_send_schema = MessageSendPayload(unknown=EXCLUDE)
_read_schema = MessageReadPayload(unknown=EXCLUDE)
_typing_schema = TypingPayload(unknown=EXCLUDE)


def _error(exc: ApiError) -> dict:
    body = {"code": exc.code, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return {"error": body}


def _load(schema, data) -> dict:
    if not isinstance(data, dict):
        raise ValidationError("The payload is a JSON object.")
    try:
        return schema.load(data)
    except SchemaError as exc:
        raise ValidationError("The payload has invalid fields.", fields=exc.messages) from None


def _handle(func, data):
    """Run a handler with a database connection; any failure becomes an ``{error}`` acknowledgement."""
    user_id = socket_user_id()
    if user_id is None:
        return {"error": {"code": "unauthorized", "message": "Not connected."}}
    try:
        with connection():
            return func(user_id, data)
    except ApiError as exc:
        return _error(exc)
    except Exception:  # noqa: BLE001 - a socket handler never crashes the connection
        log.exception("socket handler failed", extra={"user_id": user_id})
        return {"error": {"code": "internal_error", "message": "Internal server error"}}


def _ensure_joined(conversation_id: int) -> None:
    """Join on demand: a member acting in a conversation whose room this socket is not in yet."""
    room = logic.conversation_room(conversation_id)
    if room not in (socketio.server.rooms(request.sid, namespace="/") or []):
        socketio.server.enter_room(request.sid, room, namespace="/")


# --- connect: join every conversation room of the user ---------------------------------------------
@realtime.on_connect
def _join_conversation_rooms(user_id: int, sid: str) -> None:
    # Be visible to join_rooms() before reading the conversations: a conversation committed after
    # the read below is then joined by its creator (realtime marks the socket online again later).
    presence.mark_online(user_id, sid)
    for room in logic.connect_rooms(user_id):
        socketio.server.enter_room(sid, room, namespace="/")


# --- client → server -------------------------------------------------------------------------------
@socketio.on("message:send")
def _message_send(data=None):
    def run(user_id, payload):
        body = _load(_send_schema, payload)
        conv = logic.conversation_for(user_id, body["conversation_id"])
        _ensure_joined(conv.id)
        view, _created = logic.send_message(user_id, conv, body["client_id"], body["body"], body["attachments"])
        return {"message": logic.message_payload(view)}

    return _handle(run, data)


@socketio.on("message:read")
def _message_read(data=None):
    def run(user_id, payload):
        body = _load(_read_schema, payload)
        conv = logic.conversation_for(user_id, body["conversation_id"])
        _ensure_joined(conv.id)
        return {"up_to_seq": logic.mark_read(user_id, conv, body["up_to_seq"])}

    return _handle(run, data)


@socketio.on("typing")
def _typing(data=None):
    def run(user_id, payload):
        body = _load(_typing_schema, payload)
        room = logic.conversation_room(body["conversation_id"])
        if room not in (socketio.server.rooms(request.sid, namespace="/") or []):
            conv = logic.conversation_for(user_id, body["conversation_id"])  # 404 for non-members
            _ensure_joined(conv.id)
        socketio.emit("typing", {"conversation_id": str(body["conversation_id"]), "user_id": str(user_id)},
                      to=room, skip_sid=request.sid)
        return None

    return _handle(run, data)


# --- the contract, for mobile_api_docs/asyncapi.json ------------------------------------------------
socket_event("message:send", "client", MessageSendPayload,
             "Send a message to a conversation the caller is in. Acknowledged with `{message}` (the stored "
             "message; the same `client_id` again gives the same message) or `{error: {code, message, fields?}}` "
             "(`not_found`, `forbidden` for announcement-only channels, `validation_error`).", ack=MessageSendAck)
socket_event("message:read", "client", MessageReadPayload,
             "Everything up to `up_to_seq` is read (the mark never goes back). Acknowledged with `{up_to_seq}` "
             "or `{error}`; the room gets `message:read` when the mark moved.", ack=MessageReadAck)
socket_event("typing", "client", TypingPayload,
             "The caller is typing: relayed to the conversation's other sockets as `typing`, never stored. "
             "Send at most every few seconds while typing.")
socket_event("message:new", "server", MessageEvent,
             "A new message in a conversation of the user (sent over HTTP or Socket.IO, from any web process), "
             "in `seq` order per conversation. The sender's own sockets get it too (match it by `client_id`).")
socket_event("message:updated", "server", MessageEvent,
             "A message was edited (`edited_at`) or deleted (`deleted: true`, empty body, no attachments).")
socket_event("message:read", "server", MessageReadEvent,
             "A member's read mark moved up to `up_to_seq`.")
socket_event("typing", "server", TypingEvent,
             "A member is typing in the conversation (show it for a few seconds).")
socket_event("conversation:updated", "server", ConversationUpdatedEvent,
             "A class channel became announcement-only (only teachers post) or open again.")
