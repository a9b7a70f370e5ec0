"""Presence with Redis: who counts as online, and stale sockets forgotten (service.presence)."""
from __future__ import annotations

import time

import pytest

from service import jobs, presence

from ..support.apps import running_app


@pytest.fixture
def redis_app(database_url, make_config, redis_url):
    with running_app(make_config(database_url, redis_url=redis_url, jobs_inline=False), web=False) as app:
        yield app


def test_online_users_counts_fresh_sockets_and_drops_stale_ones(redis_app):
    redis = jobs.redis_connection()
    fresh, stale_only, mixed, nobody = 910_001, 910_002, 910_003, 910_004
    presence.mark_online(fresh, "a")
    old = int(time.time() - presence.stale_seconds()) - 5
    redis.hset(presence._key(stale_only), mapping={"b": old, "c": old})
    redis.hset(presence._key(mixed), mapping={"d": old, "e": int(time.time())})

    assert presence.online_users([fresh, stale_only, mixed, nobody]) == {fresh, mixed}
    # the stale sockets are gone from Redis, the fresh ones stay
    assert redis.hgetall(presence._key(stale_only)) == {}
    assert set(redis.hgetall(presence._key(mixed))) == {b"e"}
    assert set(redis.hgetall(presence._key(fresh))) == {b"a"}
    assert presence.sockets_of([fresh, mixed]) == {fresh: ["a"], mixed: ["e"]}

    presence.mark_offline(fresh, "a")
    assert presence.online_users([fresh, mixed]) == {mixed}
    assert presence.online_users([]) == set()
    # more users than one round trip takes
    many = list(range(920_000, 922_500))
    presence.mark_online(many[-1], "z")
    assert presence.online_users(many) == {many[-1]}
