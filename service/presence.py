"""Who is connected right now, across every web process.

With Redis: a hash per user (``presence:<user_id>`` → socket id → timestamp) kept for at most
a few hours, so a web process that dies without cleaning up cannot keep anyone "online" long.
Without Redis (one process): the socket server's own table.
"""
from __future__ import annotations

import time

from . import jobs, realtime

TTL_SECONDS = 3 * 3600


def _key(user_id) -> str:
    return f"lienlac:presence:{user_id}"


def mark_online(user_id: int, sid: str) -> None:
    redis = jobs.redis_connection()
    if redis is not None:
        pipe = redis.pipeline()
        pipe.hset(_key(user_id), sid, int(time.time()))
        pipe.expire(_key(user_id), TTL_SECONDS)
        pipe.execute()


def mark_offline(user_id: int, sid: str) -> None:
    redis = jobs.redis_connection()
    if redis is not None:
        redis.hdel(_key(user_id), sid)


def online_users(user_ids) -> set[int]:
    """The subset of ``user_ids`` with at least one open socket on any web process."""
    ids = [int(u) for u in user_ids]
    redis = jobs.redis_connection()
    if redis is None:
        return {u for u in ids if realtime.is_connected_here(u)}
    pipe = redis.pipeline()
    for u in ids:
        pipe.exists(_key(u))
    return {u for u, present in zip(ids, pipe.execute()) if present}
