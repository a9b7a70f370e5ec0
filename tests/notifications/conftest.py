"""Fixtures for the notifications tests: a local FCM server and an app that pushes to it."""
from __future__ import annotations

import pytest

from ..support.apps import running_app
from ..support.factories import Factory


@pytest.fixture
def push_app(push_config):
    """Like ``app``, with push switched on (pointed at the ``fcm`` server); jobs run inline."""
    with running_app(push_config) as app:
        yield app


@pytest.fixture
def pclient(push_app):
    return push_app.test_client()


@pytest.fixture
def make(app):
    """The shared factory, with users without a password: these tests sign in with tokens only."""
    return Factory(app, password=None)


@pytest.fixture
def pmake(push_app):
    return Factory(push_app, password=None)
