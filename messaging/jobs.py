"""RQ entry points of messaging (thin: the rules are in ``logic``)."""
from __future__ import annotations

from service.jobs import job


@job
def push_new_message(message_id: int, silent_for: list[int]) -> None:
    """Push a new message to the members who are not connected (may run twice: a push at most twice,
    collapsed on the phone by its collapse key)."""
    from . import logic

    logic.push_new_message(message_id, silent_for)
