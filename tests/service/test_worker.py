"""``lienlac worker`` runs jobs in its own process (no fork per job) with RQ's job timeouts, a heartbeat
renewed while a job runs, and a warm shutdown; ``--fork`` gives a work horse per job. A real worker
process on the real Redis and PostgreSQL."""
from __future__ import annotations

import signal
import time
import uuid

import pytest
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from service import jobs

from ..support import sample_jobs
from ..support.servers import (SHARED_SECRET, Processes, process_env, requires_postgres, shared_app, truncate_all,
                               unique_channel, wait_for)

pytestmark = [requires_postgres, pytest.mark.slow]


@pytest.fixture
def rq(pg_url, redis_url, make_config, tmp_path):
    truncate_all(pg_url)
    config = make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                         socketio_channel=unique_channel())
    env = process_env(pg_url, redis_url, tmp_path, SOCKETIO_CHANNEL=config.socketio_channel, RQ_MONITOR_INTERVAL=1)
    with shared_app(config) as app:
        yield app, env


@pytest.fixture
def procs(tmp_path):
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


def test_a_job_runs_in_the_worker_process_and_in_a_work_horse_with_fork(rq, procs):
    _app, env = rq
    redis = jobs.redis_connection()
    here, horse = f"pid:{uuid.uuid4().hex}", f"pid:{uuid.uuid4().hex}"

    jobs.enqueue(sample_jobs.record_pid, here)
    worker = procs.worker(env, "--burst")
    assert worker.wait(60) == 0, worker.output()
    assert int(redis.get(here)) == worker.pid

    jobs.enqueue(sample_jobs.record_pid, horse)
    forking = procs.worker(env, "--burst", "--fork")
    assert forking.wait(60) == 0, forking.output()
    assert int(redis.get(horse)) not in (forking.pid, worker.pid)


def _expiry(redis, job_id) -> float:
    """When the running job's entry in the started registry expires (RQ's maintenance requeues it then)."""
    key = StartedJobRegistry("default", connection=redis).key
    scores = [score for entry, score in redis.zrange(key, 0, -1, withscores=True)
              if entry.decode().startswith(job_id + ":")]
    assert len(scores) == 1, scores
    return scores[0]


def test_timeouts_heartbeats_and_a_warm_shutdown_without_fork(rq, procs):
    _app, env = rq
    redis = jobs.redis_connection()
    worker = procs.worker(env)  # long-running, RQ_MONITOR_INTERVAL=1

    # a job over its timeout fails (RQ's death penalty in the worker process); the worker goes on
    slow = f"count:{uuid.uuid4().hex}"
    timed_out = jobs.enqueue(sample_jobs.sleep_then_count, 30, slow, timeout=1, retry=None)
    wait_for(lambda: Job.fetch(timed_out, connection=redis).get_status() == JobStatus.FAILED, 30,
             0.1, f"the job to time out\n{worker.output()[-3000:]}")
    assert "JobTimeoutException" in Job.fetch(timed_out, connection=redis).latest_result().exc_string
    assert redis.get(slow) is None

    # a long job (10 min timeout) keeps a heartbeat of about a minute, renewed while it runs: a
    # SIGKILLed worker's job is requeued about a minute after, not after its whole timeout
    long = f"count:{uuid.uuid4().hex}"
    job_id = jobs.enqueue(sample_jobs.sleep_then_count, 4, long, timeout=600, retry=None)
    wait_for(lambda: redis.get(long + ":started"), 30, 0.05, f"the long job to start\n{worker.output()[-3000:]}")
    first = _expiry(redis, job_id)
    assert first - time.time() < 65, first - time.time()
    wait_for(lambda: _expiry(redis, job_id) >= first + 1, 5, 0.1, "the heartbeat to be renewed")

    # SIGTERM while it runs: the job finishes, then the worker exits
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()[-3000:]
    assert int(redis.get(long)) == 1
    assert Job.fetch(job_id, connection=redis).get_status() == JobStatus.FINISHED


def test_inbox_jobs_run_in_a_row_push_jobs_beside_them_and_high_always_first(rq, procs):
    """After a push job a worker takes the other queues first (an announcement's inbox chunks on
    ``low`` do not wait for every push job), up to ``OTHERS_PER_PUSH`` of their jobs in a row (issue
    14: not one push job between every two chunks), then ``push`` has its turn; ``high`` before all."""
    from service.worker import Worker

    _app, env = rq
    redis = jobs.redis_connection()
    order = f"order:{uuid.uuid4().hex}"
    for i in range(6):
        jobs.enqueue(sample_jobs.append, order, f"push{i}", queue="push")
        jobs.enqueue(sample_jobs.append, order, f"low{i}", queue="low")
    jobs.enqueue(sample_jobs.append, order, "high", queue="high")
    worker = procs.worker(env, "--burst")
    assert worker.wait(60) == 0, worker.output()
    ran = [t.decode() for t in redis.lrange(order, 0, -1)]
    assert Worker.OTHERS_PER_PUSH == 4
    assert ran == ["high", "push0", "low0", "low1", "low2", "low3", "push1", "low4", "low5",
                   "push2", "push3", "push4", "push5"], ran
