"""The loop of ``lienlac worker``: an RQ worker that outlives a Redis outage.

RQ 3 rides out a Redis outage only while it waits for a job (its dequeue loop retries). A worker
running a job when Redis goes away quits: the fork worker's horse monitor (heartbeats, the job's
status) and the simple worker's bookkeeping after the job raise ``ConnectionError``, ``work()``
logs "found an unhandled exception, quitting", and its teardown fails too. The job stays
``started`` until RQ's maintenance in some other worker notices the lost heartbeat (a minute
or more), the worker's scheduler locks stay taken, and the process exits: with every worker
busy (a fan-out), a Redis restart of two seconds stops every worker for good.

``run`` keeps the process serving instead: when ``work()`` ends without a stop request
(SIGTERM/SIGINT) it waits for Redis with exponential backoff, lets a running work horse finish,
hands a job the worker could not close back to RQ's failure handling (so its ``Retry`` runs
now, as when a work horse dies), frees the scheduler's locks and the worker's registration, and
starts a new worker under the same name. Jobs are idempotent: a job run again is harmless.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue

log = logging.getLogger("lienlac.worker")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
HEALTHY_RUN_SECONDS = 30.0  # a worker that ran this long before it stopped restarts without delay
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class _Stop:
    """SIGTERM/SIGINT between two workers (RQ's own handlers are installed only inside ``work``)."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, _frame):
        self.requested = True

    @contextlib.contextmanager
    def catching(self):
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def wait_for_redis(connection, stop: _Stop, sleep=time.sleep) -> bool:
    """Ping until Redis answers (exponential backoff up to ``BACKOFF_MAX``); False if told to stop."""
    delay = BACKOFF_START
    while not stop.requested:
        try:
            connection.ping()
            return True
        except REDIS_ERRORS as exc:
            log.warning("Redis unreachable (%s): retrying in %.1fs", type(exc).__name__, delay)
        sleep(delay)
        delay = min(BACKOFF_MAX, delay * 2)
    return False


def _horse_alive(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def _wait_horse(worker) -> None:
    """A fork worker's horse may still be running the job: let it finish (warm, as SIGTERM would)."""
    pid = getattr(worker, "_horse_pid", 0)
    while pid and _horse_alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(AttributeError):
        worker._horse_pid = 0  # pylint: disable=protected-access


def recover(worker, connection) -> int:
    """After ``work()`` ended on a Redis failure (Redis reachable again): close what the worker
    left open. Returns how many jobs were handed back to RQ's failure handling (and so retried)."""
    _wait_horse(worker)
    handed_back = 0
    # the worker's executions as Redis has them: a horse that died on the outage could not remove its
    # own, and the fork worker forgets it locally before it fails on the job's status
    executions = {e.id: e for e in worker.get_current_executions(refresh=True)}
    executions.update(getattr(worker, "executions", {}))
    for execution in executions.values():
        try:
            job = Job.fetch(execution.job_id, connection=connection)
        except NoSuchJobError:
            continue
        if job.get_status() != JobStatus.STARTED:
            continue  # the horse finished it and recorded its end after Redis came back
        queue = Queue(job.origin, connection=connection)
        worker.handle_job_failure(job, queue=queue, execution=execution,
                                  exc_string="the worker lost its Redis connection while running it")
        handed_back += 1
        log.warning("job %s handed back after a Redis outage", job.id)
    scheduler = getattr(worker, "scheduler", None)
    if scheduler is not None:
        process = getattr(scheduler, "_process", None)
        if process is not None and process.is_alive():
            process.terminate()
            process.join(10)
        with contextlib.suppress(*REDIS_ERRORS):
            scheduler.release_locks()  # else the next scheduler waits for them to expire
    with contextlib.suppress(*REDIS_ERRORS):
        worker.register_death()
    with contextlib.suppress(Exception):
        worker.unsubscribe()
    return handed_back


def run(make_worker, connection, *, burst: bool = False, logging_level: str = "INFO", sleep=time.sleep) -> None:
    """Work until told to stop (or, ``burst``, until the queues are drained), across Redis outages.

    ``make_worker()`` builds a fresh ``rq.Worker`` (same name every time).
    """
    stop = _Stop()
    delay = BACKOFF_START
    while True:
        with stop.catching():
            if not wait_for_redis(connection, stop, sleep):
                return
            try:
                worker = make_worker()
            except REDIS_ERRORS:
                continue  # Redis went away again between the ping and the worker's registration
        started = time.monotonic()
        lost = False
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
        except REDIS_ERRORS:
            lost = True  # the teardown (registering the worker's death) could not reach Redis
        if getattr(worker, "_shutdown_requested_date", None) is not None:
            return  # SIGTERM/SIGINT: RQ finished the current job (warm shutdown)
        with stop.catching():
            if not wait_for_redis(connection, stop, sleep):
                return
            handed_back = recover(worker, connection)
            if stop.requested or (burst and not lost and not handed_back):
                return
            if time.monotonic() - started < HEALTHY_RUN_SECONDS:
                sleep(delay)  # not a restart loop at full speed
                delay = min(BACKOFF_MAX, delay * 2)
            else:
                delay = BACKOFF_START
        log.warning("worker %s restarts after losing Redis (%d job(s) handed back)", worker.name, handed_back)
