"""Push messages: firebase-admin's ``Message`` of a notification for one device, and its request
body, encoded once per notification content (``MessageBodies``). Used by :mod:`notifications.push`.
"""
from __future__ import annotations

import json
import logging
import re

from firebase_admin import messaging

from .models import Notification

log = logging.getLogger("lienlac.notifications.push")

TITLE_MAX, BODY_MAX = 120, 400  # the push is the signal; the inbox has the full text


def _clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def push_data(note: Notification) -> dict[str, str]:
    """The FCM data block: string values only (see mobile_api_docs/PUSH.md)."""
    data = json.loads(note.data or "{}")
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        out[str(key)] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                            separators=(",", ":"))
    out.update({"notification_id": str(note.id), "category": note.category})
    if note.urgent:
        out["urgent"] = "1"
    if note.silent:
        out["silent"] = "1"
    if not note.in_inbox:
        out["inbox"] = "0"
    return out


def collapse_key(note: Notification) -> str:
    """The notification's own collapse key (``conversation:<id>``, ``announcement-<id>``), else
    ``n<id>``: a push resent after a crash replaces the first one on the phone."""
    return note.collapse_key or f"n{note.id}"


def build_message(note: Notification, token: str, badge: int, data: dict[str, str] | None = None) -> messaging.Message:
    """The firebase-admin message of ``note`` for one device. What it reads of ``note`` is what
    ``_template_key`` names (keep them together): ``MessageBodies`` encodes it once per key."""
    title, body = _clip(note.title, TITLE_MAX), _clip(note.body, BODY_MAX)
    silent, urgent = note.silent and not note.urgent, note.urgent
    channel = "urgent" if urgent else ("silent" if silent else "default")
    key = collapse_key(note)
    android = messaging.AndroidConfig(
        priority="normal" if silent else "high",
        collapse_key=key,
        notification=messaging.AndroidNotification(
            channel_id=channel, tag=key, notification_count=badge,
            sound=None if silent else "default", default_sound=None if silent else True,
            priority="low" if silent else ("max" if urgent else "high")))
    headers = {"apns-priority": "5" if silent else "10", "apns-push-type": "alert", "apns-collapse-id": key[:64]}
    level = "time-sensitive" if urgent else ("passive" if silent else "active")
    apns = messaging.APNSConfig(headers=headers, payload=messaging.APNSPayload(aps=messaging.Aps(
        badge=badge, sound=None if silent else "default", thread_id=note.category,
        custom_data={"interruption-level": level})))
    message = messaging.Message(notification=messaging.Notification(title=title, body=body),
                                data=push_data(note) if data is None else data, android=android, apns=apns)
    message.token = token  # set after __init__: firebase-admin 7.7 warns on token= in favour of fid=
    return message


def encode_body(message: messaging.Message) -> bytes:
    """The request body firebase-admin's own encoding makes of ``message`` (compact JSON)."""
    encode = messaging._MessagingService.encode_message  # pylint: disable=protected-access
    return json.dumps({"message": encode(message)}, separators=(",", ":")).encode()


def _template_key(note: Notification) -> tuple:
    """Everything of ``note`` that ``build_message`` reads, but its id and data."""
    return (note.title, note.body, bool(note.silent), bool(note.urgent), note.category, note.collapse_key)


# placeholders: private-use characters (json.dumps writes them as \\ue00x) and a badge no phone shows
_TOKEN, _ID, _DATA, _BADGE = "\ue000", "\ue001", "\ue002", 987654321
_SLOTS = re.compile(r'(\\ue000|\\ue001|\{"\\ue002":"\\ue002"\}|987654321)')


class _Shadow:
    """A notification seen by ``build_message`` with a placeholder for its id."""

    id = _ID

    def __init__(self, note: Notification):
        self._note = note

    def __getattr__(self, name):
        return getattr(self._note, name)


class MessageBodies:
    """Request bodies for many (notification, token, badge): firebase-admin's encoding done once
    per distinct notification content (``_template_key``), then only the token, the badge, the
    notification's id (in its default collapse key) and its data block are put in. The first body
    of every template is checked against the full encoding; a template that does not reproduce it
    (a text containing a placeholder) is not used: those messages are encoded in full."""

    def __init__(self):
        self._templates: dict[tuple, list | None] = {}
        self.templates = self.full = 0

    def body(self, note: Notification, token: str, badge: int) -> bytes:
        data = push_data(note)
        parts = None
        if type(badge) is int:  # pylint: disable=unidiomatic-typecheck  # (not a bool: encoded true/false)
            key = _template_key(note)
            parts = self._templates.get(key, False)
            if parts is False:
                parts = self._templates[key] = self._make(note, token, badge, data)
        if parts is None:
            self.full += 1
            return encode_body(build_message(note, token, badge, data))
        return self._fill(parts, note, token, badge, data)

    @staticmethod
    def _fill(parts: list, note, token: str, badge: int, data: dict) -> bytes:
        values = {_TOKEN: json.dumps(token)[1:-1], _ID: str(note.id), _DATA: json.dumps(data, separators=(",", ":")),
                  _BADGE: str(badge)}
        return "".join([values[p] if i % 2 else p for i, p in enumerate(parts)]).encode()

    def _make(self, note, token, badge, data) -> list | None:
        self.templates += 1
        try:
            text = encode_body(build_message(_Shadow(note), _TOKEN, _BADGE, {_DATA: _DATA})).decode()
        except ValueError:
            return None
        split = _SLOTS.split(text)
        parts = [split[i] if i % 2 == 0 else {'\\ue000': _TOKEN, '\\ue001': _ID, '987654321': _BADGE}.get(
            split[i], _DATA) for i in range(len(split))]
        made = self._fill(parts, note, token, badge, data)
        if made != encode_body(build_message(note, token, badge, data)):
            log.warning("push message template does not reproduce firebase-admin's encoding: encoding in full")
            return None
        return parts
