"""Pushes for members who are not connected, through the notifications package and the real
firebase-admin SDK pointed at the local FCM server (jobs inline, one process, both backends)."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from service.realtime import socketio

API = "/api/v1"


@pytest.fixture
def config(push_config):
    return push_config


def device(client, world, user) -> str:
    token = f"fcm-{uuid.uuid4().hex}"
    r = client.post(f"{API}/devices", headers=world.h(user), json={"token": token, "platform": "android"})
    assert r.status_code in (200, 201), r.json
    return token


def pushes(fcm, token):
    return [r["message"] for r in fcm.accepted() if r["token"] == token]


def test_push_to_members_not_connected_silent_outside_office_hours(app, client, world, fcm):
    teacher_phone, guardian_phone = device(client, world, world.teacher), device(client, world, world.g1)
    conv = client.post(f"{API}/conversations", headers=world.h(world.g1),
                       json={"kind": "direct", "student_id": str(world.s1.id),
                             "participant_ids": [str(world.teacher.id)]}).json["id"]
    r = client.put(f"{API}/me/office-hours", headers=world.h(world.teacher),
                   json={"slots": [{"weekday": 1, "start": "07:30", "end": "11:00"}]})
    assert r.status_code == 200, r.json  # what follows relies on these office hours
    assert client.get(f"{API}/me/office-hours", headers=world.h(world.teacher)).json["slots"] == [
        {"weekday": 1, "start": "07:30", "end": "11:00"}]
    clock = {"now": dt.datetime(2026, 11, 23, 2, 0)}  # Monday 09:00 in Hà Nội: office hours
    app.extensions["lienlac.clock"] = lambda: clock["now"]

    # the guardian is connected, the teacher is not: only the teacher's phone rings
    online = socketio.test_client(app, auth={"token": world.make.token(world.g1)})
    r = client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.g1),
                    json={"client_id": "1", "body": "Cô ơi, mai cháu đi khám răng ạ"})
    assert r.status_code == 201
    [push] = pushes(fcm, teacher_phone)
    assert push["data"]["type"] == "conversation" and push["data"]["id"] == conv
    assert push["data"].get("silent") != "1"
    assert "Cô ơi, mai cháu đi khám răng ạ" in str(push)
    assert pushes(fcm, guardian_phone) == []

    # Monday 21:00 local: outside office hours, still delivered, but the push is silent
    clock["now"] = dt.datetime(2026, 11, 23, 14, 0)
    r = client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.g1),
                    json={"client_id": "2", "body": "Cháu xin nghỉ buổi chiều"})
    assert r.json["notice"]["kind"] == "outside_office_hours"
    late = pushes(fcm, teacher_phone)[1]
    assert late["data"].get("silent") == "1"
    assert late["android"]["priority"] == "normal"

    # the teacher answers: the guardian is connected (socket), so no push for her
    client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.teacher),
                json={"client_id": "3", "body": "Cô biết rồi"})
    assert pushes(fcm, guardian_phone) == []
    online.disconnect()
    client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.teacher),
                json={"client_id": "4", "body": "Chúc cháu mau khỏe"})
    [push] = pushes(fcm, guardian_phone)
    assert push["data"]["id"] == conv and push["data"].get("silent") != "1"  # office hours silence teachers only
