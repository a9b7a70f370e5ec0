"""Gathered rate-limit hits (``ratelimit.hit(..., gathered=True)``, the chat send path): hits of
one process sent to Redis together count exactly as the limiter's own hits do."""
from __future__ import annotations

import threading

import pytest
from limits import parse

from service import ratelimit
from service.errors import RateLimited
from service.gather import Waiting
from tests.support.apps import running_app


@pytest.fixture
def redis_app(make_config, redis_url, tmp_path):
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite3'}", redis_url=redis_url)
    with running_app(config) as app:
        yield app


def test_hits_together_count_as_hits_alone(redis_app):
    with redis_app.app_context():
        _limiter, strategy = ratelimit._limiter()
        limit = parse("3 per hour")
        items = [Waiting((strategy, limit, ("t", "send", key))) for key in ["a"] * 5 + ["b"]]
        ratelimit._hit_together(items)
        assert [i.result() for i in items] == [True, True, True, False, False, True]
        assert strategy.hit(limit, "t", "send", "b") is True  # the same counters as the limiter's own hit
        assert strategy.hit(limit, "t", "send", "a") is False
        assert strategy.get_window_stats(limit, "t", "send", "b").remaining == 1


def test_concurrent_gathered_hits_let_exactly_the_limit_through(redis_app):
    start, passed, refused, errors = threading.Barrier(12), [], [], []

    def run():
        try:
            with redis_app.app_context():
                start.wait()
                ratelimit.hit("message-send", "user:7", "4 per hour", gathered=True)
                passed.append(1)
        except RateLimited as exc:
            refused.append(int(exc.headers["Retry-After"]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(passed) == 4 and len(refused) == 8 and all(r > 0 for r in refused)


def test_a_hit_whose_script_is_not_loaded_is_made_alone(redis_app):
    with redis_app.app_context():
        _limiter, strategy = ratelimit._limiter()
        strategy.storage.get_connection().script_flush()
        limit = parse("2 per hour")
        items = [Waiting((strategy, limit, ("t", "send", "c"))) for _ in range(3)]
        ratelimit._hit_together(items)
        assert [i.result() for i in items] == [True, True, False]
