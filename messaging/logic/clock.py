"""The time messaging's rules run at (injectable in tests)."""
from __future__ import annotations

import datetime as dt

from flask import current_app, has_app_context

from service.db import utcnow


def now() -> dt.datetime:
    """Naive UTC now; tests inject a clock with ``app.extensions["lienlac.clock"] = callable``."""
    clock = current_app.extensions.get("lienlac.clock") if has_app_context() else None
    return clock() if clock is not None else utcnow()
