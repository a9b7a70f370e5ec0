"""Background jobs behind one function, ``enqueue``.

With ``REDIS_URL`` set, jobs go to RQ queues and ``lienlac worker`` runs them (retries,
scheduling through RQ's scheduler). Without it (embedded default) they run in an in-process
thread pool, or inline when ``JOBS_INLINE`` is set; scheduled jobs wait on a timer thread.
Job functions are plain importable functions taking JSON-able arguments; they open and close
their own database connection (``job`` decorator) so the same code runs in a worker, in the
pool or inline.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import logging
import threading
import time
import uuid

from flask import has_app_context
from redis import Redis
from rq import Queue, Retry

from .db import connection

log = logging.getLogger("lienlac.jobs")

QUEUES = ("high", "default", "low")
DEFAULT_RETRY = (5, [2, 10, 30, 120, 600])


class _Backend:
    redis: Redis | None = None
    queues: dict[str, Queue] = {}
    pool: concurrent.futures.ThreadPoolExecutor | None = None
    inline: bool = False
    app = None
    pending: set = set()


_backend = _Backend()


def configure(app, redis_url: str | None, inline: bool = False, pool_size: int = 4) -> None:
    """Called by create_app; jobs run inside this app's context wherever they run."""
    _backend.app = app
    if redis_url:
        _backend.redis = Redis.from_url(redis_url)
        _backend.queues = {name: Queue(name, connection=_backend.redis) for name in QUEUES}
    else:
        _backend.redis = None
        _backend.queues = {}
        _backend.inline = inline
        if _backend.pool is None and not inline:
            _backend.pool = concurrent.futures.ThreadPoolExecutor(pool_size, thread_name_prefix="job")


def redis_connection() -> Redis | None:
    return _backend.redis


def job(func):
    """Mark a job entry point: a database connection around it and one log line per run."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        started = time.monotonic()
        status = "failed"
        try:
            with contextlib.ExitStack() as stack:
                if not has_app_context() and _backend.app is not None:
                    stack.enter_context(_backend.app.app_context())
                stack.enter_context(connection())
                result = func(*args, **kwargs)
            status = "ok"
            return result
        finally:
            log.info("job", extra={"job": func.__qualname__, "status": status,
                                   "ms": round((time.monotonic() - started) * 1000, 1)})

    return wrapper


def _run_local(func, args, kwargs):
    try:
        func(*args, **kwargs)
    except Exception:  # the pool has no retry; log and keep the pool alive
        log.exception("in-process job failed", extra={"job": getattr(func, "__qualname__", str(func))})


def enqueue(func, *args, queue: str = "default", job_id: str | None = None,
            at: dt.datetime | None = None, retry: tuple[int, list[int]] | None = DEFAULT_RETRY,
            timeout: int = 600, **kwargs) -> str:
    """Run ``func(*args, **kwargs)`` in the background; ``at`` (UTC) schedules it.

    ``job_id`` makes the enqueue idempotent on RQ (a job with that id is replaced, not doubled).
    Returns the job id.
    """
    job_id = job_id or uuid.uuid4().hex
    if _backend.redis is not None:
        q = _backend.queues[queue]
        options = dict(job_id=job_id, job_timeout=timeout, failure_ttl=7 * 24 * 3600,
                       retry=Retry(max=retry[0], interval=retry[1]) if retry else None)
        if at is not None:
            q.enqueue_at(at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at,
                         func, *args, kwargs=kwargs, **options)
        else:
            q.enqueue(func, *args, kwargs=kwargs, **options)
        return job_id
    delay = 0.0
    if at is not None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        delay = max(0.0, ((at.replace(tzinfo=None) if at.tzinfo else at) - now).total_seconds())
    if delay > 0:
        timer = threading.Timer(delay, lambda: enqueue(func, *args, queue=queue, job_id=job_id, **kwargs))
        timer.daemon = True
        timer.start()
    elif _backend.inline or _backend.pool is None:
        _run_local(func, args, kwargs)
    else:
        future = _backend.pool.submit(_run_local, func, args, kwargs)
        _backend.pending.add(future)
        future.add_done_callback(_backend.pending.discard)
    return job_id


def drain(timeout: float = 30.0) -> None:
    """Embedded default: wait until every in-process job (and what it enqueued) has finished."""
    deadline = time.monotonic() + timeout
    while _backend.pending and time.monotonic() < deadline:
        concurrent.futures.wait(list(_backend.pending), timeout=max(0.01, deadline - time.monotonic()))


def queues() -> list[Queue]:
    return [_backend.queues[name] for name in QUEUES]
