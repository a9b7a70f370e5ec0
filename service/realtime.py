"""Socket.IO: one server per web process, rooms shared through Redis when ``REDIS_URL`` is set.

``emit_to(room, event, data)`` works everywhere: in a web process it uses the app's server
(which publishes through the Redis queue to the other processes); in a worker or the CLI it
uses a write-only ``SocketIO(message_queue=REDIS_URL)``. Rooms: ``user:<id>``,
``conversation:<id>``.
"""
from __future__ import annotations

import logging
import threading

from flask import request
from flask_socketio import SocketIO, join_room

log = logging.getLogger("lienlac.realtime")

socketio = SocketIO()
_external: dict = {"emitter": None, "url": None}
_presence_lock = threading.Lock()
_local_sids: dict[int, set[str]] = {}


def user_room(user_id) -> str:
    return f"user:{user_id}"


def init_app(app, config) -> None:
    kwargs = dict(async_mode=config.socketio_async_mode, cors_allowed_origins="*",
                  json=None, logger=False, engineio_logger=False)
    if config.redis_url:
        kwargs["message_queue"] = config.redis_url
        kwargs["channel"] = config.socketio_channel
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    socketio.init_app(app, **kwargs)
    app.extensions["lienlac.socketio_ready"] = True
    _register_connection_handlers()
    configure_emitter(config)


def configure_emitter(config) -> None:
    """For processes without a web server (worker, CLI): a write-only emitter on the queue."""
    key = (config.redis_url, config.socketio_channel)
    if config.redis_url and _external["url"] != key:
        _external["emitter"] = SocketIO(message_queue=config.redis_url, channel=config.socketio_channel,
                                        write_only=True)
        _external["url"] = key


def emit_to(room: str, event: str, data) -> None:
    if getattr(socketio, "server", None) is not None:
        socketio.emit(event, data, to=room)
    elif _external["emitter"] is not None:
        _external["emitter"].emit(event, data, to=room)
    else:
        log.debug("no socket server: dropped %s for %s", event, room)


def is_connected_here(user_id: int) -> bool:
    with _presence_lock:
        return bool(_local_sids.get(int(user_id)))


_handlers_registered = False


def _register_connection_handlers() -> None:
    global _handlers_registered
    if _handlers_registered:
        return
    _handlers_registered = True

    @socketio.on("connect")
    def _connect(auth=None):
        from . import accounts, presence
        from .db import connection
        from .errors import ApiError

        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        if not token:
            return False
        try:
            with connection():
                user, _claims = accounts.user_from_token(token)
        except ApiError:
            return False
        request.environ["lienlac.user_id"] = user.id
        join_room(user_room(user.id))
        with _presence_lock:
            _local_sids.setdefault(user.id, set()).add(request.sid)
        presence.mark_online(user.id, request.sid)
        for hook in _connect_hooks:
            hook(user.id, request.sid)
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


_connect_hooks: list = []


def on_connect(hook):
    """Packages add what a fresh socket joins (e.g. messaging: its conversation rooms)."""
    _connect_hooks.append(hook)
    return hook


def socket_user_id() -> int | None:
    """The authenticated user of the socket handling the current event."""
    return request.environ.get("lienlac.user_id")
