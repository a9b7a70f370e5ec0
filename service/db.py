"""One peewee database proxy for every package, connection handling and migrations.

``init_database(url)`` binds the proxy (SQLite file for the embedded default, PostgreSQL with a
connection pool in production). Connections are opened per request and per job and closed after.
Each package keeps its schema history in its own ``migrations/`` folder, applied in
``MIGRATION_PACKAGES`` order by ``migrate()`` (idempotent: applied scripts are recorded).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib
from pathlib import Path

import peewee
from playhouse.db_url import parse as parse_db_url
from playhouse.migrations import Runner
from playhouse.pool import PooledPostgresqlDatabase

db = peewee.DatabaseProxy()

MIGRATION_PACKAGES = ("service", "notifications", "messaging", "contactbook", "nutrition", "schedules")


def utcnow() -> dt.datetime:
    """Naive UTC timestamp: every stored time is UTC."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False


def make_database(url: str, pool_size: int = 32) -> peewee.Database:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path not in (":memory:", ""):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(
            path,
            pragmas={
                "journal_mode": "wal",
                "foreign_keys": 1,
                "busy_timeout": 30000,
                "synchronous": "normal",
            },
            timeout=30,
            check_same_thread=False,
        )
    if url.startswith(("postgres://", "postgresql://", "postgresql+pool://")):
        params = parse_db_url(url.replace("postgresql+pool://", "postgresql://"))
        name = params.pop("database")
        return PooledPostgresqlDatabase(
            name,
            max_connections=pool_size,
            stale_timeout=300,
            timeout=30,
            **params,
        )
    raise ValueError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]}")


def init_database(url: str, pool_size: int = 32) -> peewee.Database:
    database = make_database(url, pool_size)
    db.initialize(database)
    return database


def is_postgres() -> bool:
    return isinstance(db.obj, peewee.PostgresqlDatabase)


@contextlib.contextmanager
def connection():
    """Open a connection for a job or CLI command (reusing one already open) and close it after."""
    opened = db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        if opened and not db.in_transaction():
            db.close()


def on_commit(fn, *args, **kwargs) -> None:
    """Run ``fn(*args, **kwargs)`` once the current transaction commits; never if it rolls back.

    Outside a transaction it runs at once. Emits and enqueues go through this (as Zulip's
    ``send_event_on_commit``), so a client never hears of a row that is not there, and a job
    never starts before the data it reads is visible to its own connection.
    """
    if db.obj is None or db.is_closed() or not db.in_transaction():
        fn(*args, **kwargs)
        return
    db.after_commit(lambda: fn(*args, **kwargs))


def write_transaction():
    """A transaction that takes the write lock at once on SQLite (no upgrade deadlocks).

    On PostgreSQL it is a plain transaction: rows to serialise on are locked with FOR UPDATE.
    """
    if isinstance(db.obj, peewee.SqliteDatabase) and not db.in_transaction():
        return db.atomic("IMMEDIATE")
    return db.atomic()


def migration_runners():
    for package in MIGRATION_PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        directory = Path(module.__file__).parent / "migrations"
        if directory.is_dir():
            yield package, Runner(db.obj, str(directory), table_name=f"schema_migration_{package}")


def migrate() -> list[str]:
    """Apply every pending migration of every package, in order. Safe to run again."""
    applied: list[str] = []
    with connection():
        if is_postgres():  # several processes may start at once: one migrates, the others wait
            db.execute_sql("SELECT pg_advisory_lock(7226001)")
        try:
            for package, runner in migration_runners():
                applied.extend(f"{package}:{name}" for name in runner.up())
        finally:
            if is_postgres():
                db.execute_sql("SELECT pg_advisory_unlock(7226001)")
    return applied
