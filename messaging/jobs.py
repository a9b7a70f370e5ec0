"""RQ entry points of messaging (thin: the rules are in ``logic``).

The logic enqueues them by name (``"messaging.jobs.push_new_message"``), so it never imports
this module, which imports it.
"""
from __future__ import annotations

from service.jobs import job

from .logic import attachments, sending


@job
def push_new_message(message_id: int, silent_for: list[int], user_ids: list[int] | None = None) -> None:
    """Push a new message to the members who were offline when it was sent (``user_ids``; None:
    every member) and still are, and still members (may run twice: a push at most twice,
    collapsed on the phone by its collapse key)."""
    sending.push_new_message(message_id, silent_for, user_ids)


@job
def purge_unsent_attachments() -> int:
    """Delete the attachments never sent that are old enough (``attachments.purge_unsent_attachments``).

    Scheduled by the uploads themselves (``attachments.schedule_purge``): no upload, no job."""
    return attachments.purge_unsent_attachments()
