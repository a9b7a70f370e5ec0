"""Shared by the contact-book views: documented error answers."""
from __future__ import annotations

from service.schemas import ErrorEnvelope

TEXT = {401: "no valid device key", 403: "the caller's role may never do this",
        404: "no such thing, or not visible to the caller", 409: "conflicts with the current state",
        422: "invalid fields; nothing was stored"}


def errors(blp, *statuses, **texts):
    """Document the error envelope for these statuses (``texts``: ``e404="..."`` overrides)."""

    def decorate(view):
        for status in reversed(statuses):
            view = blp.alt_response(status, schema=ErrorEnvelope,
                                    description=texts.get(f"e{status}", TEXT[status]))(view)
        return view

    return decorate
