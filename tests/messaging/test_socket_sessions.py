"""Issue 7: a socket lives no longer than its session (real python-socketio clients, a served app).

The app is served in this process by Werkzeug's threaded server (SQLite and PostgreSQL); the
clients are real python-socketio clients over HTTP long-polling. The two-process case with Redis
is in ``test_multiprocess.py``.
"""
from __future__ import annotations

import contextlib
import threading
import time

import pytest
import socketio
from werkzeug.serving import make_server

from service import realtime
from service.accounts import logic as accounts
from service.db import write_transaction

from ..support.servers import wait_for
from .conftest import cid

API = "/api/v1"


@contextlib.contextmanager
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


class Sock:
    def __init__(self, url, token):
        self.sio = socketio.Client(reconnection=False)
        self.sio.connect(url, auth={"token": token}, transports=["polling"], wait_timeout=10)

    @property
    def connected(self) -> bool:
        return self.sio.connected

    def call(self, event, data, timeout=10):
        return self.sio.call(event, data, timeout=timeout)

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()


@pytest.fixture
def url(app):
    with served(app) as base:
        yield base


@pytest.fixture
def socks():
    opened: list[Sock] = []
    yield opened
    for s in opened:
        s.close()
    realtime._sweeper["clock"] = None


def open_sock(socks, url, token) -> Sock:
    s = Sock(url, token)
    socks.append(s)
    return s


def conversation(client, world) -> str:
    r = client.post(f"{API}/conversations", headers=world.h(world.g1),
                    json={"kind": "direct", "student_id": str(world.s1.id), "participant_ids": [str(world.teacher.id)]})
    assert r.status_code in (200, 201), r.json
    return r.json["id"]


def bodies(client, world, conv) -> list[str]:
    r = client.get(f"{API}/conversations/{conv}/messages", headers=world.h(world.teacher))
    return [m["body"] for m in r.json["items"]]


def bearer(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_logout_disconnects_the_socket_and_nothing_sent_on_it_is_stored(app, client, world, url, socks):
    conv = conversation(client, world)
    session = accounts.start_session(world.g1)
    token = session["access_token"]
    other = accounts.start_session(world.g1)["access_token"]  # another device of the same user
    s, s_other = open_sock(socks, url, token), open_sock(socks, url, other)
    ack = s.call("message:send", {"conversation_id": conv, "client_id": cid(), "body": "trước"})
    assert ack["message"]["body"] == "trước"

    assert client.post(f"{API}/auth/logout", headers=bearer(token)).status_code == 204
    wait_for(lambda: not s.connected, timeout=15, message="the logged-out socket to be disconnected")
    with pytest.raises(socketio.exceptions.SocketIOError):
        s.call("message:send", {"conversation_id": conv, "client_id": cid(), "body": "sau"}, timeout=2)
    assert bodies(client, world, conv) == ["trước"]
    assert s_other.connected  # another session of the same user stays
    assert "server_time" in s_other.call("ping", {})
    with pytest.raises(socketio.exceptions.ConnectionError):  # and the token cannot connect again
        Sock(url, token)


def test_an_event_on_an_ended_session_is_refused_before_the_disconnect_arrives(app, client, world, url, socks):
    """Revoked in the database (as another web process would) but no disconnect sent: the next event
    on the socket is refused, nothing is stored and the socket is dropped."""
    conv = conversation(client, world)
    token = accounts.start_session(world.g1)["access_token"]
    s = open_sock(socks, url, token)
    claims = accounts.decode_access_token(token)
    with write_transaction():
        accounts.revoke_family(claims["fam"], world.g1.id, "test")
    ack = s.call("message:send", {"conversation_id": conv, "client_id": cid(), "body": "lọt qua?"})
    assert ack == {"error": {"code": "unauthorized", "message": "Not connected."}}
    assert bodies(client, world, conv) == []
    wait_for(lambda: not s.connected, timeout=15, message="the socket to be dropped")
    wait_for(lambda: not realtime.is_connected_here(world.g1.id), timeout=15, message="the user to go offline")


def test_password_change_drops_every_other_session_socket_and_keeps_this_one(app, client, world, url, socks):
    user = world.make.user("Mẹ An")
    from service.roster import logic as roster
    roster.link_guardian(world.s1.id, user.id, "mother")
    mine, theirs = accounts.start_session(user), accounts.start_session(user)
    s_mine, s_theirs = open_sock(socks, url, mine["access_token"]), open_sock(socks, url, theirs["access_token"])
    r = client.patch(f"{API}/me", json={"password": "mat-khau-moi-789", "current_password": "mat-khau-123"},
                     headers=bearer(mine["access_token"]))
    assert r.status_code == 200, r.json
    wait_for(lambda: not s_theirs.connected, timeout=15, message="the other session's socket to go")
    assert s_mine.connected and "server_time" in s_mine.call("ping", {})


def test_refresh_token_reuse_drops_the_family_sockets(app, client, world, url, socks):
    session = accounts.start_session(world.g1)
    s = open_sock(socks, url, session["access_token"])
    r = client.post(f"{API}/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 200
    assert s.connected  # rotation itself ends nothing
    again = client.post(f"{API}/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert again.status_code == 401  # reuse: the family is revoked, and its sockets go
    wait_for(lambda: not s.connected, timeout=15, message="the reused family's socket to go")


def test_deactivation_drops_every_socket_of_the_user(app, client, world, url, socks):
    a = open_sock(socks, url, accounts.start_session(world.g2)["access_token"])
    b = open_sock(socks, url, accounts.start_session(world.g2)["access_token"])
    bystander = open_sock(socks, url, accounts.start_session(world.g1)["access_token"])
    accounts.deactivate_user(world.g2.id)
    wait_for(lambda: not a.connected and not b.connected, timeout=15, message="the deactivated user's sockets")
    assert bystander.connected


def test_a_socket_is_dropped_when_its_access_token_expires(app, client, world, url, socks):
    conv = conversation(client, world)
    token = accounts.start_session(world.g1)["access_token"]
    expires = accounts.decode_access_token(token)["exp"]
    s = open_sock(socks, url, token)
    assert "server_time" in s.call("ping", {})
    # time is injected: the web process's clock moves past the token's expiry
    realtime._sweeper["clock"] = lambda: expires + 1
    try:  # the event is refused, whether or not the sweeper dropped the socket first
        ack = s.call("message:send", {"conversation_id": conv, "client_id": cid(), "body": "hết hạn"}, timeout=3)
        assert ack["error"]["code"] == "unauthorized"
    except socketio.exceptions.SocketIOError:
        pass
    wait_for(lambda: not s.connected, timeout=15, message="the expired socket to be dropped")
    assert bodies(client, world, conv) == []


def test_the_sweeper_drops_expired_sockets_without_any_event(app, client, world, url, socks):
    token = accounts.start_session(world.g1)["access_token"]
    expires = accounts.decode_access_token(token)["exp"]
    s = open_sock(socks, url, token)
    realtime._sweeper["clock"] = lambda: expires - 1
    assert realtime.sweep_sessions() == 0 and s.connected
    realtime._sweeper["clock"] = lambda: expires
    wait_for(lambda: not s.connected, timeout=15, message="the sweeper to drop the expired socket")
