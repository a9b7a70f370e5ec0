"""RQ entry points of messaging (thin: the rules are in ``logic``)."""
from __future__ import annotations

import datetime as dt

from service import jobs as jobs_mod
from service.jobs import job

#: uploads expiring within the same hour share one purge job
PURGE_SLOT = dt.timedelta(hours=1)

@job
def push_new_message(message_id: int, silent_for: list[int]) -> None:
    """Push a new message to the members who are not connected (may run twice: a push at most twice,
    collapsed on the phone by its collapse key)."""
    from . import logic

    logic.push_new_message(message_id, silent_for)


@job
def purge_unsent_attachments() -> int:
    """Delete the attachments never sent that are old enough (``logic.purge_unsent_attachments``).

    Scheduled by the uploads themselves (``schedule_purge``): no upload, no job."""
    from . import logic

    return logic.purge_unsent_attachments()


def schedule_purge(expires_at: dt.datetime) -> str:
    """Make sure a purge runs once a file uploaded now has expired (``expires_at``, naive UTC, wall clock).

    One job per hour: the job id names the hour after ``expires_at``, so the uploads of an hour
    share one job (idempotent, from any process), and each run deletes every expired file, those
    of an earlier hour whose job was lost included.
    """
    interval = int(PURGE_SLOT.total_seconds())
    slot = int(expires_at.replace(tzinfo=dt.timezone.utc).timestamp()) // interval + 1
    at = dt.datetime.fromtimestamp(slot * interval, dt.timezone.utc).replace(tzinfo=None)
    return jobs_mod.enqueue(purge_unsent_attachments, queue="low", job_id=f"messaging-purge-attachments-{slot}",
                            at=at, retry=(3, [60, 600, 3600]))
