"""The conversation list built by PostgreSQL (``messaging.logic.list_json``) against the Python path.

Every ``GET /conversations`` in the tests runs both ways on PostgreSQL and the view compares the
bytes (``LIENLAC_CHECK_FAST_DUMP``, ``messaging.api.list_conversations``): a difference is an
AssertionError, so the request fails. These tests walk the corners of the format through it:
quotes, backslashes, control characters and emoji in names, bodies and titles; timestamps with
and without microseconds (and under a millisecond); a deleted last message; attachments; a
conversation without messages; a member who left the roster; a teacher who is also a guardian
in the class; paging; a class channel created by the request itself.
"""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from messaging.logic import list_json
from messaging.models import Conversation, Message
from messaging.storage import LocalStorage
from service import db as dbmod
from service import schemas as service_schemas
from service.roster import logic as roster

from .conftest import PNG, VIETNAMESE, cid

API = "/api/v1"
ODD = 'Cô "Lan" \\ tab\there\x01\x1f ↵\u2028 😷'


def _open(client, world, caller, student, *others) -> str:
    r = client.post(f"{API}/conversations", headers=world.h(caller), json={
        "kind": "direct", "student_id": str(student.id), "participant_ids": [str(o.id) for o in others]})
    assert r.status_code in (200, 201), r.json
    return r.json["id"]


def _send(client, world, user, conv_id, body, attach=False) -> dict:
    attachments = []
    if attach:
        r = client.post(f"{API}/attachments", headers=world.h(user), data={"file": (io.BytesIO(PNG), "ả \"b\".png")},
                        content_type="multipart/form-data")
        assert r.status_code == 201, r.json
        attachments = [r.json["id"]]
    r = client.post(f"{API}/conversations/{conv_id}/messages", headers=world.h(user),
                    json={"client_id": cid() + ODD, "body": body, "attachments": attachments})
    assert r.status_code == 201, r.json
    return r.json


def _pages(client, world, user, limit) -> list[dict]:
    """Every page of the user's list (each request compared with the Python path by the view)."""
    pages, cursor = [], None
    while True:
        url = f"{API}/conversations?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url, headers=world.h(user))
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        pages.append(r.json)
        cursor = r.json["next_cursor"]
        if cursor is None:
            return pages


def test_the_database_built_list_is_the_python_paths_byte_for_byte(app, client, world):
    assert service_schemas.CHECK_FAST_DUMP  # the comparison is on (tests/conftest.py)
    with app.app_context():
        assert list_json.available() == dbmod.is_postgres()  # SQLite keeps the Python path
    odd_guardian = world.guardian(world.s1, ODD)
    roster.link_guardian(world.s2.id, world.subject_teacher.id, "father")  # a teacher who is a guardian too
    plain = _open(client, world, world.g1, world.s1, world.teacher)
    odd = _open(client, world, odd_guardian, world.s1, world.teacher, world.subject_teacher)
    silent = _open(client, world, world.g2, world.s2, world.teacher)  # no message ever
    leaving = _open(client, world, world.g2, world.s2, world.subject_teacher)
    _send(client, world, world.g1, plain, VIETNAMESE)
    _send(client, world, odd_guardian, odd, ODD + "\n\r\b\f", attach=True)
    deleted = _send(client, world, world.teacher, odd, "sẽ xoá")
    _send(client, world, world.g2, leaving, "tạm biệt")
    assert client.delete(f"{API}/conversations/{odd}/messages/{deleted['id']}",
                         headers=world.h(world.teacher)).status_code == 200
    assert client.post(f"{API}/conversations/{plain}/read", headers=world.h(world.teacher),
                       json={"up_to_seq": 0}).status_code == 204
    # times with microseconds (written as milliseconds), under a millisecond, and whole seconds
    base = dt.datetime(2026, 11, 25, 7, 30, 5)
    for conv, micro in ((plain, 123456), (odd, 999), (leaving, 0)):
        Conversation.update(updated_at=base + dt.timedelta(microseconds=micro)).where(
            Conversation.id == int(conv)).execute()
    Message.update(edited_at=base.replace(microsecond=500)).where(Message.conversation == int(plain)).execute()

    for user in (world.teacher, world.subject_teacher, world.g1, world.g2, odd_guardian, world.other_teacher):
        for limit in (200, 2, 1):
            _pages(client, world, user, limit)

    items = {i["id"]: i for user in (world.teacher, world.subject_teacher)
             for i in client.get(f"{API}/conversations", headers=world.h(user)).json["items"]}
    assert items[plain]["updated_at"] == "2026-11-25T07:30:05.123Z"
    assert items[odd]["updated_at"] == "2026-11-25T07:30:05.000Z"
    assert items[leaving]["updated_at"] == "2026-11-25T07:30:05Z"
    assert items[plain]["last_message"]["edited_at"] == "2026-11-25T07:30:05.000Z"
    assert items[plain]["last_message"]["body"] == VIETNAMESE
    assert items[silent]["last_message"] is None and items[silent]["last_seq"] == 0
    tomb = items[odd]["last_message"]
    assert tomb["deleted"] is True and tomb["body"] == "" and tomb["attachments"] == []
    assert items[odd]["title"] == f"Cô Lan, {ODD} · Nguyễn Minh An"  # as the subject teacher sees it
    channel = next(i for i in items.values() if i["kind"] == "class")
    roles = [(p["id"], p["role"]) for p in channel["participants"]]
    assert roles.count((str(world.subject_teacher.id), "teacher")) == 1  # once, as a teacher
    assert (str(world.subject_teacher.id), "guardian") not in roles

    # the attachment of a last message; then the roster moves: the guardian who leaves loses the
    # conversation, and the teacher's entry lists the remaining members only
    with_file = _send(client, world, odd_guardian, odd, "ảnh", attach=True)
    roster.unlink_guardian(world.s2.id, world.g2.id)
    for user in (world.teacher, world.subject_teacher, world.g2, odd_guardian):
        _pages(client, world, user, 3)
    raw = client.get(f"{API}/conversations", headers=world.h(world.subject_teacher))
    items = {i["id"]: i for i in raw.json["items"]}
    assert items[odd]["last_message"]["attachments"] == with_file["attachments"]
    assert with_file["attachments"][0]["url"] == f"/api/v1/attachments/{with_file['attachments'][0]['id']}"
    assert [p["id"] for p in items[leaving]["participants"]] == [str(world.subject_teacher.id)]
    assert items[leaving]["title"] == "Thầy Hùng · Trần Bảo Ngọc"  # nobody else left: the caller's own name
    assert leaving not in {i["id"] for i in client.get(f"{API}/conversations", headers=world.h(world.g2)).json["items"]}
    assert json.loads(raw.get_data()) == raw.json and raw.get_data().endswith(b"}\n")


def test_a_class_channel_created_by_the_request_is_in_its_answer(app, client, world):
    """The first list of a class's first member creates its channel (the statement reports it
    missing, it is created, the page read again)."""
    klass = world.make.klass(world.school, homeroom=world.other_teacher, name="4C")
    student = world.make.student(klass, "Phạm Thu")
    guardian = world.guardian(student, "Bà Hạnh")
    assert not Conversation.select().where(Conversation.school_class == klass.id).exists()
    items = client.get(f"{API}/conversations", headers=world.h(guardian)).json["items"]
    assert [(i["kind"], i["class_id"]) for i in items] == [("class", str(klass.id))]
    assert [p["id"] for p in items[0]["participants"]] == [str(world.other_teacher.id), str(guardian.id)]


def test_a_drift_between_the_two_paths_fails_the_request(app, client, world, monkeypatch):
    """The comparison itself: a database answer one byte off is an error, not an answer."""
    with app.app_context():
        if not list_json.available():
            pytest.skip("PostgreSQL builds the list; SQLite has the Python path only")
    real = list_json.page_json
    monkeypatch.setattr(list_json, "page_json", lambda *a, **kw: real(*a, **kw).replace(b'"kind":"class"',
                                                                                       b'"kind":"klass"'))
    r = client.get(f"{API}/conversations", headers=world.h(world.g1))
    assert r.status_code == 500 and r.json["error"]["code"] == "internal_error"
    monkeypatch.undo()
    assert client.get(f"{API}/conversations", headers=world.h(world.g1)).status_code == 200


def test_a_storage_with_urls_of_its_own_keeps_the_python_path(app, client, world):
    class Signed(LocalStorage):
        def url(self, key):
            return f"https://files.example/{key}?sig=1"

    app.extensions["lienlac.storage"] = Signed(app.config["LIENLAC"].upload_dir)
    conv = _open(client, world, world.g1, world.s1, world.teacher)
    sent = _send(client, world, world.g1, conv, "ảnh", attach=True)
    with app.app_context():
        assert not list_json.available()
    item = next(i for i in client.get(f"{API}/conversations", headers=world.h(world.teacher)).json["items"]
                if i["id"] == conv)
    assert item["last_message"]["attachments"][0]["url"].startswith("https://files.example/")
    assert item["last_message"]["id"] == sent["id"]
