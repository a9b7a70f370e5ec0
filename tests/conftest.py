"""Shared fixtures: an app on a real database (SQLite file and PostgreSQL), clients, factories.

Every test that takes ``app`` runs once per backend in ``LIENLAC_TEST_DBS`` (default both).
PostgreSQL gets one database per test session, migrated once and truncated between tests;
SQLite gets a fresh copy of a migrated template file per test.
"""
from __future__ import annotations

import os
import shutil
import uuid

# Every FastSchema dump is compared with marshmallow's own in the tests (and in the processes they start).
os.environ.setdefault("LIENLAC_CHECK_FAST_DUMP", "1")

import peewee
import pytest
import redis as redis_lib

from service import db as dbmod
from service.config import Config

from .support import factories
from .support.apps import running_app
from .support.servers import PG_ADMIN_URL, REDIS_BASE_URL, truncate_all

BACKENDS = [b for b in os.environ.get("LIENLAC_TEST_DBS", "sqlite,postgres").split(",") if b]


def pytest_configure(config):
    """Under pytest-xdist (``./test.sh`` runs ``-n 2``) each worker gets a Redis database of its own:
    ``LIENLAC_TEST_REDIS_DB`` (default 9) for the first worker, the next numbers for the others.
    PostgreSQL needs nothing: each worker process creates its own database (``pg_url``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        base = int(os.environ.get("LIENLAC_TEST_REDIS_DB", "9"))
        os.environ["LIENLAC_TEST_REDIS_DB"] = str((base + int(worker[2:])) % 16)


@pytest.fixture(scope="session")
def pg_url():
    name = f"lienlac_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = peewee.PostgresqlDatabase(**_pg_params(PG_ADMIN_URL))
    admin.connect()
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    admin.close()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    dbmod.init_database(url)
    dbmod.migrate()
    dbmod.db.close_all() if hasattr(dbmod.db.obj, "close_all") else dbmod.db.close()
    yield url
    admin.connect()
    admin.execute_sql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def _pg_params(url):
    from playhouse.db_url import parse

    return parse(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    dbmod.init_database(f"sqlite:///{path}")
    dbmod.migrate()
    dbmod.db.close()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        truncate_all(url)
        return url
    template = request.getfixturevalue("sqlite_template")
    path = tmp_path / "lienlac.sqlite3"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def make_config(tmp_path):
    def make(database_url, **overrides):
        values = dict(database_url=database_url, redis_url=None, secret_key="test-secret-" + uuid.uuid4().hex,
                      testing=True, jobs_inline=True, upload_dir=str(tmp_path / "uploads"),
                      login_rate_limit="1000 per minute", otp_rate_limit="1000 per minute",
                      message_rate_limit="100000 per minute",
                      refresh_rate_limit="1000 per minute", claim_rate_limit="1000 per minute",
                      announcement_rate_limit="1000 per minute", auth_lockout_failures=1000,
                      extra={"ip_rate_limit": "10000 per minute"})
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture
def config(database_url, make_config):
    return make_config(database_url)


@pytest.fixture
def app(config):
    with running_app(config) as app:
        yield app


@pytest.fixture
def fcm():
    """The local FCM-compatible server; the real firebase-admin SDK is pointed at it."""
    from tests.support.fcm_server import FcmTestServer

    with FcmTestServer(retry_after=0) as server:
        yield server


@pytest.fixture
def push_config(database_url, make_config, fcm):
    """A config with push switched on, sending to the ``fcm`` server."""
    return make_config(database_url, fcm_endpoint=fcm.url, firebase_project_id=fcm.project_id,
                       fcm_rate_per_second=100000.0)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make(app):
    """Roster factories bound to the test database: ``make.school()``, ``make.guardian(student)``, ..."""
    return factories.Factory(app)


@pytest.fixture
def fast(make):
    """``make`` for password-less users (token only: no argon2 cost), reusing one token per user."""
    return make.fast()


@pytest.fixture
def redis_url():
    """A Redis database of its own, flushed before the test."""
    url = REDIS_BASE_URL + "/" + os.environ.get("LIENLAC_TEST_REDIS_DB", "9")
    redis_lib.Redis.from_url(url).flushdb()
    return url
