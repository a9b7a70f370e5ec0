"""How the notifications package enqueues its jobs: by name, with one retry policy.

``logic``, ``announcements`` and ``push`` enqueue through here and never import ``jobs``, which
imports them (the RQ entry points stay thin, and there is no import circle).
"""
from __future__ import annotations

from service import jobs as jobsmod

#: push jobs' own queue, served after ``high``, in turn with the others (service.worker._PushBeside)
PUSH_QUEUE = "push"
#: retries of a notifications job (count, seconds between tries); every job is idempotent
JOB_RETRY = (6, [1, 5, 30, 120, 600, 1800])  # a job that raised, or whose worker died: soon, then later


def enqueue(job_name: str, *args, **kwargs) -> str:
    """``service.jobs.enqueue`` of ``notifications.jobs.<job_name>`` (retried by ``JOB_RETRY`` unless told)."""
    kwargs.setdefault("retry", JOB_RETRY)
    return jobsmod.enqueue(f"notifications.jobs.{job_name}", *args, **kwargs)
