"""Messaging over HTTP in one process, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from messaging.logic import sending
from messaging.models import Attachment, Conversation, Message

from .conftest import JPEG, PDF, PNG, VIETNAMESE, cid

API = "/api/v1"


@pytest.fixture
def config(database_url, make_config):
    return make_config(database_url, max_upload_bytes=4096)


def open_direct(client, world, caller, student, *others):
    r = client.post(f"{API}/conversations", headers=world.h(caller),
                    json={"kind": "direct", "student_id": str(student.id), "participant_ids": [str(o.id) for o in others]})
    return r


def class_channel(client, world, user, klass=None):
    r = client.post(f"{API}/conversations", headers=world.h(user),
                    json={"kind": "class", "class_id": str((klass or world.klass).id)})
    assert r.status_code == 200, r.json
    return r.json


def send(client, world, user, conv_id, body="xin chào", client_id=None, **extra):
    return client.post(f"{API}/conversations/{conv_id}/messages", headers=world.h(user),
                       json={"client_id": client_id or cid(), "body": body, **extra})


def stored(conv_id) -> int:
    return Message.select().where(Message.conversation == int(conv_id)).count()


# --- conversations --------------------------------------------------------------------------------
def test_direct_conversation_rules(client, world):
    r = open_direct(client, world, world.g1, world.s1, world.teacher)
    assert r.status_code == 201, r.json
    conv = r.json
    assert conv["kind"] == "direct" and conv["student_id"] == str(world.s1.id)
    assert {p["id"]: p["role"] for p in conv["participants"]} == {str(world.teacher.id): "teacher",
                                                                   str(world.g1.id): "guardian"}
    # the same people about the same student: the same conversation, whoever opens it
    again = open_direct(client, world, world.teacher, world.s1, world.g1)
    assert again.status_code == 200 and again.json["id"] == conv["id"]
    # with the subject teacher too: another conversation
    three = open_direct(client, world, world.g1, world.s1, world.teacher, world.subject_teacher)
    assert three.status_code == 201 and three.json["id"] != conv["id"]

    # a teacher of another class, a guardian of another family: cannot be added
    assert open_direct(client, world, world.g1, world.s1, world.other_teacher).status_code == 422
    assert open_direct(client, world, world.g1, world.s1, world.g2).status_code == 422
    # two guardians without a teacher: not a family-school conversation
    assert open_direct(client, world, world.teacher, world.s1, world.subject_teacher).status_code == 422
    # a guardian of another child, or a teacher of another class, cannot see the student: 404
    assert open_direct(client, world, world.g3, world.s1, world.teacher).status_code == 404
    assert open_direct(client, world, world.other_teacher, world.s1, world.g1).status_code == 404
    # cafeteria staff and the admin see the student but may not open conversations with families: 403
    assert open_direct(client, world, world.cafeteria, world.s1, world.g1).status_code == 403
    assert open_direct(client, world, world.admin, world.s1, world.g1).status_code == 403
    # unknown student
    assert open_direct(client, world, world.g1, type("S", (), {"id": 999999})(), world.teacher).status_code == 404
    assert Conversation.select().where(Conversation.kind == "direct").count() == 2


def test_conversation_list_class_channel_and_no_phone_numbers(client, world):
    open_direct(client, world, world.g1, world.s1, world.teacher)
    r = client.get(f"{API}/conversations", headers=world.h(world.g1))
    assert r.status_code == 200, r.json
    kinds = sorted(c["kind"] for c in r.json["items"])
    assert kinds == ["class", "direct"]
    channel = next(c for c in r.json["items"] if c["kind"] == "class")
    assert channel["class_id"] == str(world.klass.id) and channel["title"] == "3A"
    people = {p["id"]: p["role"] for p in channel["participants"]}
    # membership follows the roster: both teachers and both families of class A, nobody from class B
    assert people == {str(world.teacher.id): "teacher", str(world.subject_teacher.id): "teacher",
                      str(world.g1.id): "guardian", str(world.g2.id): "guardian"}
    text = r.get_data(as_text=True)
    assert "phone" not in text
    for user in (world.g1, world.g2, world.teacher, world.subject_teacher):
        assert user.phone not in text and user.phone[3:] not in text

    # the teacher's list has the same channel (one per class)
    t = client.get(f"{API}/conversations", headers=world.h(world.teacher)).json
    assert [c["id"] for c in t["items"] if c["kind"] == "class"] == [channel["id"]]
    # a guardian added to the class later is a member at once (no sync job)
    late = world.guardian(world.s2, "Bà ngoại")
    assert client.get(f"{API}/conversations/{channel['id']}", headers=world.make.headers(late)).status_code == 200
    # paging
    first = client.get(f"{API}/conversations?limit=1", headers=world.h(world.g1)).json
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = client.get(f"{API}/conversations?limit=1&cursor={first['next_cursor']}", headers=world.h(world.g1)).json
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert {first["items"][0]["id"], second["items"][0]["id"]} == {c["id"] for c in r.json["items"]}


def test_outsiders_get_404_everywhere(client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    channel = class_channel(client, world, world.g1)["id"]
    assert send(client, world, world.g1, conv, "bí mật").status_code == 201
    for outsider in (world.g3, world.other_teacher, world.cafeteria, world.admin, world.g2):
        for cid_ in ([conv] if outsider is world.g2 else [conv, channel]):
            h = world.h(outsider)
            assert client.get(f"{API}/conversations/{cid_}", headers=h).status_code == 404
            assert client.get(f"{API}/conversations/{cid_}/messages", headers=h).status_code == 404
            assert send(client, world, outsider, cid_).status_code == 404
            assert client.post(f"{API}/conversations/{cid_}/read", headers=h, json={"up_to_seq": 1}).status_code == 404
            assert client.get(f"{API}/conversations/{cid_}/receipts", headers=h).status_code == 404
        ids = [c["id"] for c in client.get(f"{API}/conversations", headers=world.h(outsider)).json["items"]]
        assert conv not in ids
    # a guardian of class B may not get class A's channel
    r = client.post(f"{API}/conversations", headers=world.h(world.g3), json={"kind": "class", "class_id": str(world.klass.id)})
    assert r.status_code == 404
    assert stored(conv) == 1 and stored(channel) == 0
    assert client.get(f"{API}/conversations/abc", headers=world.h(world.g1)).status_code == 404
    assert client.get(f"{API}/conversations", headers={}).status_code == 401


# --- messages -------------------------------------------------------------------------------------
def test_vietnamese_round_trip_and_body_rules(client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    r = send(client, world, world.g1, conv, VIETNAMESE, client_id="c-1")
    assert r.status_code == 201, r.json
    msg = r.json
    assert msg["body"] == VIETNAMESE and msg["seq"] == 1 and msg["client_id"] == "c-1"
    assert set(msg) >= {"id", "conversation_id", "sender_id", "body", "client_id", "created_at", "seq"}
    assert msg["sender_id"] == str(world.g1.id) and msg["conversation_id"] == conv and msg["created_at"].endswith("Z")
    # exactly the same text back, also in the raw JSON (UTF-8, not \u escapes)
    page = client.get(f"{API}/conversations/{conv}/messages", headers=world.h(world.teacher))
    assert page.json["items"][0]["body"] == VIETNAMESE
    assert VIETNAMESE.encode() in page.get_data()
    assert send(client, world, world.g1, conv, "x" * 4000).status_code == 201
    for bad in ("", "   \n ", "x" * 4001, "a\x00b"):
        r = send(client, world, world.g1, conv, bad)
        assert r.status_code == 422, (bad[:5], r.json)
        assert r.json["error"]["code"] == "validation_error" and "body" in r.json["error"]["fields"]
    r = client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.g1), json={"body": "no client id"})
    assert r.status_code == 422
    r = client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.g1), data="{not json",
                    content_type="application/json")
    assert r.status_code in (400, 422)
    assert stored(conv) == 2
    assert Conversation.get_by_id(int(conv)).last_seq == 2


def test_same_client_id_is_stored_once(client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    first = send(client, world, world.g1, conv, "một lần", client_id="same")
    again = send(client, world, world.g1, conv, "một lần", client_id="same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["seq"] == 1
    # another sender may use the same client_id
    assert send(client, world, world.teacher, conv, "dạ", client_id="same").status_code == 201
    # the same client_id in another conversation of the same sender is a conflict, not a second message
    channel = class_channel(client, world, world.g1)["id"]
    r = send(client, world, world.g1, channel, "một lần", client_id="same")
    assert r.status_code == 409
    assert stored(conv) == 2 and stored(channel) == 0


def test_history_before_after_and_cursors(app, client, world):
    conv_id = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    conv = Conversation.get_by_id(int(conv_id))
    for i in range(1, 71):
        sending.send_message(world.g1.id if i % 2 else world.teacher.id, conv, f"m{i}", f"tin {i}")
    h = world.h(world.teacher)
    newest = client.get(f"{API}/conversations/{conv_id}/messages", headers=h).json
    assert [m["seq"] for m in newest["items"]] == list(range(70, 20, -1))  # default limit 50, newest first
    older = client.get(f"{API}/conversations/{conv_id}/messages?cursor={newest['next_cursor']}", headers=h).json
    assert [m["seq"] for m in older["items"]] == list(range(20, 0, -1)) and older["next_cursor"] is None
    before = client.get(f"{API}/conversations/{conv_id}/messages?before=5", headers=h).json
    assert [m["seq"] for m in before["items"]] == [4, 3, 2, 1] and before["next_cursor"] is None
    # offline catch-up: everything after seq 20, oldest first, page by page
    seen, url = [], f"{API}/conversations/{conv_id}/messages?after=20&limit=15"
    while url:
        page = client.get(url, headers=h).json
        seen += [m["seq"] for m in page["items"]]
        url = page["next_cursor"] and f"{API}/conversations/{conv_id}/messages?limit=15&cursor={page['next_cursor']}"
    assert seen == list(range(21, 71))
    assert len(client.get(f"{API}/conversations/{conv_id}/messages?limit=200", headers=h).json["items"]) == 70
    import base64
    import json as json_mod

    forged = base64.urlsafe_b64encode(json_mod.dumps({"before": 2**70}).encode()).decode().rstrip("=")
    for bad in ("limit=201", "limit=0", "before=3&after=1", "cursor=@@", "after=-1", f"before={2**64}",
                f"after={10**30}", f"cursor={forged}"):
        r = client.get(f"{API}/conversations/{conv_id}/messages?{bad}", headers=h)
        assert r.status_code == 422, bad


# --- receipts -------------------------------------------------------------------------------------
def test_read_marks_unread_counts_and_class_receipts(client, world):
    channel = class_channel(client, world, world.teacher)["id"]
    for i in range(3):
        assert send(client, world, world.teacher, channel, f"Thông báo {i}").status_code == 201
    assert send(client, world, world.g1, channel, "Dạ em đã nhận").status_code == 201

    def unread(user):
        items = client.get(f"{API}/conversations", headers=world.h(user)).json["items"]
        return next(c["unread_count"] for c in items if c["id"] == channel)

    # own messages are not unread; sending reads everything before it
    assert (unread(world.teacher), unread(world.g1), unread(world.g2), unread(world.subject_teacher)) == (1, 0, 4, 4)
    r = client.post(f"{API}/conversations/{channel}/read", headers=world.h(world.g2), json={"up_to_seq": 2})
    assert r.status_code == 204 and r.get_data() == b""
    assert unread(world.g2) == 2
    # never goes back; capped at the last message
    client.post(f"{API}/conversations/{channel}/read", headers=world.h(world.g2), json={"up_to_seq": 1})
    assert unread(world.g2) == 2
    client.post(f"{API}/conversations/{channel}/read", headers=world.h(world.subject_teacher), json={"up_to_seq": 99})
    assert unread(world.subject_teacher) == 0
    for bad in ({"up_to_seq": -1}, {"up_to_seq": "x"}, {}):
        assert client.post(f"{API}/conversations/{channel}/read", headers=world.h(world.g2), json=bad).status_code == 422

    rec = client.get(f"{API}/conversations/{channel}/receipts", headers=world.h(world.teacher)).json
    assert rec["member_count"] == 4
    by_seq = {i["seq"]: (i["seen_by"], i["of"]) for i in rec["items"]}
    # marks: teacher 3 (sent 1-3), g1 4 (sent 4), g2 2, subject teacher 4 (capped at the last seq)
    assert by_seq[1] == (3, 3) and by_seq[2] == (3, 3) and by_seq[3] == (2, 3)
    assert by_seq[4] == (1, 3)
    marks = {r["user_id"]: r["up_to_seq"] for r in rec["reads"]}
    assert marks == {str(world.teacher.id): 3, str(world.subject_teacher.id): 4, str(world.g1.id): 4, str(world.g2.id): 2}
    # a guardian sees the counts, the teachers' marks and their own, not other families'
    rec_g = client.get(f"{API}/conversations/{channel}/receipts", headers=world.h(world.g2)).json
    assert {r["user_id"] for r in rec_g["reads"]} == {str(world.teacher.id), str(world.subject_teacher.id), str(world.g2.id)}
    assert [(i["seen_by"], i["of"]) for i in rec_g["items"]] == [(i["seen_by"], i["of"]) for i in rec["items"]]


# --- announcement-only ----------------------------------------------------------------------------
def test_announcement_only_channel(client, world):
    channel = class_channel(client, world, world.teacher)["id"]
    r = client.patch(f"{API}/conversations/{channel}", headers=world.h(world.g1), json={"announcement_only": True})
    assert r.status_code == 403
    r = client.patch(f"{API}/conversations/{channel}", headers=world.h(world.subject_teacher), json={"announcement_only": True})
    assert r.status_code == 200 and r.json["announcement_only"] is True
    r = send(client, world, world.g1, channel, "Cho em hỏi")
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert send(client, world, world.teacher, channel, "Lịch họp phụ huynh").status_code == 201
    assert stored(channel) == 1
    direct = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    r = client.patch(f"{API}/conversations/{direct}", headers=world.h(world.teacher), json={"announcement_only": True})
    assert r.status_code == 422
    client.patch(f"{API}/conversations/{channel}", headers=world.h(world.teacher), json={"announcement_only": False})
    assert send(client, world, world.g1, channel, "Cho em hỏi").status_code == 201


# --- edit, delete, report -------------------------------------------------------------------------
def test_edit_delete_within_15_minutes_and_report(app, client, world):
    clock = {"now": dt.datetime(2026, 11, 24, 2, 0, 0)}
    app.extensions["lienlac.clock"] = lambda: clock["now"]
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    mine = send(client, world, world.g1, conv, "Cháu bị ốm").json
    theirs = send(client, world, world.teacher, conv, "Cô biết rồi").json
    url = f"{API}/conversations/{conv}/messages"
    clock["now"] += dt.timedelta(minutes=14)
    r = client.patch(f"{url}/{mine['id']}", headers=world.h(world.g1), json={"body": "Cháu bị ốm, sốt cao"})
    assert r.status_code == 200 and r.json["body"] == "Cháu bị ốm, sốt cao" and r.json["edited_at"]
    assert client.patch(f"{url}/{theirs['id']}", headers=world.h(world.g1), json={"body": "x"}).status_code == 403
    assert client.patch(f"{url}/{mine['id']}", headers=world.h(world.g1), json={"body": ""}).status_code == 422
    assert client.delete(f"{url}/{theirs['id']}", headers=world.h(world.g1)).status_code == 403
    clock["now"] += dt.timedelta(minutes=2)
    assert client.patch(f"{url}/{mine['id']}", headers=world.h(world.g1), json={"body": "late"}).status_code == 403
    assert client.delete(f"{url}/{mine['id']}", headers=world.h(world.g1)).status_code == 403
    fresh = send(client, world, world.g1, conv, "gửi nhầm").json
    r = client.delete(f"{url}/{fresh['id']}", headers=world.h(world.g1))
    assert r.status_code == 200 and r.json["deleted"] is True and r.json["body"] == ""
    history = client.get(url, headers=world.h(world.teacher)).json["items"]
    assert [(m["seq"], m["deleted"], m["body"]) for m in history] == [
        (3, True, ""), (2, False, "Cô biết rồi"), (1, False, "Cháu bị ốm, sốt cao")]
    assert client.patch(f"{url}/{fresh['id']}", headers=world.h(world.g1), json={"body": "x"}).status_code == 409

    # report a message to the school admin
    r = client.post(f"{url}/{theirs['id']}/report", headers=world.h(world.g1), json={"reason": "Lời lẽ không phù hợp"})
    assert r.status_code == 201, r.json
    again = client.post(f"{url}/{theirs['id']}/report", headers=world.h(world.g1), json={"reason": "lần nữa"})
    assert again.status_code == 200 and again.json["id"] == r.json["id"]
    assert client.post(f"{url}/{mine['id']}/report", headers=world.h(world.g1), json={"reason": "x"}).status_code == 422
    assert client.post(f"{url}/{theirs['id']}/report", headers=world.h(world.g3), json={"reason": "x"}).status_code == 404
    reports = client.get(f"{API}/schools/{world.school.id}/message-reports", headers=world.h(world.admin))
    assert reports.status_code == 200
    assert [(x["message_id"], x["body"], x["reason"], x["reporter_id"]) for x in reports.json["items"]] == [
        (theirs["id"], "Cô biết rồi", "Lời lẽ không phù hợp", str(world.g1.id))]
    assert client.get(f"{API}/schools/{world.school.id}/message-reports", headers=world.h(world.g1)).status_code == 403
    assert client.get(f"{API}/schools/{world.school.id}/message-reports", headers=world.h(world.teacher)).status_code == 403


# --- attachments ----------------------------------------------------------------------------------
def upload(client, world, user, data, name="a.png"):
    return client.post(f"{API}/attachments", headers=world.h(user), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name)})


def test_attachments_checked_by_content_and_authorised(client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    ids = {}
    for data, ctype in ((PNG, "image/png"), (JPEG, "image/jpeg"), (PDF, "application/pdf")):
        r = upload(client, world, world.g1, data, "giấy khám bệnh.bin")
        assert r.status_code == 201, r.json
        assert r.json["content_type"] == ctype and r.json["size"] == len(data)
        ids[ctype] = r.json["id"]
    webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    assert upload(client, world, world.g1, webp, "x.webp").json["content_type"] == "image/webp"
    # by content, not by name: a script called .png, an empty file, a too large file
    for bad in (b"<script>alert(1)</script>", b"", PNG + b"\x00" * 4096, b"GIF89a....."):
        r = upload(client, world, world.g1, bad, "photo.png")
        assert r.status_code == 422, r.json
    r = client.post(f"{API}/attachments", headers=world.h(world.g1), content_type="multipart/form-data", data={})
    assert r.status_code == 422
    r = upload(client, world, world.g1, PNG + b"\x00" * 100_000)  # far over: refused before it is read
    assert r.status_code == 413 and r.json["error"]["code"] == "validation_error"
    assert Attachment.select().count() == 4

    png = ids["image/png"]
    # before sending: only the uploader can fetch it
    assert client.get(f"{API}/attachments/{png}", headers=world.h(world.g1)).get_data() == PNG
    assert client.get(f"{API}/attachments/{png}", headers=world.h(world.teacher)).status_code == 404
    # someone else's file cannot be sent; nothing stored
    r = send(client, world, world.teacher, conv, "ảnh", attachments=[png])
    assert r.status_code == 422 and stored(conv) == 0
    r = send(client, world, world.g1, conv, "", attachments=[png, ids["application/pdf"]])
    assert r.status_code == 201, r.json
    assert [a["content_type"] for a in r.json["attachments"]] == ["image/png", "application/pdf"]
    # after sending: the members of the conversation, nobody else
    got = client.get(r.json["attachments"][0]["url"], headers=world.h(world.teacher))
    assert got.status_code == 200 and got.get_data() == PNG and got.mimetype == "image/png"
    assert client.get(f"{API}/attachments/{png}", headers=world.h(world.g3)).status_code == 404
    assert client.get(f"{API}/attachments/{png}", headers=world.h(world.g2)).status_code == 404
    # a file goes out once; an unknown id is refused; nothing stored
    assert send(client, world, world.g1, conv, "lại", attachments=[png]).status_code == 422
    assert send(client, world, world.g1, conv, "?", attachments=["987654"]).status_code == 422
    assert send(client, world, world.g1, conv, "?", attachments=["abc"]).status_code == 422
    assert stored(conv) == 1
    # deleting the message removes the file
    mid = r.json["id"]
    assert client.delete(f"{API}/conversations/{conv}/messages/{mid}", headers=world.h(world.g1)).status_code == 200
    assert client.get(f"{API}/attachments/{png}", headers=world.h(world.teacher)).status_code == 404


# --- office hours ---------------------------------------------------------------------------------
def test_office_hours_note_outside_hours(app, client, world):
    r = client.put(f"{API}/me/office-hours", headers=world.h(world.teacher),
                   json={"slots": [{"weekday": 1, "start": "07:30", "end": "11:00"},
                                   {"weekday": 3, "start": "13:30", "end": "16:00"}]})
    assert r.status_code == 200, r.json
    assert r.json["timezone"] == "Asia/Ho_Chi_Minh" and len(r.json["slots"]) == 2
    assert client.put(f"{API}/me/office-hours", headers=world.h(world.g1), json={"slots": []}).status_code == 403
    bad = {"slots": [{"weekday": 8, "start": "07:30", "end": "11:00"}]}
    assert client.put(f"{API}/me/office-hours", headers=world.h(world.teacher), json=bad).status_code == 422
    bad = {"slots": [{"weekday": 2, "start": "11:00", "end": "07:30"}]}
    assert client.put(f"{API}/me/office-hours", headers=world.h(world.teacher), json=bad).status_code == 422

    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    clock = {}
    app.extensions["lienlac.clock"] = lambda: clock["now"]
    # Monday 23 Nov 2026, 09:00 in Hà Nội (02:00 UTC): within office hours
    clock["now"] = dt.datetime(2026, 11, 23, 2, 0)
    assert send(client, world, world.g1, conv, "Trong giờ").json["notice"] is None
    # Monday 21:00 local (14:00 UTC): outside; next slot Wednesday 25/11 13:30 local = 06:30 UTC
    clock["now"] = dt.datetime(2026, 11, 23, 14, 0)
    r = send(client, world, world.g1, conv, "Ngoài giờ")
    assert r.status_code == 201
    notice = r.json["notice"]
    assert notice["kind"] == "outside_office_hours" and notice["next_office_hour"] == "2026-11-25T06:30:00Z"
    assert notice["teacher_id"] == str(world.teacher.id) and "Thứ Tư 25/11 lúc 13:30" in notice["text"]
    # the message is stored and delivered like any other
    items = client.get(f"{API}/conversations/{conv}/messages", headers=world.h(world.teacher)).json["items"]
    assert items[0]["body"] == "Ngoài giờ" and items[0]["notice"] is None
    # Sunday 29 Nov 23:50 local: the next is Monday 30/11 07:30 local
    clock["now"] = dt.datetime(2026, 11, 29, 16, 50)
    assert send(client, world, world.g1, conv, "CN").json["notice"]["next_office_hour"] == "2026-11-30T00:30:00Z"
    # a teacher's own message never gets the note
    assert send(client, world, world.teacher, conv, "Cô trả lời").json["notice"] is None


def test_officehours_functions():
    from messaging import officehours

    slots = [(5, 7 * 60, 8 * 60)]  # Friday 07:00-08:00
    tz = "Asia/Ho_Chi_Minh"
    friday_0730_local = dt.datetime(2026, 11, 27, 0, 30)
    assert officehours.is_within(slots, tz, friday_0730_local)
    assert not officehours.is_within(slots, tz, friday_0730_local + dt.timedelta(minutes=30))
    # right after the slot: a week later
    assert officehours.next_start(slots, tz, friday_0730_local) == dt.datetime(2026, 12, 4, 0, 0)
    assert officehours.next_start([], tz, friday_0730_local) is None
    assert json.dumps(officehours.describe(dt.datetime(2026, 12, 4, 0, 0), tz), ensure_ascii=False) == '"Thứ Sáu 04/12 lúc 07:00"'
