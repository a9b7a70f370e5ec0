"""Called by ``create_app`` for every process (web, worker, CLI): start the hourly purge of
attachments never sent (idempotent: the job id names its hour, so many processes ask for one job).
Tests (``config.testing``) start nothing; they run the purge with an injected clock."""
from __future__ import annotations


def init_app(app, config) -> None:
    if config.testing:
        return
    from . import jobs

    with app.app_context():
        try:
            jobs.schedule_purge()
        except Exception:  # noqa: BLE001 - Redis may be away at start; the next process or run retries
            import logging

            logging.getLogger("lienlac.messaging").warning("could not schedule the attachment purge",
                                                           exc_info=True)
