"""Socket.IO events in one process (Flask-SocketIO's test client), on SQLite and PostgreSQL."""
from __future__ import annotations

from service.realtime import socketio

from .conftest import VIETNAMESE, cid

API = "/api/v1"


def sock(app, world, user):
    client = socketio.test_client(app, auth={"token": world.make.token(user)})
    assert client.is_connected()
    return client


def events(client, name=None):
    got = client.get_received()
    return [(e["name"], e["args"][0] if e["args"] else None) for e in got if name is None or e["name"] == name]


def test_socket_conversation_flow(app, client, world):
    g1, teacher, g3 = sock(app, world, world.g1), sock(app, world, world.teacher), sock(app, world, world.g3)
    # the conversation is opened after both are connected: their sockets join its room at once
    r = client.post(f"{API}/conversations", headers=world.h(world.g1),
                    json={"kind": "direct", "student_id": str(world.s1.id), "participant_ids": [str(world.teacher.id)]})
    conv = r.json["id"]
    for c in (g1, teacher, g3):
        c.get_received()

    # HTTP → socket
    r = client.post(f"{API}/conversations/{conv}/messages", headers=world.h(world.teacher),
                    json={"client_id": "t-1", "body": "Chào chị, cháu An hôm nay ngoan lắm."})
    assert r.status_code == 201
    got = events(g1, "message:new")
    assert [e["message"]["body"] for _, e in got] == ["Chào chị, cháu An hôm nay ngoan lắm."]
    assert got[0][1]["message"]["seq"] == 1 and got[0][1]["message"]["conversation_id"] == conv

    # socket → socket, acknowledged with the stored message
    ack = g1.emit("message:send", {"conversation_id": conv, "client_id": "g-1", "body": VIETNAMESE}, callback=True)
    assert ack["message"]["body"] == VIETNAMESE and ack["message"]["seq"] == 2 and "error" not in ack
    again = g1.emit("message:send", {"conversation_id": conv, "client_id": "g-1", "body": VIETNAMESE}, callback=True)
    assert again["message"]["id"] == ack["message"]["id"]
    assert [e["message"]["seq"] for _, e in events(teacher, "message:new")] == [1, 2]  # the repeat is not re-sent
    assert [e["message"]["client_id"] for _, e in events(g1, "message:new")] == ["g-1"]  # own devices hear it

    # typing: relayed to the others, not stored, not echoed to the typist
    g1.emit("typing", {"conversation_id": conv})
    assert events(teacher, "typing") == [("typing", {"conversation_id": conv, "user_id": str(world.g1.id)})]
    assert events(g1, "typing") == []

    # read receipts
    ack = teacher.emit("message:read", {"conversation_id": conv, "up_to_seq": 2}, callback=True)
    assert ack == {"up_to_seq": 2}
    assert events(g1, "message:read") == [("message:read", {"conversation_id": conv, "user_id": str(world.teacher.id),
                                                            "up_to_seq": 2})]
    assert teacher.emit("message:read", {"conversation_id": conv, "up_to_seq": 1}, callback=True) == {"up_to_seq": 2}
    assert events(g1, "message:read") == []  # nothing moved: no event
    assert [n for n, _ in events(teacher)] == ["message:read"]  # its own devices hear it once

    # errors come back in the acknowledgement, nothing is stored or sent
    for payload, code in (({"conversation_id": conv, "client_id": "e", "body": ""}, "validation_error"),
                          ({"conversation_id": conv, "client_id": "e", "body": "x" * 4001}, "validation_error"),
                          ({"conversation_id": conv, "body": "no id"}, "validation_error"),
                          ({"conversation_id": "99999", "client_id": "e", "body": "x"}, "not_found"),
                          ("not an object", "validation_error")):
        ack = g1.emit("message:send", payload, callback=True)
        assert ack["error"]["code"] == code, (payload, ack)

    # the outsider: every attempt is refused and they heard nothing all along
    ack = g3.emit("message:send", {"conversation_id": conv, "client_id": "x", "body": "xin vào"}, callback=True)
    assert ack["error"]["code"] == "not_found"
    assert g3.emit("message:read", {"conversation_id": conv, "up_to_seq": 2}, callback=True)["error"]["code"] == "not_found"
    g3.emit("typing", {"conversation_id": conv})
    assert events(g3) == []
    assert events(teacher) == [] and events(g1) == []
    history = client.get(f"{API}/conversations/{conv}/messages", headers=world.h(world.g1)).json["items"]
    assert [m["seq"] for m in history] == [2, 1]

    # edit and delete reach the room as message:updated
    mid = history[0]["id"]
    client.patch(f"{API}/conversations/{conv}/messages/{mid}", headers=world.h(world.g1), json={"body": "sửa lại"})
    client.delete(f"{API}/conversations/{conv}/messages/{mid}", headers=world.h(world.g1))
    updates = [(e["message"]["body"], e["message"]["deleted"]) for _, e in events(teacher, "message:updated")]
    assert updates == [("sửa lại", False), ("", True)]
    for c in (g1, teacher, g3):
        c.disconnect()


def test_class_channel_rooms_on_connect_and_refused_tokens(app, client, world):
    channel = client.post(f"{API}/conversations", headers=world.h(world.teacher),
                          json={"kind": "class", "class_id": str(world.klass.id)}).json["id"]
    g1, g2, g3 = sock(app, world, world.g1), sock(app, world, world.g2), sock(app, world, world.g3)
    sub = sock(app, world, world.subject_teacher)
    client.patch(f"{API}/conversations/{channel}", headers=world.h(world.teacher), json={"announcement_only": True})
    ack = g1.emit("message:send", {"conversation_id": channel, "client_id": cid(), "body": "hỏi"}, callback=True)
    assert ack["error"]["code"] == "forbidden"
    r = client.post(f"{API}/conversations/{channel}/messages", headers=world.h(world.teacher),
                    json={"client_id": cid(), "body": "Thứ Sáu họp phụ huynh lúc 17:00"})
    assert r.status_code == 201
    for c in (g1, g2, sub):
        got = events(c)
        assert ("conversation:updated", {"conversation_id": channel, "announcement_only": True}) in got
        assert [e["message"]["body"] for n, e in got if n == "message:new"] == ["Thứ Sáu họp phụ huynh lúc 17:00"]
    assert events(g3) == []
    # a bad token is refused
    bad = socketio.test_client(app, auth={"token": "nope"})
    assert not bad.is_connected()
    assert not socketio.test_client(app).is_connected()
    for c in (g1, g2, g3, sub):
        c.disconnect()


def test_the_send_ack_is_the_published_message_plus_the_senders_notice(app, client, world):
    """The ack reuses the payload ``message:new`` carried; a notice (outside office hours) is the
    sender's alone: in the ack, never in what the others receive."""
    import datetime as dt

    conv = client.post("/api/v1/conversations", headers=world.h(world.g1),
                       json={"kind": "direct", "student_id": str(world.s1.id),
                             "participant_ids": [str(world.teacher.id)]}).json["id"]
    r = client.put("/api/v1/me/office-hours", headers=world.h(world.teacher),
                   json={"slots": [{"weekday": 1, "start": "07:30", "end": "11:00"}]})
    assert r.status_code == 200, r.json
    clock = {"now": dt.datetime(2026, 11, 23, 2, 0)}  # Monday 09:00 in Hà Nội: office hours
    app.extensions["lienlac.clock"] = lambda: clock["now"]
    sender = socketio.test_client(app, auth={"token": world.make.token(world.g1)})
    teacher = socketio.test_client(app, auth={"token": world.make.token(world.teacher)})
    for client_id, hour, noticed in (("in-hours", 2, False), ("late", 14, True)):
        clock["now"] = dt.datetime(2026, 11, 23, hour, 0)
        ack = sender.emit("message:send", {"conversation_id": conv, "client_id": client_id, "body": "Chào cô"},
                          callback=True)
        [heard] = [e["args"][0]["message"] for e in teacher.get_received() if e["name"] == "message:new"]
        assert heard["notice"] is None and ack["message"]["client_id"] == client_id
        assert (ack["message"]["notice"] or {}).get("kind") == ("outside_office_hours" if noticed else None)
        assert {k: v for k, v in ack["message"].items() if k != "notice"} == {
            k: v for k, v in heard.items() if k != "notice"}
        assert "_published_payload" not in ack["message"]
    sender.disconnect()
    teacher.disconnect()
