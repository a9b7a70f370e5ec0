"""Apps for tests: built on a config, context pushed, connection open, closed after."""
from __future__ import annotations

import contextlib

from service import db as dbmod


@contextlib.contextmanager
def running_app(config, web: bool = True):
    """An app on ``config`` with its context pushed and a database connection open."""
    from service.app import create_app

    app = create_app(config, web=web)
    ctx = app.app_context()
    ctx.push()
    dbmod.db.connect(reuse_if_open=True)
    try:
        yield app
    finally:
        if not dbmod.db.is_closed():
            dbmod.db.close()
        ctx.pop()
        if hasattr(dbmod.db.obj, "close_all"):
            dbmod.db.obj.close_all()
