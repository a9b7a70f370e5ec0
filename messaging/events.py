"""Socket.IO: ``message:send``, ``message:read`` and ``typing`` from clients.

Sockets join no conversation rooms. Every messaging event goes to the ``user:<id>`` rooms of the
conversation's members computed from the roster when it is sent (``logic.publish.deliver``), and
every client event checks membership again (``conversations.conversation_for``; ``message:send``
through ``sending.send``, which reads it with the audience): a socket whose
user was unlinked from a child, removed from a class or school, or whose child moved class, hears
nothing more of that conversation and cannot act in it, on whichever web process it is connected, at once.
(The alternative, making sockets leave rooms on roster-change signals, would need a signal from
every roster write, imports included, and the sockets' ids on other processes; one missed path
would leak. Computing the audience per event has nothing to keep in step.)
"""
from __future__ import annotations

import logging

from flask import request
from marshmallow import EXCLUDE
from marshmallow import ValidationError as SchemaError

from service.apidocs import socket_event
from service.db import connection_if_used
from service.errors import ApiError, ValidationError
from service.realtime import socketio, socket_user_id

from .logic import conversations, receipts, sending
from .logic.publish import message_payload
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
    if "Retry-After" in exc.headers:  # rate_limited: seconds to wait, as HTTP's Retry-After
        body["retry_after"] = int(exc.headers["Retry-After"])
    return {"error": body}


def _load(schema, data) -> dict:
    if not isinstance(data, dict):
        raise ValidationError("The payload is a JSON object.")
    try:
        return schema.load(data)
    except SchemaError as exc:
        raise ValidationError("The payload has invalid fields.", fields=exc.messages) from None


def _handle(func, data):
    """Run a handler; any failure becomes an ``{error}`` acknowledgement.

    A connection is checked out at the handler's first statement, not before, and given back at
    its end: in a burst most ``message:send`` events need none of their own (the session check
    reads a cache, the membership read and the insert are gathered and run by another event)."""
    with connection_if_used():
        user_id = socket_user_id()
        if user_id is None:
            return {"error": {"code": "unauthorized", "message": "Not connected."}}
        try:
            return func(user_id, data)
        except ApiError as exc:
            return _error(exc)
        except Exception:  # noqa: BLE001 - a socket handler never crashes the connection
            log.exception("socket handler failed", extra={"user_id": user_id})
            return {"error": {"code": "internal_error", "message": "Internal server error"}}


# --- client → server -------------------------------------------------------------------------------
@socketio.on("message:send")
def _message_send(data=None):
    def run(user_id, payload):
        body = _load(_send_schema, payload)
        view, _created = sending.send(user_id, body["conversation_id"], body["client_id"], body["body"],
                                      body["attachments"])
        return {"message": message_payload(view)}

    return _handle(run, data)


@socketio.on("message:read")
def _message_read(data=None):
    def run(user_id, payload):
        body = _load(_read_schema, payload)
        conv = conversations.conversation_for(user_id, body["conversation_id"])
        return {"up_to_seq": receipts.mark_read(user_id, conv, body["up_to_seq"])}

    return _handle(run, data)


@socketio.on("typing")
def _typing(data=None):
    def run(user_id, payload):
        body = _load(_typing_schema, payload)
        conv = conversations.conversation_for(user_id, body["conversation_id"])  # 404 for non-members
        conversations.typing(user_id, conv, skip_sid=request.sid)
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
             "A member's read mark moved up to `up_to_seq`. In a class channel a guardian's mark goes to the "
             "teachers and the guardian's own devices only (as in `GET /conversations/{id}/receipts`).")
socket_event("typing", "server", TypingEvent,
             "A member is typing in the conversation (show it for a few seconds). In a class channel a "
             "guardian's typing reaches the teachers only.")
socket_event("conversation:updated", "server", ConversationUpdatedEvent,
             "A class channel became announcement-only (only teachers post) or open again.")
