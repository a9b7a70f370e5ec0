"""The recovery sweep: work the database says is due that no job will do, handed to jobs again.

Jobs live in Redis; the durable truth is the database. Redis restarted without its data (or a
job deleted, or a queue flushed) leaves rows that wait for a job that no longer exists: an
announcement ``queued`` whose planner never ran, one ``sending`` with chunks never run
(``done_at`` null), inbox rows whose push was never claimed (no ``PushAttempt`` for a live
device), held pushes whose quiet hours are over. ``recover`` finds each of them once it is
``grace`` seconds overdue and enqueues the same idempotent jobs again, under the ids the first
enqueue used where there is one (so a job still waiting in Redis is not doubled). It also runs
``push.sweep`` (stale ``sending`` claims of a killed worker, overdue retries).

Every worker process takes part (``service.jobs.periodic``: one run per ``RECOVERY_SWEEP_SECONDS``
across all of them, through a Redis key); running it twice, or beside the jobs it recovers, is
harmless: chunks insert with conflicts ignored, and push claims decide who sends what.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

from peewee import fn

from service.db import utcnow

from . import queues
from .models import Announcement, Device, Notification, PushAttempt
from .push import current_sender, sweep

log = logging.getLogger("lienlac.notifications.recovery")

#: pushes older than this are not recovered (the scan stays bounded; the news is stale by then)
PUSH_LOOKBACK = dt.timedelta(hours=6)
PUSH_JOB = 500  # notifications per recovered push job
SCAN = 20_000  # notifications per statement of the push scan


#: (monotonic time, highest notification id) as this process saw them, newest last
_watermarks: list[tuple[float, int]] = []


def settled_id(grace: float, clock=time.monotonic) -> int | None:
    """The highest notification id that already existed ``grace`` seconds ago, as far as this
    process knows (None on its first look). Rows inserted since are not judged yet: their push
    jobs may just be waiting in the queue (a chunk run again inserts rows "created" at the
    announcement's start, so ``created_at`` cannot tell)."""
    now = clock()
    _watermarks.append((now, Notification.select(fn.MAX(Notification.id)).scalar() or 0))
    older = [k for k, (t, _) in enumerate(_watermarks) if t <= now - grace]
    if not older:
        return None
    del _watermarks[:older[-1]]  # the newest one old enough, and what came after it
    return _watermarks[0][1]


def recover(grace: float, now: dt.datetime | None = None, lookback: dt.timedelta = PUSH_LOOKBACK,
            clock=time.monotonic) -> dict:
    """Re-enqueue what is ``grace`` seconds overdue and unclaimed; returns counts per kind."""
    now = now or utcnow()
    due = now - dt.timedelta(seconds=grace)
    pushing = current_sender() is not None
    upto = settled_id(grace, clock) if pushing else None
    out = {"announcements": recover_announcements(due),
           "pushes": recover_pushes(due, now - lookback, upto) if upto else 0,
           "stale": sweep(grace, now=now) if pushing else 0}
    if any(out.values()):
        log.warning("recovery sweep: %s", " ".join(f"{k}={v}" for k, v in out.items()))
    return out


def recover_announcements(due: dt.datetime) -> int:
    """Announcements due and not planned, or planned with chunks never done: their planner again
    (``plan`` re-enqueues exactly the open chunks, under their first job ids)."""
    waiting = (Announcement.status.in_(["queued", "scheduled"])
               & (fn.COALESCE(Announcement.send_at, Announcement.created_at) <= due))
    sending = (Announcement.status == "sending") & (Announcement.started_at <= due)
    ids = [a for (a,) in Announcement.select(Announcement.id).where(waiting | sending)
           .order_by(Announcement.id).tuples()]
    for ann_id in ids:
        queues.enqueue("plan_announcement", ann_id, None, queue="default", job_id=f"ann-{ann_id}-plan")
    return len(ids)


def _first_id_since(since: dt.datetime) -> int | None:
    """The first notification id created at or after ``since``, by bisection on the primary key
    (ids grow with time; no index on ``created_at`` is needed for a few dozen point reads)."""
    low, high = Notification.select(fn.MIN(Notification.id), fn.MAX(Notification.id)).scalar(as_tuple=True)
    if high is None:
        return None
    while low < high:
        mid = (low + high) // 2
        row = (Notification.select(Notification.id, Notification.created_at).where(Notification.id >= mid)
               .order_by(Notification.id).limit(1).tuples().first())
        if row[1] < since:
            low = row[0] + 1
        else:
            high = mid
    return low


def recover_pushes(due: dt.datetime, since: dt.datetime, upto: int) -> int:
    """Notifications (ids up to ``upto``) whose push is due (pending, or held past its quiet hours)
    since ``due`` with a device (registered by then) that has no attempt at all: nobody claimed it,
    so no claim can go stale; their push jobs again."""
    start = _first_id_since(since)
    if start is None:
        return 0
    attempted = PushAttempt.select(PushAttempt.id).where((PushAttempt.notification == Notification.id)
                                                         & (PushAttempt.device_id == Device.id))
    unpushed_device = Device.select(Device.id).where((Device.user == Notification.user)
                                                     & (Device.created_at <= Notification.created_at)
                                                     & ~fn.EXISTS(attempted))
    due_push = ((Notification.push_status == "pending")
                | ((Notification.push_status == "held") & (Notification.push_after <= due)))
    found = 0
    while True:
        ids = [n for (n,) in Notification.select(Notification.id)
               .where((Notification.id >= start) & (Notification.id <= upto) & due_push
                      & (Notification.created_at <= due)
                      & fn.EXISTS(unpushed_device))
               .order_by(Notification.id).limit(SCAN).tuples()]
        for k in range(0, len(ids), PUSH_JOB):
            part = ids[k:k + PUSH_JOB]
            queues.enqueue("push", part, queue=queues.PUSH_QUEUE,
                           job_id=f"push-recover-{part[0]}-{part[-1]}-{len(part)}")
        found += len(ids)
        if len(ids) < SCAN:
            return found
        start = ids[-1] + 1
