"""Rate limits outside a Flask view (Socket.IO handlers, logic shared by HTTP and sockets).

``hit(scope, key, limit)`` counts one event against ``limit`` ("60 per minute", or several
separated by ";") in the app's flask-limiter storage (Redis when configured, shared by every web
process, with the limiter's own key prefix and moving-window strategy: the same counters as the
login and OTP limits), and raises ``RateLimited`` (429, ``Retry-After``) when it is used up.
If that storage is unreachable the count goes on in this process's memory (as flask-limiter
itself falls back) rather than letting everything through.
"""
from __future__ import annotations

import logging
import math
import threading
import time

from flask import current_app, has_app_context
from limits import parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from .errors import RateLimited
from .gather import Gatherer, Waiting, per_app, settle

log = logging.getLogger("lienlac.ratelimit")

_fallback: dict = {}
_fallback_lock = threading.Lock()


def _limiter():
    """The app's flask-limiter (``create_app`` makes one) and its strategy object."""
    limiters = current_app.extensions.get("limiter") or ()
    for limiter in limiters:
        return limiter, limiter.limiter
    return None, None


def _memory_strategy():
    with _fallback_lock:
        if "strategy" not in _fallback:
            _fallback["strategy"] = MovingWindowRateLimiter(MemoryStorage())
        return _fallback["strategy"]


def hit(scope: str, key: str, limit: str, gathered: bool = False) -> None:
    """Count one ``scope`` event for ``key``; ``RateLimited`` (nothing counted) when over ``limit``.

    ``gathered``: for a hot path (every chat message), hits of this process arriving while one is
    in flight go to Redis together, one pipeline for the lot (``service.gather``; the same script
    and keys as the limiter's own hit, one limit in a moving window; anything else counts alone)."""
    limiter, strategy = _limiter()
    prefix = getattr(limiter, "_key_prefix", None) or "lienlac"
    items = parse_many(limit)
    identifiers = (prefix, scope, key)
    try:
        if gathered and len(items) == 1 and _gatherable(strategy):
            if not _gatherer().submit(Waiting((strategy, items[0], identifiers))):
                _refuse(strategy, items[0], identifiers)
            return None
        return _check(strategy or _memory_strategy(), items, identifiers)
    except RateLimited:
        raise
    except Exception:  # noqa: BLE001 - the shared storage is away: count per process meanwhile
        log.warning("rate-limit storage unavailable; counting in this process", extra={"scope": scope})
        return _check(_memory_strategy(), items, identifiers)


def _gatherable(strategy) -> bool:
    return (type(strategy) is MovingWindowRateLimiter and type(strategy.storage) is RedisStorage
            and has_app_context())


def _gatherer() -> Gatherer:
    return per_app(current_app, "lienlac_rate_limit_hits", lambda: Gatherer(_hit_alone, _hit_together, limit=500))


def _hit_alone(item: Waiting) -> bool:
    strategy, limit, identifiers = item.value
    return strategy.hit(limit, *identifiers)


def _hit_together(items: list[Waiting]) -> None:
    """One pipeline of the limiter's own acquire script (``RedisStorage.acquire_entry``), a hit each;
    a hit whose reply is an error (the script not loaded yet) is made again alone."""
    storage = items[0].value[0].storage
    script = storage.lua_acquire_moving_window
    pipe = storage.get_connection().pipeline(transaction=False)
    for item in items:
        _strategy, limit, identifiers = item.value
        pipe.evalsha(script.sha, 1, storage.prefixed_key(limit.key_for(*identifiers)), time.time(), limit.amount,
                     limit.get_expiry(), 1)
    for item, reply in zip(items, pipe.execute(raise_on_error=False)):
        if isinstance(reply, Exception):
            settle(item, _hit_alone)
        else:
            item.outcome = bool(reply)


def _check(strategy, items, identifiers) -> None:
    if len(items) == 1 and isinstance(strategy, MovingWindowRateLimiter):
        # one limit: the moving window's hit adds an entry only while under it (one round trip
        # instead of a test and a hit; several limits are tested first so none is counted alone)
        if not strategy.hit(items[0], *identifiers):
            _refuse(strategy, items[0], identifiers)
        return
    for item in items:
        if not strategy.test(item, *identifiers):
            _refuse(strategy, item, identifiers)
    for item in items:
        if not strategy.hit(item, *identifiers):
            _refuse(strategy, item, identifiers)


def _refuse(strategy, item, identifiers) -> None:
    reset_at, _remaining = strategy.get_window_stats(item, *identifiers)
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimited("Too many requests; try again later.", headers={"Retry-After": str(retry_after)})
