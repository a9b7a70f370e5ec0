"""Fixtures for the notifications tests: a local FCM server and an app that pushes to it."""
from __future__ import annotations

import pytest

from notifications.fcm_testserver import FcmTestServer


@pytest.fixture
def fcm():
    with FcmTestServer(retry_after=0) as server:
        yield server


@pytest.fixture
def push_config(database_url, make_config, fcm):
    return make_config(database_url, fcm_endpoint=fcm.url, firebase_project_id=fcm.project_id,
                       fcm_rate_per_second=100000.0)


@pytest.fixture
def push_app(push_config):
    """Like ``app``, with push switched on (pointed at the ``fcm`` server); jobs run inline."""
    from service import db as dbmod
    from service.app import create_app

    app = create_app(push_config)
    ctx = app.app_context()
    ctx.push()
    dbmod.db.connect(reuse_if_open=True)
    yield app
    if not dbmod.db.is_closed():
        dbmod.db.close()
    ctx.pop()
    if hasattr(dbmod.db.obj, "close_all"):
        dbmod.db.obj.close_all()


@pytest.fixture
def pclient(push_app):
    return push_app.test_client()


class _Factory:
    """The shared factories, but users without a password: argon2 costs ~0.3 s a user here and
    these tests sign in with tokens only."""

    def __new__(cls, app):
        from tests.support import factories

        class Factory(factories.Factory):
            def user(self, name="Người dùng", password=None):
                from service import roster

                return roster.ensure_user(self.phone(), name, password)

        return Factory(app)


@pytest.fixture
def make(app):
    return _Factory(app)


@pytest.fixture
def pmake(push_app):
    return _Factory(push_app)
