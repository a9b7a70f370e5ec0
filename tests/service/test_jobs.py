"""service.jobs: the same ``enqueue`` inline, in the in-process pool and on a real RQ worker."""
from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid

import pytest
from rq.registry import ScheduledJobRegistry

from service import jobs
from service.accounts import logic as accounts
from service.db import utcnow

from ..support import sample_jobs
from ..support.servers import (SHARED_SECRET, Processes, process_env, requires_postgres, shared_app, truncate_all,
                               unique_channel, wait_for)

_seq = itertools.count(1)


def phone() -> str:
    return f"+8498{(uuid.uuid4().int + next(_seq)) % 10**7:07d}"


def exists(p: str) -> bool:
    return accounts.find_user_by_phone(p) is not None


# --- embedded default: inline and in-process pool ----------------------------------------------
@pytest.fixture(params=["inline", "pool"])
def config(request, database_url, make_config):
    return make_config(database_url, jobs_inline=request.param == "inline")


def test_a_job_enqueued_from_a_job_runs(app):
    first, second, third = phone(), phone(), phone()
    jobs.enqueue(sample_jobs.add_user_then_enqueue, first, "Một", [second, third])
    assert jobs.drain(10)
    assert all(exists(p) for p in (first, second, third))


def test_scheduled_job_waits_for_its_time(app):
    p = phone()
    jobs.enqueue(sample_jobs.add_user, p, "Hai", at=utcnow() + dt.timedelta(seconds=0.4))
    jobs.drain(5)
    assert not exists(p)
    wait_for(lambda: jobs.drain(5) and exists(p), timeout=5, message="the scheduled job")


def test_failing_job_does_not_stop_the_next(app):
    p = phone()
    jobs.enqueue(sample_jobs.add_user_after_one_failure, phone(), "x", "no-redis-here")  # fails: no Redis
    jobs.enqueue(sample_jobs.add_user, p, "Ba")
    assert jobs.drain(10)
    assert exists(p)


# --- RQ: a real `lienlac worker` on the real Redis and PostgreSQL -------------------------------
@pytest.fixture
def rq(pg_url, redis_url, make_config, tmp_path):
    truncate_all(pg_url)
    config = make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                         socketio_channel=unique_channel())
    env = process_env(pg_url, redis_url, tmp_path, SOCKETIO_CHANNEL=config.socketio_channel)
    with shared_app(config) as app:
        yield app, env


@pytest.fixture
def procs(tmp_path):
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


@requires_postgres
def test_burst_worker_runs_jobs_nested_jobs_and_a_retry(rq, procs):
    app, env = rq
    first, second, flaky = phone(), phone(), phone()
    counter = f"attempts:{uuid.uuid4().hex}"
    jobs.enqueue(sample_jobs.add_user_then_enqueue, first, "Bốn", [second])
    jobs.enqueue(sample_jobs.add_user_after_one_failure, flaky, "Năm", counter, retry=(1, [0]))
    assert not any(exists(p) for p in (first, second, flaky))  # nothing ran in this process

    worker = procs.worker(env, "--burst")
    assert worker.wait(60) == 0, worker.output()

    assert exists(first) and exists(second), worker.output()  # second: enqueued by the first job
    assert exists(flaky), worker.output()
    assert int(jobs.redis_connection().get(counter)) == 2  # failed once, succeeded on the retry


@requires_postgres
def test_worker_scheduler_runs_scheduled_jobs_and_delayed_retries(rq, procs):
    app, env = rq
    redis = jobs.redis_connection()
    worker = procs.worker(env)  # long-running, with RQ's scheduler
    later, flaky = phone(), phone()
    counter, attempts = f"count:{uuid.uuid4().hex}", f"attempts:{uuid.uuid4().hex}"

    enqueued_at = time.monotonic()
    jobs.enqueue(sample_jobs.add_user, later, "Sáu", at=utcnow() + dt.timedelta(seconds=2))
    ids = {jobs.enqueue(sample_jobs.count, counter, job_id=f"once:{counter}",  # ":" is mapped for RQ
                        at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
           for _ in range(2)}  # the same job id twice: scheduled once
    assert len(ids) == 1
    assert ScheduledJobRegistry("default", connection=redis).count == 2
    jobs.enqueue(sample_jobs.add_user_after_one_failure, flaky, "Bảy", attempts, retry=(2, [1]))

    wait_for(lambda: exists(later), timeout=20, message=f"the scheduled job\n{worker.output()}")
    assert time.monotonic() - enqueued_at >= 1.5  # not before its time
    wait_for(lambda: exists(flaky), timeout=20, message=f"the retried job\n{worker.output()}")
    assert int(redis.get(attempts)) == 2
    assert int(redis.get(counter)) == 1

    # once finished, the same id runs again
    assert jobs.enqueue(sample_jobs.count, counter, job_id=f"once:{counter}") in ids
    wait_for(lambda: int(redis.get(counter)) == 2, timeout=20, message="the re-enqueued job")
    assert worker.alive(), worker.output()


@requires_postgres
def test_a_scheduled_rq_job_is_never_due_before_its_time(rq):
    """RQ scores scheduled jobs in whole seconds, truncating; enqueue rounds up instead."""
    app, _env = rq
    at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)).replace(microsecond=700_000)
    job_id = jobs.enqueue(sample_jobs.count, f"never-early-{uuid.uuid4().hex}", at=at)
    registry = ScheduledJobRegistry(queue=next(q for q in jobs.queues() if q.name == "default"))
    score = jobs.redis_connection().zscore(registry.key, job_id)
    assert score is not None and score >= at.timestamp()


@requires_postgres
def test_a_periodic_job_is_enqueued_once_per_period_across_workers(rq, monkeypatch):
    """``jobs.periodic``: every worker ticks; one ``SET NX`` per period lets one of them enqueue it,
    and its fixed job id absorbs a tick while it still waits (nothing piles up)."""
    app, _env = rq
    monkeypatch.setattr(jobs, "_periodic", {})
    name = f"p-{uuid.uuid4().hex[:8]}"
    jobs.periodic(name, "tests.support.sample_jobs.count", 0.5)
    jobs.periodic("off", "tests.support.sample_jobs.count", 0)  # switched off: never declared
    assert jobs.tick_periodic() == [name]
    assert jobs.tick_periodic() == []  # a second worker in the same period
    high = next(q for q in jobs.queues() if q.name == "high")
    assert high.job_ids.count(f"periodic-{name}") == 1
    time.sleep(0.6)
    assert jobs.tick_periodic() == [name]  # the next period; the first is still queued: absorbed
    assert high.job_ids.count(f"periodic-{name}") == 1
    high.remove(f"periodic-{name}")


@requires_postgres
def test_a_started_job_whose_worker_stopped_beating_is_enqueued_again(rq):
    """A worker SIGKILLed mid-job leaves it ``started``; RQ's maintenance requeues it a minute or
    more later. ``enqueue`` with its id takes it for dead after three missed heartbeats instead."""
    from rq.job import Job, JobStatus

    app, _env = rq
    redis = jobs.redis_connection()
    default = next(q for q in jobs.queues() if q.name == "default")
    job_id = jobs.enqueue(sample_jobs.count, f"stalled-{uuid.uuid4().hex}", job_id=f"stalled-{uuid.uuid4().hex}")
    default.remove(job_id)  # a worker took it ...
    job = Job.fetch(job_id, connection=redis)
    job.set_status(JobStatus.STARTED)
    job.heartbeat(dt.datetime.now(dt.timezone.utc), 60)  # ... and beats
    assert jobs.enqueue(sample_jobs.count, "x", job_id=job_id) == job_id
    assert Job.fetch(job_id, connection=redis).get_status() == JobStatus.STARTED and job_id not in default.job_ids
    stale = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=jobs._backend.stall_seconds + 1)
    job.heartbeat(stale, 60)  # ... and died: no beat for three monitor intervals
    jobs.enqueue(sample_jobs.count, "x", job_id=job_id)
    assert Job.fetch(job_id, connection=redis).get_status() == JobStatus.QUEUED and job_id in default.job_ids
    default.remove(job_id)


# --- enqueues and emits made inside a transaction wait for its commit -------------------------
def test_a_job_enqueued_in_a_transaction_runs_after_commit_and_never_after_rollback(app):
    from service.db import db

    kept, dropped = phone(), phone()
    with db.atomic():
        jobs.enqueue(sample_jobs.add_user, kept, "Ba")
        jobs.drain(5)
        assert not exists(kept)  # not even the inline runner starts it before the commit
    assert jobs.drain(10) and exists(kept)

    with pytest.raises(RuntimeError), db.atomic():
        jobs.enqueue(sample_jobs.add_user, dropped, "Bốn")
        raise RuntimeError("the request fails after enqueueing")
    assert jobs.drain(10) and not exists(dropped)


def test_an_emit_in_a_transaction_leaves_after_commit_and_never_after_rollback(app, make):
    from service import realtime
    from service.db import db
    from service.realtime import socketio

    user = make.guardian(make.student(make.klass(make.school())))
    sock = socketio.test_client(app, auth={"token": make.token(user)})
    assert sock.is_connected()
    sock.get_received()
    room = realtime.user_room(user.id)
    with db.atomic():
        realtime.emit_to(room, "notification:new", {"n": 1})
        assert sock.get_received() == []
    assert [e["args"][0] for e in sock.get_received()] == [{"n": 1}]
    with pytest.raises(RuntimeError), db.atomic():
        realtime.emit_to(room, "notification:new", {"n": 2})
        raise RuntimeError("rolled back")
    assert sock.get_received() == []
    sock.disconnect()
