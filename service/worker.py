"""What ``lienlac worker`` runs: RQ's ``SimpleWorker`` (jobs in the worker's own process, no fork
per job) with the forking worker's heartbeat, or RQ's forking ``Worker`` with ``--fork``.

A fork per job costs a few milliseconds and a cold process each time (no reused database
connection, FCM session or imported module state); our jobs are idempotent, open and close their
own database connection (``jobs.job``) and keep no state between runs, so they run in the worker
itself. What RQ still gives, checked against rq 3.0's source:

* job timeouts: ``perform_job`` runs the job under RQ's death penalty (SIGALRM in the main
  thread), in a simple worker as in a work horse; the job fails with ``JobTimeoutException`` and
  its retries apply. (A job stuck inside C code that never returns to Python is not interrupted;
  the forking worker would kill its horse. ``--fork`` if a job may do that.)
* RQ's scheduler (``with_scheduler=True``) and retries: unchanged, they do not depend on the class.
* SIGTERM / SIGINT: a warm shutdown, the current job finishes, then the worker exits; a second
  signal stops at once (the job fails and is retried).
* a SIGKILLed worker: its started jobs are requeued by RQ's maintenance once their heartbeat
  expires. ``SimpleWorker`` alone sets that heartbeat once, for the whole job timeout + 60 s
  (10 minutes for ours); the forking worker renews it every ``job_monitoring_interval`` for that
  interval + 60 s. ``Worker`` below renews it the same way from a thread while the job runs (RQ's
  registry updates are ``XX``: a late beat never brings a finished job back), so a dead worker's
  jobs come back as soon as before.
"""
from __future__ import annotations

import threading

from rq import SimpleWorker
from rq import Worker as ForkingWorker
from rq.worker.base import BaseWorker, WorkerStatus


class _PushBeside:
    """Queue order per job: ``high`` (chat pushes, sign-in codes) always first; then the other
    queues (``default``, ``low``: an announcement's planner and inbox chunks) before ``push``, but
    ``push`` gets its turn after ``OTHERS_PER_PUSH`` of their jobs in a row; after a job from
    ``push`` the others come first again. So an announcement's inbox chunks run one after another
    (the inbox is the truth, the push only its signal; issue 14: with a push job between every two
    chunks the inbox of 100,000 guardians took 6.3 s, a chunk 0.6 s), and the pushes still go out
    beside a long run of other jobs instead of waiting behind all of them."""

    OTHERS_PER_PUSH = 4
    _others_in_a_row = 0

    def reorder_queues(self, reference_queue):
        name = getattr(reference_queue, "name", reference_queue)
        if name == "high":
            return
        self._others_in_a_row = 0 if name == "push" else self._others_in_a_row + 1
        ordered = self._ordered_queues
        push = [q for q in ordered if q.name == "push"]
        first = [q for q in ordered if q.name == "high"]
        rest = [q for q in self.queues if q.name not in ("high", "push")]  # in the worker's own order
        push_now = self._others_in_a_row >= self.OTHERS_PER_PUSH
        self._ordered_queues = first + (push + rest if push_now else rest + push)


class Worker(_PushBeside, SimpleWorker):
    """Runs each job in this process; heartbeats every ``job_monitoring_interval`` while it runs."""

    # the forking worker's TTL (min(timeout left, monitoring interval) + 60 s), not job timeout + 60 s
    get_heartbeat_ttl = BaseWorker.get_heartbeat_ttl

    def execute_job(self, job, queue):
        execution = self.prepare_execution(job)
        done = threading.Event()

        def beat():
            while not done.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # noqa: BLE001 - Redis briefly away: the next beat tries again
                    self.log.warning("Worker %s: heartbeat failed", self.name, exc_info=True)

        beater = threading.Thread(target=beat, name="rq-heartbeat", daemon=True)
        beater.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beater.join(5)
        self.set_state(WorkerStatus.IDLE)


class ForkingPushBesideWorker(_PushBeside, ForkingWorker):
    """RQ's forking worker (a work horse per job), with the same queue order."""


def worker_class(fork: bool) -> type[BaseWorker]:
    return ForkingPushBesideWorker if fork else Worker
