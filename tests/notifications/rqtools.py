"""Helpers for tests that run real ``lienlac worker`` processes."""
from __future__ import annotations

import os
import time

from rq import Queue
from rq.executions import Execution
from rq.registry import StartedJobRegistry

from service import jobs



def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _signal(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def sigkill_worker_mid_job(proc, redis, timeout: float = 30, match=None) -> list[str]:
    """Kill a worker as a crashing machine would, while it runs a job (one whose id ``match``
    accepts, if given): the worker, its scheduler and its work horse (which RQ puts in a process
    group of its own). The tree is frozen (SIGSTOP) first and killed only if such a job of this
    worker is still running; otherwise it is let go and we try again. Returns the ids of the jobs
    it was running."""
    import signal

    name = worker_name(proc)
    match = match or (lambda _job_id: True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(match(j) for j in running_jobs_of(redis, name)):
            pids = _tree(proc.popen.pid)
            _signal(pids, signal.SIGSTOP)
            running = running_jobs_of(redis, name)
            if any(match(j) for j in running):
                _signal(reversed(pids), signal.SIGKILL)
                _signal(pids, signal.SIGCONT)
                proc.popen.wait(10)
                return running
            _signal(pids, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the worker never ran a job")


def worker_name(proc) -> str:
    args = list(proc.popen.args)
    return args[args.index("--name") + 1]


def _executions(redis):
    for queue_name in jobs.QUEUES:
        registry = StartedJobRegistry(queue=Queue(queue_name, connection=redis))
        for entry in redis.zrange(registry.key, 0, -1):
            try:
                execution = Execution.from_composite_key(entry.decode(), connection=redis)
                execution.refresh()
            except ValueError:
                continue
            yield registry, entry.decode(), execution


def running_jobs_of(redis, name: str) -> list[str]:
    """Ids of the jobs a worker is executing now."""
    return [execution.job_id for _, _, execution in _executions(redis) if execution.worker_name == name]


def requeue_jobs_of(redis, name: str) -> int:
    """What RQ's maintenance does once a dead worker's heartbeat expires, now: its started jobs go
    back to their queues (retry) through ``StartedJobRegistry.cleanup``."""
    from rq.job import Job, JobStatus

    count = 0
    for registry, entry, execution in list(_executions(redis)):
        if execution.worker_name != name:
            continue
        count += 1
        job = Job.fetch(execution.job_id, connection=redis)
        if job.get_status() == JobStatus.STARTED:
            redis.zadd(registry.key, {entry: 1})  # expired: cleanup() below retries it
        else:
            # killed after the worker took it, before its work horse started it: the job still sits
            # in the queue's intermediate list, which RQ's maintenance requeues after a minute
            queue = Queue(job.origin, connection=redis)
            redis.lrem(queue.intermediate_queue_key, 1, job.id)
            redis.zrem(registry.key, entry)
            queue.enqueue_job(job)
    for queue_name in jobs.QUEUES:
        StartedJobRegistry(queue=Queue(queue_name, connection=redis)).cleanup(timestamp=1)
    return count


def _alive(pid: int) -> bool:
    """Running, not a zombie (no init reaps orphans in some containers)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def release_dead_scheduler_locks(redis) -> int:
    """A SIGKILLed worker's scheduler keeps its queue locks for a minute: free them now."""
    freed = 0
    for key in redis.scan_iter("rq:scheduler-lock:*"):
        holder = redis.get(key)
        pid = redis.hget(b"rq:scheduler:" + holder, "pid") if holder else None
        if not pid or not _alive(int(pid)):
            redis.delete(key)
            freed += 1
    return freed


def pending_jobs(redis) -> int:
    """Jobs queued, scheduled or running on any queue."""
    from rq.registry import ScheduledJobRegistry

    total = 0
    for name in jobs.QUEUES:
        q = Queue(name, connection=redis)
        total += (q.count + len(StartedJobRegistry(queue=q)) + len(ScheduledJobRegistry(queue=q))
                  + redis.llen(q.intermediate_queue_key))
    return total
