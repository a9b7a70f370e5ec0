"""messages.MessageBodies: a notification's message encoded once, then only the token, badge, id and
data block put in: the same JSON as firebase-admin's own encoding of every message."""
from __future__ import annotations

import json

import pytest
from firebase_admin import messaging

from notifications import messages
from notifications.models import Notification


# --- templates: the same JSON as firebase-admin's encoding ----------------------------------------
def _notes():
    data = {"type": "announcement", "id": "9", "students": [{"id": "1", "name": "Học sinh 1"}], "none": None}
    long = "Thông báo " * 40
    for i, (title, body, collapse, silent, urgent, inbox) in enumerate([
            ("Thông báo nghỉ học", "Trường nghỉ học ngày mai do bão.", "announcement-9", False, False, True),
            ("Tin nhắn mới", "Cô giáo: \"con\" \\ đã đến", None, False, False, True),
            ("Khẩn", long, None, False, True, True),
            ("", "", "conversation:" + "x" * 80, True, False, False),
            ("title \ue000 987654321", "body", None, True, True, True)]):
        for user in range(3):
            yield Notification(id=1000 + 10 * i + user, user=user + 1, category=["announcement", "message"][i % 2],
                               title=title, body=body, collapse_key=collapse, silent=silent, urgent=urgent,
                               in_inbox=inbox, data=json.dumps({**data, "students": [{"id": str(user)}]}))


@pytest.mark.parametrize("badge", [0, 1, 42])
def test_template_bodies_are_firebase_admin_encoding(badge):
    encode = messaging._MessagingService.encode_message  # pylint: disable=protected-access
    bodies = messages.MessageBodies()
    for note in _notes():
        token = f"tok:{note.id}-\"x\""
        ours = json.loads(bodies.body(note, token, badge))
        theirs = json.loads(json.dumps({"message": encode(messages.build_message(note, token, badge))}))
        assert ours == theirs
        key = note.collapse_key or f"n{note.id}"
        assert ours["message"]["android"]["collapse_key"] == key
        assert ours["message"]["apns"]["headers"]["apns-collapse-id"] == key[:64]
        assert ours["message"]["token"] == token and ours["message"]["apns"]["payload"]["aps"]["badge"] == badge
    assert bodies.templates == 5 and bodies.full == 3  # the text holding placeholders: encoded in full
