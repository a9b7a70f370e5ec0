"""Delivering messaging events to the members' sockets, on any web process.

Every event goes to the ``user:<id>`` rooms of the members computed when it is sent, so a socket
whose user left the roster hears nothing more, on any web process, without rooms to keep in step.

``message:new`` must reach every socket in seq order even with concurrent senders on several
web processes. The sender emits after the commit but while a per-conversation lock is still
held (``sending``: an advisory lock on PostgreSQL), so senders publish to the Redis Socket.IO
channel in seq order and Redis keeps that order. A server's own emit would deliver to its local sockets at once
and to the others through Redis, and a local delivery could overtake a message of another
process still in the channel: so these events go out through a write-only publisher
(``emit_in_order``) and every web process, the sender's included, delivers them from the
channel, in the channel's order.

One event is one PUBLISH whatever the number of members: python-socketio's pub/sub manager puts
the whole room list in one message (``PubSubManager.emit``) and each web process resolves the
rooms against its own sockets.
"""
from __future__ import annotations

import logging
import threading
from typing import Iterable

import socketio as socketio_lib
from flask import current_app, has_app_context

from service import realtime

from ..schemas import MessageOut

log = logging.getLogger("lienlac.messaging")


#: one instance for every message: building a schema costs ~10 times its dump (~0.33 ms against
#: ~0.04 ms here), and ``message:new`` is serialized while the conversation's ordering lock is held.
#: (A marshmallow 4 schema keeps no state between dumps: safe to share between threads.)
_MESSAGE_OUT = MessageOut()


def message_payload(view: dict) -> dict:
    """The JSON of a message, as sent on sockets. A view just published (``published_payload``)
    gives the payload that went out, when nothing has been added to it since (a ``notice``)."""
    sent = view.get(_PUBLISHED)
    if sent is not None and view.get("notice") is None:
        return sent
    return _MESSAGE_OUT.dump(view)


_PUBLISHED = "_published_payload"  # (not a field of MessageOut: no schema dumps it)


def published_payload(view: dict) -> dict:
    """``message_payload(view)``, kept in the view: the sender's ack reuses what ``message:new`` carried."""
    view[_PUBLISHED] = payload = _MESSAGE_OUT.dump(view)
    return payload


def user_rooms(user_ids: Iterable[int]) -> list[str]:
    """The ``user:<id>`` rooms of these users, each once."""
    return [realtime.user_room(u) for u in dict.fromkeys(int(u) for u in user_ids)]


def deliver(user_ids: Iterable[int], event: str, data, ordered: bool = False, skip_sid: str | None = None) -> None:
    """Send ``event`` to every socket of these users (their ``user:<id>`` rooms).

    ``ordered``: through the write-only publisher (``emit_in_order``), for events that must keep
    the conversation's seq order across processes. Nobody to tell: nothing is sent (an empty room
    list would mean "everyone" to python-socketio).
    """
    rooms = user_rooms(user_ids)
    if not rooms:
        return
    if ordered:
        emit_in_order(rooms, event, data)
    elif skip_sid is not None and realtime.socketio.server is not None:
        realtime.socketio.emit(event, data, to=rooms, skip_sid=skip_sid)
    else:
        realtime.emit_to(rooms, event, data)


def _publisher():
    """This app's write-only publisher, or None without Redis (one process)."""
    config = current_app.config["LIENLAC"] if has_app_context() else None
    if config is None or not config.redis_url:
        return None
    key = (config.redis_url, config.socketio_channel)
    publisher = _publishers.get(key)
    if publisher is None:
        with _publishers_guard:
            publisher = _publishers.get(key)
            if publisher is None:
                publisher = _Publisher(config.redis_url, channel=config.socketio_channel, write_only=True)
                _publishers[key] = publisher
    return publisher


def emit_many_in_order(events: list[tuple[list[str], str, object, object]]) -> list:
    """Emit several events ``(rooms, event, data, rider)`` in this order (as ``emit_in_order``), in one
    Redis round trip. ``rider(pipe) -> read(reply) | None``: more Redis commands sent in that round
    trip, queued right after the event's PUBLISH (so Redis runs them after it); returned: each
    rider's ``read`` of its reply (the send path asks presence this way), or None where it did not
    ride (no rider, no Redis, an error: the caller asks on its own). Without Redis (one process) the
    events are plainly emitted, ordered by the caller's lock."""
    publisher = _publisher()
    if publisher is None:
        for rooms, event, data, _rider in events:
            realtime.emit_to(rooms, event, data)
        return [None] * len(events)
    return publisher.emit_many(events)


def emit_in_order(rooms: str | list[str], event: str, data) -> None:
    """Emit so that every web process delivers in one global order (the Redis channel's). Without
    Redis (one process) this is the plain emit: ordered by the caller's lock."""
    publisher = _publisher()
    if publisher is None:
        realtime.emit_to(rooms, event, data)
    else:
        publisher.emit(event, data, namespace="/", room=rooms)


class _Publisher(socketio_lib.RedisManager):
    """The write-only publisher, whose PUBLISHes can go out together, each carrying more commands in
    the same round trip (``emit_many``).

    python-socketio builds the channel's message in ``emit`` and hands it to ``_publish``: during
    ``emit_many`` the current greenlet's (thread's) messages are collected there with their riders,
    then sent in one pipeline (``_send``); otherwise ``_publish`` is the library's own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._riding = threading.local()

    def emit_many(self, events) -> list:
        """Emit ``(rooms, event, data, rider)`` in order, in one pipeline: the riders' answers."""
        self._riding.collected = collected = []
        try:
            for rooms, event, data, rider in events:
                self._riding.rider = rider
                self.emit(event, data, namespace="/", room=rooms)
        finally:
            self._riding.collected = self._riding.rider = None
        return self._send(collected)

    def _publish(self, data):
        collected = getattr(self._riding, "collected", None)
        if collected is None:
            return super()._publish(data)
        collected.append((data, self._riding.rider))  # (emit_many: sent together afterwards)
        return None

    def _send(self, collected: list) -> list:
        """One pipeline: each message's PUBLISH, then its rider's commands. The riders' answers (None
        where one did not ride). If the pipeline fails, each message goes out as the library sends
        it (``RedisManager._publish``: reconnect, retry), in order, and every answer is None."""
        try:
            if not self.connected:
                self._redis_connect()
            pipe = self.redis.pipeline(transaction=False)
            spans = []
            for data, rider in collected:
                pipe.publish(self.channel, self.json.dumps(data))
                start = len(pipe)
                spans.append((start, rider(pipe) if rider is not None else None, len(pipe) > start))
            replies = pipe.execute(raise_on_error=False)
        except Exception:  # noqa: BLE001 - the library's own publish (reconnect, retry) sends them
            log.warning("publishing with riders failed; publishing alone", exc_info=True)
            self.connected = False
            for data, _rider in collected:
                super()._publish(data)
            return [None] * len(collected)
        answers = []
        for start, read, rode in spans:
            if isinstance(replies[start - 1], Exception):
                raise replies[start - 1]
            answer = None
            if read is not None and rode and not isinstance(replies[start], Exception):
                try:
                    answer = read(replies[start])
                except Exception:  # noqa: BLE001 - published already: the caller asks again on its own
                    log.warning("reading a rider's reply failed", exc_info=True)
            answers.append(answer)
        return answers


_publishers: dict[tuple, _Publisher] = {}
_publishers_guard = threading.Lock()
