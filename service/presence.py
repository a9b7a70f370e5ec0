"""Who is connected right now, across every web process.

With Redis: a hash per user (``lienlac:presence:<user_id>``: socket id → last-seen unix time).
A socket is written when it connects, removed when it disconnects, and every web process
re-stamps its open sockets every ``presence_refresh_seconds`` (``PRESENCE_REFRESH_SECONDS``, default 60). An entry older than
three refresh periods counts as gone, so a web process that dies without cleaning up (SIGKILL,
lost machine) stops keeping anyone "online" within minutes; the hash expires on its own too.
Without Redis (one process): this process's own table of sockets, kept here by the socket server
(``add_local`` / ``remove_local``).
"""
from __future__ import annotations

import hashlib
import threading
import time

from flask import current_app, has_app_context

from . import jobs

_lock = threading.Lock()
_local_sids: dict[int, set[str]] = {}  # this process's open sockets by user id


def add_local(user_id: int, sid: str) -> None:
    with _lock:
        _local_sids.setdefault(int(user_id), set()).add(sid)


def remove_local(user_id: int, sid: str) -> None:
    with _lock:
        sids = _local_sids.get(int(user_id), set())
        sids.discard(sid)
        if not sids:
            _local_sids.pop(int(user_id), None)


def is_connected_here(user_id: int) -> bool:
    with _lock:
        return bool(_local_sids.get(int(user_id)))


def local_sockets() -> dict[int, set[str]]:
    """This process's sockets by user id (a copy)."""
    with _lock:
        return {user_id: set(sids) for user_id, sids in _local_sids.items()}


def refresh_seconds() -> float:
    if has_app_context():
        return float(current_app.config["LIENLAC"].presence_refresh_seconds)
    return 60.0


def stale_seconds() -> float:
    return 3 * refresh_seconds()


def _key(user_id) -> str:
    return f"lienlac:presence:{user_id}"


def _stamp(pipe, user_id: int, sids) -> None:
    now = int(time.time())
    pipe.hset(_key(user_id), mapping={sid: now for sid in sids})
    pipe.expire(_key(user_id), int(stale_seconds()) + 1)


def mark_online(user_id: int, sid: str) -> None:
    redis = jobs.redis_connection()
    if redis is not None:
        pipe = redis.pipeline()
        _stamp(pipe, user_id, [sid])
        pipe.execute()


def mark_offline(user_id: int, sid: str) -> None:
    redis = jobs.redis_connection()
    if redis is not None:
        redis.hdel(_key(user_id), sid)


def refresh(sids_by_user: dict[int, set[str]]) -> None:
    """Re-stamp this process's open sockets (called periodically by each web process)."""
    redis = jobs.redis_connection()
    if redis is None or not sids_by_user:
        return
    pipe = redis.pipeline(transaction=False)
    for user_id, sids in sids_by_user.items():
        if sids:
            _stamp(pipe, user_id, sids)
    pipe.execute()


#: per key (a user's presence hash): 1 if one of its sockets was stamped at or after ARGV[1] (unix
#: time), else 0; the older entries (sockets of a web process that died) are dropped
_ONLINE_LUA = """
local cutoff = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  local online, stale = 0, {}
  for j = 1, #flat, 2 do
    if tonumber(flat[j + 1]) >= cutoff then online = 1 else stale[#stale + 1] = flat[j] end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  out[i] = online
end
return out
"""
_online_script: dict = {}
#: the script's SHA1, as Redis names it (EVALSHA inside another round trip: ``online_users_in``)
_ONLINE_SHA = hashlib.sha1(_ONLINE_LUA.encode()).hexdigest()


def online_users_in(pipe, user_ids):
    """Queue ``online_users``' question on a Redis pipeline (another command's round trip) and return
    ``read(reply) -> set[int] | None``: the answer from the script's reply, or None when it could not
    be given that way (no reply, an error such as the script not loaded yet): then ask ``online_users``.
    At most 1,000 users (one EVALSHA); more, or no Redis: None at once, nothing queued."""
    ids = [int(u) for u in user_ids]
    if not ids or len(ids) > 1000 or jobs.redis_connection() is None:
        return None
    cutoff = repr(time.time() - stale_seconds())
    pipe.evalsha(_ONLINE_SHA, len(ids), *[_key(u) for u in ids], cutoff)

    def read(reply) -> set[int] | None:
        if not isinstance(reply, list) or len(reply) != len(ids):
            return None
        return {u for u, flag in zip(ids, reply) if int(flag)}

    return read


def online_users(user_ids) -> set[int]:
    """The subset of ``user_ids`` with at least one open socket on any web process.

    One round trip per 1,000 users (a script answers one flag per user: the send path asks this
    for every message, and 45 ``HGETALL`` replies cost the client more to send and parse than the
    rest of a message's Redis traffic)."""
    ids = [int(u) for u in user_ids]
    if not ids:
        return set()
    redis = jobs.redis_connection()
    if redis is None:
        return {u for u in ids if is_connected_here(u)}
    script = _online_script.get("script")
    if script is None:
        script = _online_script["script"] = redis.register_script(_ONLINE_LUA)
    cutoff = repr(time.time() - stale_seconds())
    online: set[int] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        flags = script(keys=[_key(u) for u in chunk], args=[cutoff], client=redis)
        online.update(u for u, flag in zip(chunk, flags) if int(flag))
    return online


def sockets_of(user_ids) -> dict[int, list[str]]:
    """Open socket ids of these users on any web process: ``{user_id: [sid, ...]}`` (users with none left out).

    For joining a user's sockets to a room from any process (python-socketio's Redis manager
    routes ``enter_room`` for a socket of another process through the Socket.IO channel).
    """
    ids = [int(u) for u in user_ids]
    if not ids:
        return {}
    redis = jobs.redis_connection()
    if redis is None:
        local = local_sockets()
        return {u: sorted(local[u]) for u in ids if local.get(u)}
    cutoff = time.time() - stale_seconds()
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        pipe = redis.pipeline(transaction=False)
        for u in chunk:
            pipe.hgetall(_key(u))
        for u, stamps in zip(chunk, pipe.execute()):
            sids = sorted((sid.decode() if isinstance(sid, bytes) else sid)
                          for sid, stamp in stamps.items() if int(stamp) >= cutoff)
            if sids:
                out[u] = sids
    return out
