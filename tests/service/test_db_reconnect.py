"""PostgreSQL connections ended from the other side (``pg_terminate_backend``, a restart, a
failover): a read outside a transaction is read again on a new connection, anything else fails
and the web answers 503 with ``Retry-After`` in the API.md envelope; the dead connection never
goes back to the pool."""
from __future__ import annotations

import contextlib

import peewee
import pytest

from service import db as dbmod
from service.db import db

from ..support.apps import running_app
from ..support.servers import requires_postgres

pytestmark = requires_postgres


def _terminate(url: str, pid: int) -> None:
    params = dbmod.parse_db_url(url)
    admin = peewee.PostgresqlDatabase(params.pop("database"), **params)
    with contextlib.closing(admin.connection()):
        assert admin.execute_sql("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def _pid() -> int:
    return db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]


@pytest.fixture
def pg_app(pg_url, make_config):
    with running_app(make_config(pg_url)) as app:
        yield app


def test_a_read_outside_a_transaction_is_read_again_on_a_new_connection(pg_app, pg_url):
    old = _pid()
    _terminate(pg_url, old)
    assert db.execute_sql("SELECT 41 + 1").fetchone()[0] == 42  # no error: read again
    assert _pid() != old
    assert len(db.obj._in_use) == 1  # pylint: disable=protected-access  (the dead one left the pool)


def test_a_write_or_a_transaction_is_not_repeated_and_the_connection_is_discarded(pg_app, pg_url):
    _terminate(pg_url, _pid())
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
        db.execute_sql("SET application_name = 'x'")  # not a read: never sent twice
    assert dbmod.connection_lost()
    dbmod.release()
    assert db.is_closed() and not db.obj._in_use  # pylint: disable=protected-access

    db.connect()
    pid = _pid()
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
        with db.atomic():
            db.execute_sql("SELECT 1")
            _terminate(pg_url, pid)
            db.execute_sql("SELECT 2")  # a read, but the transaction is gone: not read again
    dbmod.release()
    assert db.is_closed() and not db.obj._in_use  # pylint: disable=protected-access
    db.connect()
    assert db.execute_sql("SELECT 3").fetchone()[0] == 3


def test_a_session_advisory_lock_pins_the_connection(pg_app, pg_url):
    db.execute_sql("SELECT pg_advisory_lock(1, 2)")
    _terminate(pg_url, _pid())
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
        db.execute_sql("SELECT 1")  # the lock died with the connection: do not carry on elsewhere
    dbmod.release()


def test_the_api_answers_503_with_retry_after_when_the_connection_dies_mid_transaction(pg_app, pg_url):
    def dies_in_a_transaction():
        with db.atomic():
            db.execute_sql("SELECT 1")
            db.execute_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return {"ok": True}

    def fails_otherwise():
        db.execute_sql("SELECT * FROM no_such_table")
        return {"ok": True}

    def dies_and_is_forgotten():
        try:
            db.execute_sql("SELECT pg_terminate_backend(pg_backend_pid())")  # (read again: dies again)
        finally:
            db.obj.manual_close()  # as messaging does when it cannot release its lock
        return {"ok": True}

    pg_app.add_url_rule("/test/dies", view_func=dies_in_a_transaction)
    pg_app.add_url_rule("/test/forgotten", view_func=dies_and_is_forgotten)
    pg_app.add_url_rule("/test/fails", view_func=fails_otherwise)
    client = pg_app.test_client()
    r = client.get("/test/dies")
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.get_json()["error"]["code"] == "unavailable"
    assert not db.obj._in_use  # pylint: disable=protected-access  (released, not returned)
    assert client.get("/healthz").status_code == 200
    r = client.get("/test/forgotten")  # the connection is gone from the thread: the error still says so
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    r = client.get("/test/fails")  # another database error is still a 500
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "internal_error"


def test_a_connection_back_in_the_pool_a_moment_ago_is_not_pinged(pg_app, pg_url, monkeypatch):
    """The pool's check-out ping (the adapter's SELECT 1) is skipped for a connection released less
    than PING_IDLE_SECONDS ago; an older one is pinged, and a dead one replaced."""
    db.close()
    db.connect()
    first = _pid()
    db.close()
    pings = []
    adapter = db.obj._adapter  # pylint: disable=protected-access
    real = adapter.is_connection_closed

    def counting(conn):
        pings.append(conn)
        return real(conn)

    monkeypatch.setattr(adapter, "is_connection_closed", counting)
    db.connect()  # released a moment ago: no ping
    assert _pid() == first and pings == []
    db.close()
    monkeypatch.setattr(type(db.obj), "PING_IDLE_SECONDS", 0.0)
    db.connect()  # now pinged, and alive
    assert len(pings) == 1 and _pid() == first
    db.close()
    _terminate(pg_url, first)
    db.connect()  # the ping finds it dead: a new connection
    assert _pid() != first
