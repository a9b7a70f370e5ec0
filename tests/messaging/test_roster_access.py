"""Issue 7: conversation access follows the roster live (HTTP, sockets, attachments, pushes), class
channels reveal no more through ``message:read``/``typing`` than the receipts endpoint, uploads are
limited, and message sending is rate limited. One process, SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest

from messaging import logic
from messaging.models import Attachment, Message
from service.roster.models import StaffRole
from service.realtime import socketio

from .conftest import PNG, cid

API = "/api/v1"


@pytest.fixture
def config(database_url, make_config):
    return make_config(database_url, max_upload_bytes=4096)


def sock(app, world, user):
    client = socketio.test_client(app, auth={"token": world.make.token(user)})
    assert client.is_connected()
    return client


def events(client, name=None):
    return [(e["name"], e["args"][0] if e["args"] else None) for e in client.get_received()
            if name is None or e["name"] == name]


def open_direct(client, world, caller, student, *others):
    return client.post(f"{API}/conversations", headers=world.h(caller),
                       json={"kind": "direct", "student_id": str(student.id),
                             "participant_ids": [str(o.id) for o in others]})


def send(client, world, user, conv_id, body="xin chào", **extra):
    return client.post(f"{API}/conversations/{conv_id}/messages", headers=world.h(user),
                       json={"client_id": cid(), "body": body, **extra})


def upload(client, world, user, data=PNG):
    return client.post(f"{API}/attachments", headers=world.h(user), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "a.png")})


def listed(client, world, user) -> list[str]:
    return [c["id"] for c in client.get(f"{API}/conversations", headers=world.h(user)).json["items"]]


def assert_no_access(client, app, world, user, conv, attachment_id=None):
    """Every HTTP and socket path answers 404 / not_found to a former member, and changes nothing."""
    h = world.h(user)
    before = Message.select().where(Message.conversation == int(conv)).count()
    assert conv not in listed(client, world, user)
    assert client.get(f"{API}/conversations/{conv}", headers=h).status_code == 404
    assert client.get(f"{API}/conversations/{conv}/messages", headers=h).status_code == 404
    assert client.get(f"{API}/conversations/{conv}/receipts", headers=h).status_code == 404
    assert send(client, world, user, conv, "vẫn còn đây").status_code == 404
    assert client.post(f"{API}/conversations/{conv}/read", headers=h, json={"up_to_seq": 1}).status_code == 404
    if attachment_id is not None:
        assert client.get(f"{API}/attachments/{attachment_id}", headers=h).status_code == 404
    s = sock(app, world, user)
    ack = s.emit("message:send", {"conversation_id": conv, "client_id": cid(), "body": "qua socket"}, callback=True)
    assert ack["error"]["code"] == "not_found", ack
    ack = s.emit("message:read", {"conversation_id": conv, "up_to_seq": 1}, callback=True)
    assert ack["error"]["code"] == "not_found", ack
    s.disconnect()
    assert Message.select().where(Message.conversation == int(conv)).count() == before


# --- 1. direct conversations follow the roster ------------------------------------------------------
def test_unlinked_guardian_loses_the_conversation_everywhere(app, client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    att = upload(client, world, world.teacher).json["id"]
    assert send(client, world, world.teacher, conv, "ảnh của cháu", attachments=[att]).status_code == 201
    assert send(client, world, world.g1, conv, "cảm ơn cô").status_code == 201
    g1_socket, teacher_socket = sock(app, world, world.g1), sock(app, world, world.teacher)
    assert client.get(f"{API}/attachments/{att}", headers=world.h(world.g1)).status_code == 200

    r = client.delete(f"{API}/students/{world.s1.id}/guardians/{world.g1.id}", headers=world.h(world.admin))
    assert r.status_code == 204
    g1_socket.get_received(), teacher_socket.get_received()

    # the already-open socket: refused, and hears nothing of the conversation any more
    ack = g1_socket.emit("message:send", {"conversation_id": conv, "client_id": cid(), "body": "?"}, callback=True)
    assert ack["error"]["code"] == "not_found"
    g1_socket.emit("typing", {"conversation_id": conv})
    assert events(teacher_socket) == []
    assert send(client, world, world.teacher, conv, "Cô gửi lịch họp").status_code == 201
    ack = teacher_socket.emit("message:read", {"conversation_id": conv, "up_to_seq": 3}, callback=True)
    assert ack == {"up_to_seq": 3}
    teacher_socket.emit("typing", {"conversation_id": conv})
    assert events(g1_socket) == []
    assert_no_access(client, app, world, world.g1, conv, att)

    # the teacher still has it; the former member is no longer counted nor shown
    view = client.get(f"{API}/conversations/{conv}", headers=world.h(world.teacher)).json
    assert [p["id"] for p in view["participants"]] == [str(world.teacher.id)]
    receipts = client.get(f"{API}/conversations/{conv}/receipts", headers=world.h(world.teacher)).json
    assert receipts["member_count"] == 1
    assert [r["user_id"] for r in receipts["reads"]] == [str(world.teacher.id)]
    # linked again: access comes back (it follows the roster both ways)
    r = client.post(f"{API}/students/{world.s1.id}/guardians", headers=world.h(world.admin),
                    json={"phone": world.g1.phone, "name": world.g1.name, "relationship": "mother"})
    assert r.status_code in (200, 201), r.json
    assert conv in listed(client, world, world.g1)
    assert client.get(f"{API}/attachments/{att}", headers=world.h(world.g1)).status_code == 200
    for s in (g1_socket, teacher_socket):
        s.disconnect()


def test_teacher_removed_from_the_class_or_the_school(app, client, world):
    with_subject = open_direct(client, world, world.g1, world.s1, world.subject_teacher).json["id"]
    with_homeroom = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    r = client.delete(f"{API}/classes/{world.klass.id}/teachers/{world.subject_teacher.id}",
                      headers=world.h(world.admin))
    assert r.status_code == 204, r.json
    assert_no_access(client, app, world, world.subject_teacher, with_subject)
    assert with_subject in listed(client, world, world.g1)  # the family keeps its history

    r = client.delete(f"{API}/schools/{world.school.id}/staff/{world.teacher.id}", headers=world.h(world.admin))
    assert r.status_code == 204, r.json
    assert_no_access(client, app, world, world.teacher, with_homeroom)


def test_teacher_without_the_teacher_role_in_the_school_has_no_access(app, client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.subject_teacher).json["id"]
    # a class link left behind without the role (e.g. written by an older import): not enough
    StaffRole.delete().where((StaffRole.user == world.subject_teacher.id)).execute()
    assert_no_access(client, app, world, world.subject_teacher, conv)


def test_student_moved_to_another_class(app, client, world):
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    teacher_socket = sock(app, world, world.teacher)
    r = client.patch(f"{API}/students/{world.s1.id}", headers=world.h(world.admin),
                     json={"class_id": str(world.klass_b.id)})
    assert r.status_code == 200, r.json
    assert_no_access(client, app, world, world.teacher, conv)
    assert send(client, world, world.g1, conv, "con chuyển lớp rồi ạ").status_code == 201
    assert events(teacher_socket, "message:new") == []
    # the new homeroom teacher can open one with the family
    r = open_direct(client, world, world.other_teacher, world.s1, world.g1)
    assert r.status_code == 201, r.json
    assert send(client, world, world.other_teacher, r.json["id"], "Chào chị").status_code == 201
    # the old class's channel is gone for the guardian, the new one is there
    old = client.post(f"{API}/conversations", headers=world.h(world.g1),
                      json={"kind": "class", "class_id": str(world.klass.id)})
    assert old.status_code == 404
    new = client.post(f"{API}/conversations", headers=world.h(world.g1),
                      json={"kind": "class", "class_id": str(world.klass_b.id)})
    assert new.status_code == 200
    teacher_socket.disconnect()


def test_conversation_list_queries_do_not_grow_with_conversations(app, client, world):
    from service.db import db

    def count_queries(user):
        client.get(f"{API}/conversations", headers=world.h(user))  # class channels are created on first need
        calls = []
        inner = db.obj
        original = inner.execute_sql

        def counting(sql, params=None, *a, **kw):
            calls.append(sql)
            return original(sql, params, *a, **kw)

        inner.execute_sql = counting
        try:
            assert client.get(f"{API}/conversations", headers=world.h(user)).status_code == 200
        finally:
            del inner.execute_sql
        return len(calls)

    open_direct(client, world, world.g1, world.s1, world.teacher)
    few = count_queries(world.g1)
    open_direct(client, world, world.g1, world.s1, world.subject_teacher)
    open_direct(client, world, world.g1, world.s1, world.teacher, world.subject_teacher)
    s4 = world.make.student(world.klass_b)
    from service.roster import logic as roster

    roster.link_guardian(s4.id, world.g1.id, "mother")
    open_direct(client, world, world.g1, s4, world.other_teacher)
    assert count_queries(world.g1) <= few  # four more conversations, one of them a class channel


# --- 2. sockets of stale members hear nothing (class channel) ---------------------------------------
def test_guardian_removed_from_a_class_stops_hearing_its_channel(app, client, world):
    channel = client.post(f"{API}/conversations", headers=world.h(world.teacher),
                          json={"kind": "class", "class_id": str(world.klass.id)}).json["id"]
    g1 = sock(app, world, world.g1)
    assert send(client, world, world.teacher, channel, "Thông báo 1").status_code == 201
    assert [e["message"]["body"] for _, e in events(g1, "message:new")] == ["Thông báo 1"]
    assert client.delete(f"{API}/students/{world.s1.id}/guardians/{world.g1.id}",
                         headers=world.h(world.admin)).status_code == 204
    assert send(client, world, world.teacher, channel, "Thông báo 2").status_code == 201
    assert events(g1) == []
    g1.disconnect()


# --- 3. class channels: message:read and typing reveal no more than the receipts --------------------
def test_class_channel_reads_and_typing_of_guardians_reach_teachers_only(app, client, world):
    channel = client.post(f"{API}/conversations", headers=world.h(world.teacher),
                          json={"kind": "class", "class_id": str(world.klass.id)}).json["id"]
    assert send(client, world, world.teacher, channel, "Họp phụ huynh thứ Sáu").status_code == 201
    g1, g2, teacher, sub = (sock(app, world, u) for u in (world.g1, world.g2, world.teacher, world.subject_teacher))
    for s in (g1, g2, teacher, sub):
        s.get_received()
    # what the receipts show a guardian: the teachers' marks and their own, not other families'
    receipts = client.get(f"{API}/conversations/{channel}/receipts", headers=world.h(world.g1)).json
    assert {r["user_id"] for r in receipts["reads"]} == {str(world.teacher.id), str(world.subject_teacher.id),
                                                         str(world.g1.id)}

    assert g2.emit("message:read", {"conversation_id": channel, "up_to_seq": 1}, callback=True) == {"up_to_seq": 1}
    g2.emit("typing", {"conversation_id": channel})
    read_by_g2 = ("message:read", {"conversation_id": channel, "user_id": str(world.g2.id), "up_to_seq": 1})
    typing_g2 = ("typing", {"conversation_id": channel, "user_id": str(world.g2.id)})
    assert events(g1) == []  # another family learns nothing
    for s in (teacher, sub):
        assert events(s) == [read_by_g2, typing_g2]
    assert events(g2) == [read_by_g2]  # one's own devices see one's own mark

    # a teacher's read and typing are what the receipts show everyone
    assert sub.emit("message:read", {"conversation_id": channel, "up_to_seq": 1}, callback=True) == {"up_to_seq": 1}
    teacher.emit("typing", {"conversation_id": channel})
    read_by_sub = ("message:read", {"conversation_id": channel, "user_id": str(world.subject_teacher.id),
                                    "up_to_seq": 1})
    typing_teacher = ("typing", {"conversation_id": channel, "user_id": str(world.teacher.id)})
    for s in (g1, g2):
        assert events(s) == [read_by_sub, typing_teacher]
    assert events(teacher) == [read_by_sub]
    assert events(sub) == [read_by_sub, typing_teacher]
    for s in (g1, g2, teacher, sub):
        s.disconnect()


# --- 4. uploads: who may, how much, and unsent files go ---------------------------------------------
@pytest.fixture
def quota_config(database_url, make_config):
    return make_config(database_url, max_upload_bytes=4096, upload_quota_bytes_per_day=3 * len(PNG))


def test_only_people_with_a_role_or_a_child_may_upload(client, world):
    nobody = world.user("Người lạ")
    r = upload(client, world, nobody)
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert Attachment.select().count() == 0
    for user in (world.g1, world.teacher, world.cafeteria, world.admin):
        assert upload(client, world, user).status_code == 201


def test_upload_quota_per_user_per_day(database_url, make_config, make):
    from tests.support.apps import running_app

    from .conftest import World

    config = make_config(database_url, max_upload_bytes=4096, upload_quota_bytes_per_day=3 * len(PNG))
    with running_app(config) as app:
        world, client = World(make), app.test_client()
        clock = {"now": dt.datetime(2026, 11, 23, 2, 0)}
        app.extensions["lienlac.clock"] = lambda: clock["now"]
        for _ in range(3):
            assert upload(client, world, world.g1).status_code == 201
        r = upload(client, world, world.g1)
        assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) > 0
        assert Attachment.select().where(Attachment.uploader == world.g1.id).count() == 3
        assert upload(client, world, world.g2).status_code == 201  # per user
        clock["now"] += dt.timedelta(hours=24, seconds=1)
        assert upload(client, world, world.g1).status_code == 201


def test_unsent_attachments_are_deleted_after_a_day(app, client, world):
    from messaging import jobs

    clock = {"now": dt.datetime(2026, 11, 23, 2, 0)}
    app.extensions["lienlac.clock"] = lambda: clock["now"]
    conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
    sent, unsent = upload(client, world, world.g1).json["id"], upload(client, world, world.g1).json["id"]
    assert send(client, world, world.g1, conv, "ảnh", attachments=[sent]).status_code == 201
    clock["now"] += dt.timedelta(hours=23)
    recent = upload(client, world, world.g1).json["id"]
    keys = {a.id: a.storage_key for a in Attachment.select()}
    store = logic.storage_mod.storage()

    clock["now"] += dt.timedelta(hours=2)  # the unsent one is 25 h old, the recent one 2 h
    jobs.purge_unsent_attachments()
    assert client.get(f"{API}/attachments/{unsent}", headers=world.h(world.g1)).status_code == 404
    with pytest.raises(FileNotFoundError):
        store.get(keys[int(unsent)])
    r = send(client, world, world.g1, conv, "gửi lại", attachments=[unsent])
    assert r.status_code == 422  # gone: cannot be sent any more
    assert client.get(f"{API}/attachments/{sent}", headers=world.h(world.teacher)).status_code == 200
    assert client.get(f"{API}/attachments/{recent}", headers=world.h(world.g1)).status_code == 200
    assert store.get(keys[int(recent)]) == PNG


def test_an_upload_schedules_the_purge_of_unsent_files(database_url, make_config, redis_url, make):
    from rq.registry import ScheduledJobRegistry

    from messaging import jobs as messaging_jobs
    from service import jobs
    from tests.support.apps import running_app

    from .conftest import World

    with running_app(make_config(database_url, redis_url=redis_url), web=False) as app:
        world, client = World(make), app.test_client()
        registry = ScheduledJobRegistry("low", connection=jobs.redis_connection())
        assert registry.get_job_ids() == []  # nothing uploaded, nothing scheduled
        assert upload(client, world, world.g1).status_code == 201
        [job_id] = registry.get_job_ids()
        assert job_id.startswith("messaging-purge-attachments-")
        due = registry.get_scheduled_time(job_id).replace(tzinfo=None)
        ttl = dt.timedelta(seconds=app.config["LIENLAC"].unsent_attachment_seconds)
        assert ttl <= due - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) <= ttl + dt.timedelta(hours=1)
        assert upload(client, world, world.g2).status_code == 201
        assert len(registry.get_job_ids()) in (1, 2)  # one per hour of expiry (2 only across an hour boundary)
        # the job itself purges what is old enough (here: nothing yet)
        assert messaging_jobs.purge_unsent_attachments() == 0


# --- 5. sending is rate limited, over HTTP and sockets, on one counter ------------------------------
def test_message_sending_rate_limit_http_and_socket(database_url, make_config, make):
    from tests.support.apps import running_app

    from .conftest import World

    with running_app(make_config(database_url, message_rate_limit="3 per hour")) as app:
        world, client = World(make), app.test_client()
        conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
        s = sock(app, world, world.g1)
        assert send(client, world, world.g1, conv, "1").status_code == 201
        assert send(client, world, world.g1, conv, "2").status_code == 201
        ack = s.emit("message:send", {"conversation_id": conv, "client_id": cid(), "body": "3"}, callback=True)
        assert "message" in ack, ack
        r = send(client, world, world.g1, conv, "4")
        assert r.status_code == 429 and r.json["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) > 0
        ack = s.emit("message:send", {"conversation_id": conv, "client_id": cid(), "body": "5"}, callback=True)
        assert ack["error"]["code"] == "rate_limited" and ack["error"]["retry_after"] > 0
        assert Message.select().where(Message.conversation == int(conv)).count() == 3
        assert send(client, world, world.teacher, conv, "cô trả lời").status_code == 201  # per sender
        s.disconnect()


def test_no_push_to_an_unlinked_guardian(database_url, make_config, make, fcm):
    from tests.support.apps import running_app

    from .conftest import World

    config = make_config(database_url, fcm_endpoint=fcm.url, firebase_project_id=fcm.project_id,
                         fcm_rate_per_second=100000.0)
    with running_app(config) as app:
        world, client = World(make), app.test_client()
        tokens = {}
        for user in (world.g1, world.teacher):
            tokens[user.id] = f"fcm-{uuid.uuid4().hex}"
            r = client.post(f"{API}/devices", headers=world.h(user), json={"token": tokens[user.id], "platform": "android"})
            assert r.status_code in (200, 201)
        conv = open_direct(client, world, world.g1, world.s1, world.teacher).json["id"]
        assert send(client, world, world.teacher, conv, "trước").status_code == 201
        assert len([m for m in fcm.accepted() if m["token"] == tokens[world.g1.id]]) == 1
        client.delete(f"{API}/students/{world.s1.id}/guardians/{world.g1.id}", headers=world.h(world.admin))
        assert send(client, world, world.teacher, conv, "sau").status_code == 201
        assert len([m for m in fcm.accepted() if m["token"] == tokens[world.g1.id]]) == 1
