"""Socket.IO: one server per web process, rooms shared through Redis when ``REDIS_URL`` is set.

``emit_to(room, event, data)`` works everywhere: in a web process it uses the app's server
(which publishes through the Redis queue to the other processes); in a worker or the CLI it
uses a write-only ``SocketIO(message_queue=REDIS_URL)``. Rooms: ``user:<id>`` (messaging
delivers to the rooms of a conversation's current members, computed per event, so access follows
the roster; ``room`` may be a list of rooms).

A socket connects with ``auth: {token: <access_token>}``; a bad or missing token is refused
(the client's ``connect_error`` gets ``message`` and ``data: {code: "unauthorized", message}``). An accepted socket joins
``user:<id>`` and whatever the packages' ``on_connect`` hooks add, and counts as online
(``service.presence``).

Sessions end on sockets too. Each socket remembers its token's family and expiry. Revoking a
session (logout, refresh-token reuse, password change, deactivation) calls
``disconnect_sessions`` after the commit: the socket ids of that user and family are read from
the registry (Redis hash ``lienlac:sessions:<user_id>``: sid → family, kept beside presence;
this process's table without Redis) and each is disconnected through python-socketio's
manager, which publishes the disconnect on the message queue so the web process holding the
socket drops it. Between the commit and that message, every event re-checks the socket
(``socket_user_id``: expiry in memory, revocation and the active flag in the database) and an
event on a dead session is refused and the socket dropped. A sweeper per web process drops
sockets whose access token has expired (every ``socket_sweep_seconds``) and re-checks all
local sessions every ``socket_revalidate_seconds`` in case a queue message was lost.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time

from flask import current_app, has_app_context, request
from flask_socketio import ConnectionRefusedError, SocketIO, join_room

from . import jobs, presence
from .apidocs import socket_event
from .db import connection, connection_if_used, on_commit
from .errors import ApiError, Unauthorized

log = logging.getLogger("lienlac.realtime")

socketio = SocketIO()
_external: dict = {"emitter": None, "url": None}
_lock = threading.Lock()
_refresher: dict = {"pid": None}
#: this process's sockets: sid → (user_id, family, expiry as unix time)
_local_sessions: dict[str, tuple[int, str, float]] = {}
_sweeper: dict = {"pid": None, "sweep": 1.0, "revalidate": 30.0, "clock": None}


def user_room(user_id) -> str:
    return f"user:{user_id}"


#: where Socket.IO's requests arrive (python-socketio's default ``socketio_path``)
SOCKETIO_PATH = "/socket.io"


def init_app(app, config) -> None:
    # manage_session=False: no cookie sessions to copy per socket (service.app._NoSessions)
    kwargs = dict(async_mode=config.socketio_async_mode, cors_allowed_origins="*",
                  json=None, logger=False, engineio_logger=False, manage_session=False,
                  path=SOCKETIO_PATH.strip("/"))
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
    _sweeper["sweep"] = float(config.socket_sweep_seconds)
    _sweeper["revalidate"] = float(config.socket_revalidate_seconds)
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


def _start_presence_refresher() -> None:
    """With Redis, keep this process's sockets fresh in the shared presence table."""
    if jobs.redis_connection() is None or _refresher["pid"] == os.getpid():
        return
    with _lock:
        if _refresher["pid"] == os.getpid():
            return
        _refresher["pid"] = os.getpid()

    app = current_app._get_current_object()
    with app.app_context():
        period = presence.refresh_seconds()

    def loop():
        while True:
            socketio.sleep(period)
            try:
                presence.refresh(presence.local_sockets())
                _refresh_sessions()
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
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token or not isinstance(token, str):
            message = "Connect with auth: {token: <access_token>}."
            raise ConnectionRefusedError(message, {"code": "unauthorized", "message": message})
        try:
            with connection():
                user_id, family, expires = _sessions().identify(token)
                # registered before the re-check below: a revocation committed meanwhile either
                # finds this socket in the registry or is seen by the re-check
                _register_session(user_id, request.sid, family, expires)
                if not _session_alive(user_id, family, expires):
                    raise Unauthorized("The session has ended.")
                request.environ["lienlac.user_id"] = user_id
                request.environ["lienlac.family"] = family
                request.environ["lienlac.expires"] = expires
                join_room(user_room(user_id))
                for hook in _connect_hooks:
                    hook(user_id, request.sid)
        except ApiError as exc:
            _forget_session(request.sid)
            raise ConnectionRefusedError(exc.message, {"code": exc.code, "message": exc.message}) from None
        except Exception:
            _forget_session(request.sid)
            raise
        presence.add_local(user_id, request.sid)
        presence.mark_online(user_id, request.sid)
        _start_presence_refresher()
        _start_sweeper()
        return True

    @socketio.on("disconnect")
    def _disconnect(*_args):
        _forget_session(request.sid)
        user_id = request.environ.get("lienlac.user_id")
        if user_id is None:
            return
        presence.remove_local(user_id, request.sid)
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
    """The authenticated user of the socket handling the current event, or None.

    None also when the socket's session has ended since it connected (logout, revoked family,
    password change elsewhere, deactivated account, access token expired): the socket is then
    disconnected, and the handler refuses the event. Every event handler starts here.
    """
    user_id = request.environ.get("lienlac.user_id")
    if user_id is None or request.environ.get("lienlac.ended"):
        return None
    family = request.environ.get("lienlac.family")
    expires = request.environ.get("lienlac.expires", 0.0)
    with connection_if_used():  # (the sessions' cache answers most without the database)
        alive = _session_alive(user_id, family, expires)
    if not alive:
        log.info("event on an ended session: socket dropped", extra={"user_id": user_id})
        request.environ["lienlac.ended"] = True  # (user_id stays: the disconnect handler cleans up with it)
        sid = request.sid

        def drop_after_the_answer():  # the refusal goes out first (a disconnect now would swallow it)
            socketio.sleep(0.1)
            _drop(sid)

        socketio.start_background_task(drop_after_the_answer)
        return None
    return user_id


# --- ending sessions on sockets ------------------------------------------------------------------
def _now() -> float:
    clock = _sweeper["clock"]
    return clock() if clock is not None else time.time()


def _sessions_key(user_id) -> str:
    return f"lienlac:sessions:{user_id}"


def _register_session(user_id: int, sid: str, family: str, expires: float) -> None:
    with _lock:
        _local_sessions[sid] = (int(user_id), family, expires)
    redis = jobs.redis_connection()
    if redis is not None:
        pipe = redis.pipeline()
        pipe.hset(_sessions_key(user_id), sid, family)
        pipe.expire(_sessions_key(user_id), int(presence.stale_seconds()) + 1)
        pipe.execute()


def _refresh_sessions() -> None:
    """Keep this process's entries in the registry alive (they expire with presence)."""
    redis = jobs.redis_connection()
    with _lock:
        by_user: dict[int, dict[str, str]] = {}
        for sid, (user_id, family, _exp) in _local_sessions.items():
            by_user.setdefault(user_id, {})[sid] = family
    if redis is None or not by_user:
        return
    pipe = redis.pipeline(transaction=False)
    for user_id, mapping in by_user.items():
        pipe.hset(_sessions_key(user_id), mapping=mapping)
        pipe.expire(_sessions_key(user_id), int(presence.stale_seconds()) + 1)
    pipe.execute()


def _forget_session(sid: str) -> None:
    with _lock:
        entry = _local_sessions.pop(sid, None)
    if entry is None:
        return
    redis = jobs.redis_connection()
    if redis is not None:
        try:
            redis.hdel(_sessions_key(entry[0]), sid)
        except Exception:  # noqa: BLE001 - the entry expires with presence
            log.warning("could not forget a socket session", exc_info=True)


class SessionChecks:
    """How sockets are authenticated, given by the app (accounts): the core knows no accounts.

    ``identify(token) -> (user_id, family, expires)`` raises an ``ApiError`` for a bad token;
    ``alive(user_id, family) -> bool`` answers whether that session still stands (a connection is open).
    """

    def __init__(self, identify, alive):
        self.identify = identify
        self.alive = alive


def set_session_checks(app, identify, alive) -> None:
    app.extensions["lienlac.socket_sessions"] = SessionChecks(identify, alive)


def _sessions() -> SessionChecks:
    return current_app.extensions["lienlac.socket_sessions"]


def _session_alive(user_id: int, family: str | None, expires: float) -> bool:
    """Cheap: the expiry in memory, then the accounts' check (primary-key reads)."""
    if family is None or expires <= _now():
        return False
    return _sessions().alive(user_id, family)


def _drop(sid: str) -> None:
    """Disconnect a socket of any web process (the manager publishes it on the queue)."""
    if _server_here():
        socketio.server.disconnect(sid, namespace="/")
    elif _external["emitter"] is not None:
        _external["emitter"].server.disconnect(sid, namespace="/")


def disconnect_sessions(user_id: int, family: str | None = None, keep_family: str | None = None) -> int:
    """Disconnect the user's sockets on every web process: those of ``family`` when given, else all
    but ``keep_family``'s. Call after the revocation is committed. Returns how many were asked to go."""
    try:
        redis = jobs.redis_connection()
        if redis is not None:
            raw = redis.hgetall(_sessions_key(user_id))
            sessions = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                        for k, v in raw.items()}
        else:
            with _lock:
                sessions = {sid: fam for sid, (uid, fam, _exp) in _local_sessions.items() if uid == int(user_id)}
        doomed = [sid for sid, fam in sessions.items()
                  if (family is None or fam == family) and (keep_family is None or fam != keep_family)]
        for sid in doomed:
            _drop(sid)
        return len(doomed)
    except Exception:  # noqa: BLE001 - the revocation stands; each event re-checks the socket anyway
        log.warning("could not disconnect ended sessions", exc_info=True, extra={"user_id": user_id})
        return 0


def sweep_sessions(revalidate: bool = False) -> int:
    """Drop this process's sockets whose access token expired (and, with ``revalidate``, whose session
    ended). Run by the sweeper (in an app context); returns how many were dropped."""
    now = _now()
    with _lock:
        sessions = dict(_local_sessions)
    doomed = {sid for sid, (_u, _f, expires) in sessions.items() if expires <= now}
    if revalidate and sessions:
        with connection():
            for sid, (user_id, family, expires) in sessions.items():
                if sid not in doomed and not _session_alive(user_id, family, expires):
                    doomed.add(sid)
    for sid in doomed:
        try:
            socketio.server.disconnect(sid, namespace="/", ignore_queue=True)
        except Exception:  # noqa: BLE001
            log.warning("could not drop a socket", exc_info=True)
        _forget_session(sid)
    return len(doomed)


def _start_sweeper() -> None:
    if _sweeper["pid"] == os.getpid():
        return
    with _lock:
        if _sweeper["pid"] == os.getpid():
            return
        _sweeper["pid"] = os.getpid()
    app = current_app._get_current_object()

    def loop():
        last_check = time.monotonic()
        while True:
            socketio.sleep(_sweeper["sweep"])
            try:
                revalidate = time.monotonic() - last_check >= _sweeper["revalidate"]
                if revalidate:
                    last_check = time.monotonic()
                with app.app_context():
                    sweep_sessions(revalidate)
            except Exception:  # noqa: BLE001 - the database may be briefly away; try again
                log.warning("socket sweep failed", exc_info=True)

    socketio.start_background_task(loop)


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
