"""Wiring done by the app factory: the fan-out's SQLite function, the push sender from the configuration,
the logout hook."""
from __future__ import annotations

import logging

from service import jobs as jobsmod
from service.db import db
from service.signals import logged_out

from . import fanout, logic
from .push import make_sender

log = logging.getLogger("lienlac.notifications")
_said: set = set()


def init_app(app, config) -> None:
    # on the database the factory has just made, before any other thread opens a connection to it
    fanout.register_sqlite_functions(db.obj, logic.quiet_until)
    logged_out.connect(logic._on_logged_out)  # pylint: disable=protected-access  (idempotent)
    # every worker takes part in the recovery sweep (one run per period across all of them)
    jobsmod.periodic("notifications-recover", "notifications.jobs.recover", config.recovery_sweep_seconds)
    sender = make_sender(config, redis=jobsmod.redis_connection())
    app.extensions["lienlac.push"] = sender
    message = (f"push notifications on: {sender.description}, at most {config.fcm_rate_per_second:g}/s"
               if sender else "push notifications are OFF (no FIREBASE_CREDENTIALS, nor FCM_ENDPOINT with "
                              "FIREBASE_PROJECT_ID): inbox and sockets only")
    if message not in _said:  # once per process, not once per app (tests build many apps)
        _said.add(message)
        (log.info if sender else log.warning)(message)
