"""Job functions for the job and multi-process tests (importable by a real ``lienlac worker``:
subprocesses run from the repository root, see servers.process_env)."""
from __future__ import annotations

from service import jobs, realtime
from service.roster import logic as roster


@jobs.job
def add_user(phone: str, name: str) -> int:
    """Writes one row (idempotent: the phone number is unique)."""
    return roster.ensure_user(phone, name).id


@jobs.job
def add_user_then_enqueue(phone: str, name: str, more_phones: list[str]) -> None:
    """A job that enqueues jobs: one more ``add_user`` per phone number."""
    roster.ensure_user(phone, name)
    for other in more_phones:
        jobs.enqueue(add_user, other, name)


@jobs.job
def add_user_after_one_failure(phone: str, name: str, counter_key: str) -> None:
    """Fails on its first run (counted in Redis), writes its row on the next."""
    attempt = jobs.redis_connection().incr(counter_key)
    if attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    roster.ensure_user(phone, name)


@jobs.job
def count(counter_key: str) -> None:
    jobs.redis_connection().incr(counter_key)


@jobs.job
def emit_to_user(user_id: int, event: str, data: dict) -> None:
    realtime.emit_to(realtime.user_room(user_id), event, data)


@jobs.job
def record_pid(key: str) -> None:
    """Stores the pid of the process that runs the job (Redis ``key``)."""
    import os

    jobs.redis_connection().set(key, os.getpid())


@jobs.job
def sleep_then_count(seconds: float, counter_key: str) -> None:
    """Takes ``seconds``, then counts one run (Redis ``counter_key``)."""
    import time

    redis = jobs.redis_connection()
    redis.set(counter_key + ":started", 1)
    time.sleep(seconds)
    redis.incr(counter_key)


@jobs.job
def append(list_key: str, tag: str) -> None:
    """Appends ``tag`` to a Redis list: the order jobs ran in."""
    jobs.redis_connection().rpush(list_key, tag)
