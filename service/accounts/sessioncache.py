"""Sessions checked in memory: each web process caches token family → the user's row, and hears revocations.

Authenticating a request (or a socket event) used to read the user by primary key and look the
token family up in ``revoked_family``: two statements per request. The cache keeps, per token
family, a snapshot of the user's row (every column: the ``User`` handed to the views is built
from it, a fresh instance each time) for a session found alive. An entry goes when

- anything ends the session or changes the row: the writer calls ``invalidate(users=..., families=...)``,
  which runs once its transaction commits (``service.db.on_commit``): this process's cache drops
  the entries at once, and with ``REDIS_URL`` the message is published on the channel
  ``<SOCKETIO_CHANNEL>:sessions``, which every web process subscribes to (workers and the CLI only
  publish);
- it is older than ``session_cache_seconds`` (a backstop, never what revocation waits for);
- the cache is full (least recently used first, ``session_cache_size`` entries).

Correctness rules. A process with Redis caches only while its subscription is live: nothing is
served from, nor put in, the cache until the subscription is confirmed; when the connection drops
(or stops answering pings) the cache is cleared and bypassed until it is back, and cleared again
then (a message published meanwhile is lost). A generation counter, bumped by every
invalidation and every (re)connect, is read before the database: a reader whose rows predate an
invalidation cannot put them in after it (``put`` refuses a stale generation). Without
``REDIS_URL`` (the embedded default, one process) invalidation is local and synchronous.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import re
import threading
import time
import weakref

from flask import current_app, has_app_context

from ..db import on_commit

log = logging.getLogger("lienlac.sessions")

#: above this many users in one invalidation, every process clears its whole cache instead
BULK_LIMIT = 1000
_PING_AFTER = 5.0  # seconds of silence on the subscription before a PING
_DEAD_AFTER = 5.0  # seconds without the PONG before the subscription counts as down


def channel_name(config) -> str:
    return f"{config.socketio_channel}:sessions"


def subscriber_name(config) -> str:
    """The subscriber connection's CLIENT SETNAME (no spaces allowed): findable in CLIENT LIST."""
    return "lienlac-sessions-" + re.sub(r"[^A-Za-z0-9_.:-]", "_", config.socketio_channel) + f"-{os.getpid()}"


class Entry:
    __slots__ = ("user_id", "row", "stored")

    def __init__(self, user_id: int, row: dict, stored: float):
        self.user_id, self.row, self.stored = user_id, row, stored


class SessionCache:
    """Token family → (user id, the user's row), bounded, with a TTL; thread- and greenlet-safe.

    ``live`` says whether the cache may be used at all (see the module's rules).
    """

    def __init__(self, size: int = 10000, ttl: float = 60.0, live: bool = True, clock=time.monotonic):
        self.size, self.ttl, self.clock = int(size), float(ttl), clock
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._by_user: dict[int, set[str]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._live = live and self.size > 0
        self.hits = self.misses = 0

    # --- reading --------------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self._live

    def generation(self) -> int:
        """Read before the database; hand it back to ``put``."""
        with self._lock:
            return self._generation

    def get(self, family: str) -> Entry | None:
        with self._lock:
            if not self._live:
                return None
            entry = self._entries.get(family)
            if entry is None:
                self.misses += 1
                return None
            if self.clock() - entry.stored >= self.ttl:
                self._remove(family)
                self.misses += 1
                return None
            self._entries.move_to_end(family)
            self.hits += 1
            return entry

    def put(self, family: str, user_id: int, row: dict, generation: int) -> bool:
        """Store a session found alive by a reader that started at ``generation``; False if refused."""
        with self._lock:
            if not self._live or generation != self._generation:
                return False
            self._remove(family)
            self._entries[family] = Entry(int(user_id), dict(row), self.clock())
            self._by_user.setdefault(int(user_id), set()).add(family)
            while len(self._entries) > self.size:
                oldest = next(iter(self._entries))
                self._remove(oldest)
            return True

    def __len__(self) -> int:
        return len(self._entries)

    # --- invalidation ---------------------------------------------------------------------------
    def invalidate(self, users=(), families=()) -> None:
        with self._lock:
            self._generation += 1
            for family in families:
                self._remove(str(family))
            for user_id in users:
                for family in list(self._by_user.get(int(user_id), ())):
                    self._remove(family)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_user.clear()

    def go_live(self) -> None:
        """The subscription is (again) confirmed: start from empty."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_user.clear()
            self._live = self.size > 0

    def go_down(self) -> None:
        """The subscription is lost: messages may be missed from now on, so nothing is trusted."""
        with self._lock:
            self._generation += 1
            self._live = False
            self._entries.clear()
            self._by_user.clear()

    def apply(self, payload) -> None:
        """A message from the channel (JSON: ``{"u": [user ids], "f": [families], "all": bool}``)."""
        try:
            message = json.loads(payload)
            if message.get("all"):
                self.clear()
            else:
                self.invalidate(users=[int(u) for u in message.get("u", ())],
                                families=[str(f) for f in message.get("f", ())])
        except (ValueError, TypeError, AttributeError):
            log.error("unreadable session invalidation: cache cleared")
            self.clear()

    def _remove(self, family: str) -> None:  # lock held
        entry = self._entries.pop(family, None)
        if entry is not None:
            families = self._by_user.get(entry.user_id)
            if families is not None:
                families.discard(family)
                if not families:
                    del self._by_user[entry.user_id]


# --- the subscriber ---------------------------------------------------------------------------------
class Subscriber:
    """Listens on the invalidation channel for one cache; ``stop()`` ends it (within about a second)."""

    def __init__(self, cache: SessionCache, redis_url: str, channel: str, name: str):
        self.cache_ref = weakref.ref(cache)
        self.redis_url, self.channel, self.name = redis_url, channel, name
        self.stopped = threading.Event()
        self.connected = threading.Event()  # for tests and health: the subscription is confirmed

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        backoff = 0.2
        while not self.stopped.is_set():
            pubsub = client = None
            try:
                # no silent reconnect inside redis-py: a lost connection must reach go_down()
                client = Redis.from_url(self.redis_url, client_name=self.name, socket_connect_timeout=5,
                                        socket_keepalive=True, retry=Retry(NoBackoff(), 0))
                pubsub = client.pubsub()
                pubsub.subscribe(self.channel)
                self._listen(pubsub)
            except Exception as exc:  # noqa: BLE001 - redis errors, socket errors: reconnect
                if not self.stopped.is_set():
                    log.warning("session invalidations: subscription lost (%s); cache bypassed", type(exc).__name__)
            finally:
                if self.connected.is_set():
                    backoff = 0.2  # it was up: retry soon
                self.connected.clear()
                cache = self.cache_ref()
                if cache is not None:
                    cache.go_down()
                for closing in (pubsub, client):
                    try:
                        if closing is not None:
                            closing.close()
                    except Exception:  # noqa: BLE001
                        pass
            if self.cache_ref() is None:
                return
            self.stopped.wait(backoff)
            backoff = min(backoff * 2, 5.0)
        return

    def _listen(self, pubsub) -> None:
        heard = time.monotonic()
        pinged = None
        while not self.stopped.is_set():
            cache = self.cache_ref()
            if cache is None:
                self.stop()
                return
            message = pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if message is None:
                if pinged is None and now - heard >= _PING_AFTER:
                    pubsub.ping()
                    pinged = now
                elif pinged is not None and now - pinged >= _DEAD_AFTER:
                    raise ConnectionError("no answer to PING on the subscription")
                continue
            heard, pinged = now, None
            kind = message.get("type")
            if kind == "subscribe":
                cache.go_live()
                self.connected.set()
            elif kind == "message":
                cache.apply(message["data"])


_subscribers: dict = {"current": None}
_subscribers_lock = threading.Lock()


def init_app(app, config, web: bool) -> SessionCache:
    """A cache for this app: live at once without Redis; in a web process with Redis, once subscribed;
    never in a worker or the CLI with Redis (they publish only)."""
    size, ttl = config.session_cache_size, config.session_cache_seconds
    cache = SessionCache(size, ttl, live=not config.redis_url)
    app.extensions["lienlac.session_cache"] = cache
    app.extensions["lienlac.session_channel"] = channel_name(config)
    app.extensions["lienlac.session_subscriber"] = None
    if config.redis_url and web and size > 0:
        subscriber = Subscriber(cache, config.redis_url, channel_name(config), subscriber_name(config))
        with _subscribers_lock:  # one web app per process listens (tests build many apps in turn)
            if _subscribers["current"] is not None:
                _subscribers["current"].stop()
            _subscribers["current"] = subscriber
        app.extensions["lienlac.session_subscriber"] = subscriber
        _start_background(subscriber.run)
    return cache


def _start_background(fn) -> None:
    """A thread, or a greenlet when gevent has patched the standard library (``lienlac serve``)."""
    thread = threading.Thread(target=fn, name="lienlac-session-invalidations", daemon=True)
    thread.start()


def current_cache() -> SessionCache | None:
    return current_app.extensions.get("lienlac.session_cache") if has_app_context() else None


def invalidate(users=(), families=()) -> None:
    """Once the current transaction commits: drop these users' and families' cached sessions here and,
    through Redis, in every web process. Call it wherever a session ends or a user row changes."""
    users = sorted({int(u) for u in users})
    families = sorted({str(f) for f in families})
    if users or families:
        on_commit(_invalidate_now, users, families)


def _invalidate_now(users: list[int], families: list[str]) -> None:
    cache = current_cache()
    everything = len(users) > BULK_LIMIT
    if cache is not None:
        cache.clear() if everything else cache.invalidate(users=users, families=families)
    _publish({"all": True} if everything else {"u": users, "f": families})


def _publish(message: dict) -> None:
    from .. import jobs

    redis = jobs.redis_connection()
    if redis is None:
        return
    if not has_app_context():
        log.error("session invalidation without an app: not published")
        return
    channel = current_app.extensions.get("lienlac.session_channel") or channel_name(current_app.config["LIENLAC"])
    payload = json.dumps(message, separators=(",", ":"))
    for attempt in range(3):
        try:
            redis.publish(channel, payload)
            return
        except Exception as exc:  # noqa: BLE001 - Redis briefly away: try again, then say it loudly
            if attempt == 2:
                log.error("session invalidation not published (%s): other processes may serve the session "
                          "until their cache entry expires", type(exc).__name__)
            else:
                time.sleep(0.05 * (attempt + 1))
