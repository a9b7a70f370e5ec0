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

from flask import current_app
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .errors import RateLimited

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


def hit(scope: str, key: str, limit: str) -> None:
    """Count one ``scope`` event for ``key``; ``RateLimited`` (nothing counted) when over ``limit``."""
    limiter, strategy = _limiter()
    prefix = getattr(limiter, "_key_prefix", None) or "lienlac"
    items = parse_many(limit)
    identifiers = (prefix, scope, key)
    try:
        return _check(strategy or _memory_strategy(), items, identifiers)
    except RateLimited:
        raise
    except Exception:  # noqa: BLE001 - the shared storage is away: count per process meanwhile
        log.warning("rate-limit storage unavailable; counting in this process", extra={"scope": scope})
        return _check(_memory_strategy(), items, identifiers)


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
