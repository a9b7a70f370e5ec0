"""Fixtures for the notifications tests: a local FCM server and an app that pushes to it."""
from __future__ import annotations

import pytest

from ..support.apps import running_app


@pytest.fixture
def push_app(push_config):
    """Like ``app``, with push switched on (pointed at the ``fcm`` server); jobs run inline."""
    with running_app(push_config) as app:
        yield app


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
                from service.roster import logic as roster

                return roster.ensure_user(self.phone(), name, password)

        return Factory(app)


@pytest.fixture
def make(app):
    return _Factory(app)


@pytest.fixture
def pmake(push_app):
    return _Factory(push_app)
