"""RQ entry points of messaging (thin: the rules are in ``logic``)."""
from __future__ import annotations

import datetime as dt

from service import jobs as jobs_mod
from service.db import utcnow
from service.jobs import job

#: how often unsent attachments are looked for (they are deleted ``unsent_attachment_seconds`` old)
PURGE_INTERVAL = dt.timedelta(hours=1)


@job
def push_new_message(message_id: int, silent_for: list[int]) -> None:
    """Push a new message to the members who are not connected (may run twice: a push at most twice,
    collapsed on the phone by its collapse key)."""
    from . import logic

    logic.push_new_message(message_id, silent_for)


@job
def purge_unsent_attachments() -> int:
    """Delete the attachments never sent (``logic.purge_unsent_attachments``), then schedule the next
    run: a chain of one job per hour. The job id names the hour it runs in, so every process that
    starts the chain (``schedule_purge``) and every run that continues it ask for the same job."""
    from . import logic

    try:
        return logic.purge_unsent_attachments()
    finally:
        schedule_purge()


def schedule_purge(after: dt.datetime | None = None) -> str:
    """Make sure the next purge is scheduled (idempotent: one job per hour slot, whoever asks).

    Wall-clock time on purpose (RQ's scheduler runs on it), not the app's injectable clock.
    """
    base = after or utcnow()
    interval = int(PURGE_INTERVAL.total_seconds())
    slot = int(base.replace(tzinfo=dt.timezone.utc).timestamp()) // interval + 1
    at = dt.datetime.fromtimestamp(slot * interval, dt.timezone.utc).replace(tzinfo=None)
    return jobs_mod.enqueue(purge_unsent_attachments, queue="low", job_id=f"messaging-purge-attachments-{slot}",
                            at=at, retry=None)
