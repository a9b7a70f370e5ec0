"""Background jobs behind one function, ``enqueue``.

With ``REDIS_URL`` set, jobs go to RQ queues and ``lienlac worker`` runs them (retries and
``at=`` scheduling go through the scheduler every ``lienlac worker`` runs). Without it (embedded
default) they run in an in-process thread pool, or inline when ``JOBS_INLINE`` is set; scheduled
jobs wait on a timer thread. Job functions are plain importable module-level functions taking
JSON-able arguments; they open and close their own database connection (``job`` decorator) so
the same code runs in a worker, in the pool or inline. A job may enqueue further jobs, in every
mode.

RQ notes (checked against rq 3.0's source): ``Retry(max, interval)`` with a zero interval puts
the failed job straight back on its queue; with a positive interval the job waits in the
``ScheduledJobRegistry`` until a worker's scheduler moves it back (every worker started with
``with_scheduler=True`` competes for that role; a ``--burst`` worker only moves what is already
due when it starts). ``enqueue_at`` uses the same registry.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import hashlib
import importlib
import logging
import re
import threading
import time
import uuid

from flask import has_app_context
from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from .db import connection, on_commit

log = logging.getLogger("lienlac.jobs")

#: ``high`` first; ``push`` (FCM sends) gets a worker's turn after at most a few jobs of ``default``
#: and ``low`` in a row (``service.worker._PushBeside``): pushes never wait behind a long queue of
#: ``low`` fan-out chunks, and those chunks run one after another
QUEUES = ("high", "push", "default", "low")
DEFAULT_RETRY = (5, [2, 10, 30, 120, 600])
#: an RQ job with one of these statuses is still to run: enqueueing its id again does nothing
_PENDING_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED,
                     JobStatus.CREATED, JobStatus.RATE_LIMITED, JobStatus.READY_TO_ENQUEUE}


class _Backend:
    def __init__(self):
        self.redis: Redis | None = None
        self.queues: dict[str, Queue] = {}
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.inline: bool = False
        self.app = None
        self.lock = threading.Lock()
        self.pending: set[concurrent.futures.Future] = set()
        self.local_ids: set[str] = set()  # in-process jobs waiting or running, by job id
        self.stall_seconds: float = 35.0  # a started job whose heartbeat is older than this is dead


_backend = _Backend()


def configure(app, redis_url: str | None, inline: bool = False, pool_size: int = 4,
              monitor_interval: float = 10.0) -> None:
    """Called by create_app; jobs run inside this app's context wherever they run.

    ``monitor_interval``: how often a worker renews a running job's heartbeat (``RQ_MONITOR_INTERVAL``);
    three missed beats (and 5 s) mark the job's worker dead (``_stalled``)."""
    _backend.app = app
    _backend.inline = inline
    _backend.stall_seconds = 3 * float(monitor_interval) + 5
    if redis_url:
        # connect timeout only: a worker blocks on BLPOP longer than any socket timeout we would pick
        _backend.redis = Redis.from_url(redis_url, socket_connect_timeout=5, health_check_interval=30)
        _backend.queues = {name: Queue(name, connection=_backend.redis) for name in QUEUES}
    else:
        _backend.redis = None
        _backend.queues = {}
        if _backend.pool is None and not inline:
            _backend.pool = concurrent.futures.ThreadPoolExecutor(pool_size, thread_name_prefix="job")


def redis_connection() -> Redis | None:
    return _backend.redis


def job(func):
    """Mark a job entry point: an app context and a database connection around it, one log line per run."""

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


def _safe_job_id(job_id: str) -> str:
    """RQ 3 accepts only letters, digits, ``_`` and ``-`` in a job id: map others deterministically."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", job_id)
    if safe != job_id:
        safe = f"{safe[:100]}-{hashlib.sha1(job_id.encode()).hexdigest()[:10]}"
    return safe


def _utc_naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo else at


def _whole_second_not_before(at: dt.datetime) -> dt.datetime:
    """RQ scores scheduled jobs in whole seconds, truncating: a job due at 12:00:00.7 would run
    at 12:00:00, before its time. Round up so a scheduled job never runs early."""
    at = _utc_naive(at)
    if at.microsecond:
        at = at.replace(microsecond=0) + dt.timedelta(seconds=1)
    return at.replace(tzinfo=dt.timezone.utc)


def resolve(func):
    """A job given by name (``"notifications.jobs.push"``) → the function; a function as it is.

    Packages enqueue their own jobs by name so their logic never imports the job module that
    imports it (no import circle); RQ resolves the same names in the worker.
    """
    if isinstance(func, str):
        module, _, name = func.rpartition(".")
        return getattr(importlib.import_module(module), name)
    return func


def _run_local(func, args, kwargs, job_id=None):
    try:
        resolve(func)(*args, **kwargs)
    except Exception:  # the pool has no retry; log and keep the pool alive
        log.exception("in-process job failed", extra={"job": getattr(func, "__qualname__", str(func))})
    finally:
        if job_id is not None:
            with _backend.lock:
                _backend.local_ids.discard(job_id)


def _enqueue_rq(func, args, kwargs, queue, job_id, at, retry, timeout) -> str:
    q = _backend.queues[queue]
    options = dict(job_id=job_id, job_timeout=timeout, failure_ttl=7 * 24 * 3600, unique=True,
                   retry=Retry(max=retry[0], interval=retry[1]) if retry else None)
    # explicit args/kwargs: RQ refuses positional arguments next to kwargs=...
    for _attempt in range(3):
        try:
            if at is not None:
                q.enqueue_at(_whole_second_not_before(at), func, args=args, kwargs=kwargs, **options)
            else:
                q.enqueue(func, args=args, kwargs=kwargs, **options)
            return job_id
        except DuplicateJobError:
            try:
                existing = Job.fetch(job_id, connection=_backend.redis)
                status = existing.get_status()
            except NoSuchJobError:
                continue  # it expired in between: try again
            if status in _PENDING_STATUSES and not (status == JobStatus.STARTED and _stalled(existing)):
                log.info("job already pending", extra={"job": getattr(func, "__qualname__", str(func))})
                return job_id
            if status == JobStatus.STARTED:
                log.warning("job %s: its worker stopped beating (killed?): enqueued again", job_id)
            existing.delete()  # finished, failed, stopped or canceled: run it again
    raise RuntimeError(f"could not enqueue job {job_id}")


def _stalled(job: Job) -> bool:
    """A started job whose worker has not renewed its heartbeat for ``stall_seconds``: the worker
    was killed (RQ's own maintenance notices a minute or more later). Jobs are idempotent, so the
    same id may run again now; were the worker only frozen, the job runs twice, harmlessly."""
    beat = job.last_heartbeat or job.started_at
    if beat is None:
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=dt.timezone.utc)
    return (dt.datetime.now(dt.timezone.utc) - beat).total_seconds() > _backend.stall_seconds


def enqueue(func, *args, queue: str = "default", job_id: str | None = None,
            at: dt.datetime | None = None, retry: tuple[int, list[int]] | None = DEFAULT_RETRY,
            timeout: int = 600, **kwargs) -> str:
    """Run ``func(*args, **kwargs)`` in the background; ``at`` (naive = UTC) schedules it.

    ``func``: a ``@job`` function or its dotted name (``"notifications.jobs.push"``).

    ``job_id`` makes the enqueue idempotent: while a job with that id waits, is scheduled, is
    retrying or runs, enqueueing it again does nothing; once it has finished or failed, or its
    worker died running it (no heartbeat for three monitor intervals), it is enqueued afresh.
    (So a job that enqueues its own continuation must give it another id.)
    Any string makes a job id (``"fanout:42"``): characters RQ refuses are mapped, and the id
    actually used is returned. ``retry`` is ``(max_retries, [interval seconds, ...])`` on RQ (an
    interval of 0 retries at once); the in-process pool does not retry.

    Called inside a transaction, the job is enqueued when it commits and dropped if it rolls
    back (``db.on_commit``); the id is returned at once either way.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    explicit_id = job_id is not None
    job_id = _safe_job_id(str(job_id)) if explicit_id else uuid.uuid4().hex
    on_commit(_enqueue_now, func, args, kwargs, queue, job_id, explicit_id, at, retry, timeout)
    return job_id


def _enqueue_now(func, args, kwargs, queue, job_id, explicit_id, at, retry, timeout) -> str:
    if _backend.redis is not None:
        return _enqueue_rq(func, args, kwargs, queue, job_id, at, retry, timeout)

    delay = 0.0
    if at is not None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        delay = max(0.0, (_utc_naive(at) - now).total_seconds())
    if delay <= 0 and (_backend.inline or _backend.pool is None):
        _run_local(func, args, kwargs)
        return job_id
    if explicit_id:
        with _backend.lock:
            if job_id in _backend.local_ids:
                return job_id
            _backend.local_ids.add(job_id)
    tracked_id = job_id if explicit_id else None
    if delay > 0:
        def fire():
            if tracked_id is not None:
                with _backend.lock:
                    _backend.local_ids.discard(tracked_id)
            enqueue(func, *args, queue=queue, job_id=tracked_id, retry=retry, timeout=timeout, **kwargs)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()
    else:
        future = _backend.pool.submit(_run_local, func, args, kwargs, tracked_id)
        with _backend.lock:
            _backend.pending.add(future)
        future.add_done_callback(_discard_future)
    return job_id


def _discard_future(future) -> None:
    with _backend.lock:
        _backend.pending.discard(future)


def drain(timeout: float = 30.0) -> bool:
    """Embedded default: wait until every in-process job (and what it enqueued) has finished.

    Jobs scheduled for later (``at=``) are not waited for. Returns False on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        with _backend.lock:
            waiting = list(_backend.pending)
        if not waiting:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        concurrent.futures.wait(waiting, timeout=remaining)


def queues() -> list[Queue]:
    return [_backend.queues[name] for name in QUEUES]


# --- periodic jobs (run by the workers) --------------------------------------------------------
_periodic: dict[str, tuple[str, float]] = {}


def periodic(name: str, func: str, every: float) -> None:
    """Declare a job that the workers enqueue every ``every`` seconds (a domain package's setup
    calls this; ``every`` <= 0 switches it off). Kept out of Redis on purpose: a Redis that lost
    its data still gets them, from the next tick of any worker."""
    if every and every > 0:
        _periodic[name] = (func, float(every))
    else:
        _periodic.pop(name, None)


def tick_periodic() -> list[str]:
    """Enqueue each periodic job whose period has come: one ``SET NX EX`` per job makes it once
    per period across every worker; the fixed job id makes one still waiting absorb the next.
    Returns the names enqueued. Redis errors propagate (the caller retries at its next tick)."""
    if _backend.redis is None:
        return []
    fired = []
    for name, (func, every) in sorted(_periodic.items()):
        if _backend.redis.set(f"lienlac:periodic:{name}", "1", nx=True, px=max(1, int(every * 1000))):
            _enqueue_rq(func, (), {}, "high", _safe_job_id(f"periodic-{name}"), None, None, max(60, int(every * 10)))
            fired.append(name)
    return fired


def start_periodic(app, stop: threading.Event, resolution: float = 1.0) -> threading.Thread | None:
    """A daemon thread of a worker process: ``tick_periodic`` every ``resolution`` seconds until ``stop``."""
    if _backend.redis is None or not _periodic:
        return None

    def loop():
        while not stop.wait(resolution):
            try:
                with app.app_context():
                    tick_periodic()
            except Exception:  # noqa: BLE001 - Redis away: the next tick tries again
                log.debug("periodic tick failed", exc_info=True)

    thread = threading.Thread(target=loop, name="lienlac-periodic", daemon=True)
    thread.start()
    return thread
