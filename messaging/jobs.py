"""RQ entry points of messaging (thin: the rules are in ``logic``).

The logic enqueues them by name (``"messaging.jobs.push_new_message"``), so it never imports
this module, which imports it.
"""
from __future__ import annotations

from service.jobs import job

from .logic import attachments, sending


@job
def push_new_message(message_id: int, silent_for: list[int]) -> None:
    """Push a new message to the members who are not connected (may run twice: a push at most twice,
    collapsed on the phone by its collapse key)."""
    sending.push_new_message(message_id, silent_for)


@job
def purge_unsent_attachments() -> int:
    """Delete the attachments never sent that are old enough (``attachments.purge_unsent_attachments``).

    Scheduled by the uploads themselves (``attachments.schedule_purge``): no upload, no job."""
    return attachments.purge_unsent_attachments()
