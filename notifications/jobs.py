"""RQ entry points of the notifications package (thin: the rules are in logic/announcements/push).

Every job is idempotent and may die at any point and run again. ``now`` arguments (ISO strings)
exist so tests inject time; production leaves them None.
"""
from __future__ import annotations

import datetime as dt

from service.jobs import job

from . import announcements, logic
from .push import push_notifications, sweep


def _when(now: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(now) if now else None


@job
def deliver(key: str, user_ids: list[int], spec: dict, now: str | None = None, queue: str = "high",
            seq: int = 0) -> None:
    """One chunk of a ``notify`` call (or an announcement reminder): rows, then pushes."""
    logic.deliver_chunk(key, user_ids, spec, _when(now), queue=queue, seq=seq)


@job
def deliver_each(items: list, now: str | None = None) -> None:
    """Several ``notify`` calls of one ``notify_each``: ``[[key, user_ids, spec], ...]``, each idempotent."""
    logic.deliver_each(items, _when(now))


@job
def plan_notify(key: str, user_ids: list[int], spec: dict, now: str | None = None) -> None:
    logic.plan_notify(key, user_ids, spec, _when(now))


@job
def push(notification_ids: list[int], now: str | None = None) -> None:
    push_notifications(notification_ids, now=_when(now))


@job
def sweep_push(timeout: float | None = None) -> int:
    """Hand stale push claims (a killed worker's) and overdue retries to push jobs (``push.sweep``)."""
    from flask import current_app

    return sweep(timeout if timeout is not None else current_app.config["LIENLAC"].push_claim_timeout_seconds)


@job
def recover() -> dict:
    """The periodic recovery sweep (``recovery.recover``): due work whose job was lost, enqueued again."""
    from flask import current_app

    from .recovery import recover as run

    return run(current_app.config["LIENLAC"].push_claim_timeout_seconds)


@job
def release_held(now: str | None = None) -> None:
    logic.release_held(_when(now))


@job
def plan_announcement(announcement_id: int, now: str | None = None) -> None:
    announcements.plan(announcement_id, _when(now))


@job
def announcement_chunk(announcement_id: int, seq: int) -> None:
    announcements.run_chunk(announcement_id, seq)


@job
def remind_announcement(announcement_id: int, now: str | None = None) -> None:
    announcements.remind(announcement_id, _when(now))
