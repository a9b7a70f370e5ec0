"""Socket.IO: one server per web process, rooms shared through Redis when ``REDIS_URL`` is set.

``emit_to(room, event, data)`` works everywhere: in a web process it uses the app's server
(which publishes through the Redis queue to the other processes); in a worker or the CLI it
uses a write-only ``SocketIO(message_queue=REDIS_URL)``. Rooms: ``user:<id>``,
``conversation:<id>``.

A socket connects with ``auth: {token: <access_token>}``; a bad or missing token is refused
(the client's ``connect_error`` gets ``message`` and ``data: {code: "unauthorized", message}``). An accepted socket joins
``user:<id>`` and whatever the packages' ``on_connect`` hooks add, and counts as online
(``service.presence``).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading

from flask import current_app, has_app_context, request
from flask_socketio import ConnectionRefusedError, SocketIO, join_room

from .apidocs import socket_event
from .db import on_commit

log = logging.getLogger("lienlac.realtime")

socketio = SocketIO()
_external: dict = {"emitter": None, "url": None}
_presence_lock = threading.Lock()
_local_sids: dict[int, set[str]] = {}
_refresher: dict = {"pid": None}


def user_room(user_id) -> str:
    return f"user:{user_id}"


def init_app(app, config) -> None:
    kwargs = dict(async_mode=config.socketio_async_mode, cors_allowed_origins="*",
                  json=None, logger=False, engineio_logger=False)
    if config.redis_url:
        kwargs["message_queue"] = config.redis_url
        kwargs["channel"] = config.socketio_channel
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    # Flask-SocketIO keeps options (message queue, client manager) from an earlier init_app:
    # start from a clean slate so each app gets exactly its own configuration.
    socketio.server_options.clear()
    # before init_app: Flask-SocketIO keeps handlers for later servers only when declared without one
    _register_connection_handlers()
    socketio.init_app(app, **kwargs)
    if socketio.async_mode == "gevent":
        _websocket_on_any_gevent_server(socketio.server.eio)
    app.extensions["lienlac.socketio_ready"] = True
    configure_emitter(config)


def _websocket_on_any_gevent_server(eio) -> None:
    """WebSocket under gevent whichever server runs us.

    python-engineio's gevent driver serves WebSocket through gevent-websocket when that package
    is importable, and then refuses a server that does not provide ``wsgi.websocket`` (plain
    ``gunicorn -k gevent``); without it, it uses simple-websocket, which needs the raw socket.
    This wrapper picks per request: gevent-websocket when the server set ``wsgi.websocket``
    (``lienlac serve``, gunicorn's GeventWebSocketWorker), simple-websocket otherwise.
    """
    from engineio.async_drivers import gevent as driver

    if getattr(driver, "SimpleWebSocketWSGI", None) is not None:
        return  # gevent-websocket is not installed: simple-websocket serves every server already
    import gevent.event
    import gevent.selectors
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

    with_gevent_websocket = driver.WebSocketWSGI

    class WebSocketWSGI:
        def __init__(self, handler, server):
            self.handler, self.server = handler, server

        def __call__(self, environ, start_response):
            if "wsgi.websocket" in environ:
                return with_gevent_websocket(self.handler, self.server)(environ, start_response)
            return SimpleWebSocketWSGI(self.handler, self.server, thread_class=driver.Thread,
                                       event_class=gevent.event.Event,
                                       selector_class=gevent.selectors.DefaultSelector)(environ, start_response)

    eio._async = dict(eio._async, websocket=WebSocketWSGI)


def configure_emitter(config) -> None:
    """For processes without a web server (worker, CLI): a write-only emitter on the queue."""
    key = (config.redis_url, config.socketio_channel)
    if not config.redis_url:
        _external["emitter"], _external["url"] = None, None
    elif _external["url"] != key:
        # no app: Flask-SocketIO makes the queue manager write-only (no listener thread)
        _external["emitter"] = SocketIO(message_queue=config.redis_url, channel=config.socketio_channel,
                                        async_mode="threading")
        _external["url"] = key


def _server_here() -> bool:
    """Does this process serve sockets for the current app?"""
    if has_app_context():
        return bool(current_app.extensions.get("lienlac.socketio_ready")) and socketio.server is not None
    return socketio.server is not None and _external["emitter"] is None


def emit_to(room: str, event: str, data) -> None:
    """Send ``event`` to every socket in ``room``, on whichever web process it is connected.

    Inside a transaction the event leaves when it commits, never if it rolls back.
    """
    on_commit(_emit_now, room, event, data)


def _emit_now(room: str, event: str, data) -> None:
    if _server_here():
        socketio.emit(event, data, to=room)
    elif _external["emitter"] is not None:
        _external["emitter"].emit(event, data, to=room)
    else:
        log.debug("no socket server: dropped an event", extra={"event": event})


def is_connected_here(user_id: int) -> bool:
    with _presence_lock:
        return bool(_local_sids.get(int(user_id)))


def local_sockets() -> dict[int, set[str]]:
    """This process's sockets by user id (a copy)."""
    with _presence_lock:
        return {user_id: set(sids) for user_id, sids in _local_sids.items()}


def _start_presence_refresher() -> None:
    """With Redis, keep this process's sockets fresh in the shared presence table."""
    from . import jobs, presence

    if jobs.redis_connection() is None or _refresher["pid"] == os.getpid():
        return
    with _presence_lock:
        if _refresher["pid"] == os.getpid():
            return
        _refresher["pid"] = os.getpid()

    def loop():
        while True:
            socketio.sleep(presence.refresh_seconds())
            try:
                presence.refresh(local_sockets())
            except Exception:  # noqa: BLE001 - Redis may be briefly away; try again next round
                log.warning("presence refresh failed", exc_info=True)

    socketio.start_background_task(loop)


_handlers_registered = False


def _utc_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _register_connection_handlers() -> None:
    global _handlers_registered
    if _handlers_registered:
        return
    _handlers_registered = True

    @socketio.on("connect")
    def _connect(auth=None):
        from . import presence
        from .accounts import logic as accounts
        from .db import connection
        from .errors import ApiError

        token = auth.get("token") if isinstance(auth, dict) else None
        if not token or not isinstance(token, str):
            message = "Connect with auth: {token: <access_token>}."
            raise ConnectionRefusedError(message, {"code": "unauthorized", "message": message})
        try:
            with connection():
                user, _claims = accounts.user_from_token(token)
                request.environ["lienlac.user_id"] = user.id
                join_room(user_room(user.id))
                for hook in _connect_hooks:
                    hook(user.id, request.sid)
        except ApiError as exc:
            raise ConnectionRefusedError(exc.message, {"code": exc.code, "message": exc.message}) from None
        with _presence_lock:
            _local_sids.setdefault(user.id, set()).add(request.sid)
        presence.mark_online(user.id, request.sid)
        _start_presence_refresher()
        return True

    @socketio.on("disconnect")
    def _disconnect(*_args):
        from . import presence

        user_id = request.environ.get("lienlac.user_id")
        if user_id is None:
            return
        with _presence_lock:
            sids = _local_sids.get(user_id, set())
            sids.discard(request.sid)
            if not sids:
                _local_sids.pop(user_id, None)
        presence.mark_offline(user_id, request.sid)

    @socketio.on("ping")
    def _ping(data=None):
        user_id = socket_user_id()
        if user_id is None:  # not reachable: connect refuses sockets without a user
            return {"error": {"code": "unauthorized", "message": "Not connected."}}
        nonce = data.get("nonce") if isinstance(data, dict) else None
        now = _utc_iso()
        emit_to(user_room(user_id), "pong", {"nonce": None if nonce is None else str(nonce)[:64],
                                             "server_time": now})
        return {"server_time": now}


_connect_hooks: list = []


def on_connect(hook):
    """Packages add what a fresh socket joins (e.g. messaging: its conversation rooms).

    ``hook(user_id, sid)`` runs inside the connect handler with a database connection open.
    """
    _connect_hooks.append(hook)
    return hook


def socket_user_id() -> int | None:
    """The authenticated user of the socket handling the current event."""
    return request.environ.get("lienlac.user_id")


socket_event(
    "ping", "client",
    {"type": "object", "properties": {"nonce": {"type": "string", "maxLength": 64,
                                                "description": "optional; echoed in `pong`"}}},
    "Check the real-time path end to end. Acknowledged with `{server_time}`; the server also sends "
    "`pong` to every socket of the same user (all their devices, on any web process).",
    ack={"type": "object", "properties": {"server_time": {"type": "string", "format": "date-time"}},
         "required": ["server_time"]},
)
socket_event(
    "pong", "server",
    {"type": "object", "properties": {"nonce": {"type": ["string", "null"]},
                                      "server_time": {"type": "string", "format": "date-time"}},
     "required": ["nonce", "server_time"]},
    "Answer to a `ping` from any socket of this user, through the user's room `user:<id>`.",
)
socket_event(
    "connect_error", "server",
    {"type": "object", "properties": {
        "message": {"type": "string"},
        "data": {"type": "object", "properties": {"code": {"type": "string", "enum": ["unauthorized"]},
                                                  "message": {"type": "string"}},
                 "required": ["code", "message"]}},
     "required": ["message", "data"]},
    "The connection is refused (Socket.IO's reserved event; the client library raises it): `auth.token` "
    "is missing, not a valid access token, expired, or its session has ended. Refresh the token "
    "(`POST /auth/refresh`) and connect again.",
)
