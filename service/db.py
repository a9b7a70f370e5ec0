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
import logging
import re
import time
from pathlib import Path

import peewee
from playhouse.db_url import parse as parse_db_url
from playhouse.migrations import Runner
from playhouse.pool import PooledPostgresqlDatabase

db = peewee.DatabaseProxy()
log = logging.getLogger("lienlac.db")

MIGRATION_PACKAGES = ("service", "notifications", "messaging", "contactbook", "nutrition", "schedules")


def utcnow() -> dt.datetime:
    """Naive UTC timestamp: every stored time is UTC."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False


_READ = re.compile(r"\s*SELECT\b", re.IGNORECASE)


class PooledPostgres(PooledPostgresqlDatabase):
    """The pool, surviving connections that PostgreSQL ended (``pg_terminate_backend``, a restart,
    a failover, a dropped network path).

    An idle pooled connection that died is found at check-out (the pool's ``SELECT 1``) and
    replaced. One that dies while a request or job holds it fails the next statement: a
    ``SELECT`` outside a transaction is then read again, once, on a fresh connection (nothing was
    written, nothing is lost; not while the connection holds a session-level advisory lock).
    Inside a transaction, or a write, the error stands (the transaction is gone, and a write may
    or may not have committed): the web answers 503 with ``Retry-After`` (``service.errors``) and
    the client sends it again. Either way the dead connection leaves the pool (``release``)."""

    def execute_sql(self, sql, params=None):
        try:
            cursor = super().execute_sql(sql, params)
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            exc.connection_lost = self.connection_lost()  # the error handler's answer, even once forgotten
            if not _READ.match(sql) or "pg_advisory" in sql or not self.replace_for_read_again():
                raise
            return super().execute_sql(sql, params)
        if "pg_advisory_lock(" in sql:  # a session lock: its holder must not move to another connection
            self._state.pinned = id(self._state.conn)
        elif "pg_advisory_unlock(" in sql:
            self._state.pinned = None
        return cursor

    # A connection back in the pool less than this long ago is handed out again without the pool's
    # check-out ping (a SELECT 1 round trip per request and socket event): if PostgreSQL ended it in
    # that moment, its first statement fails and is read again or answered 503 as above.
    PING_IDLE_SECONDS = 2.0

    def __init__(self, *args, **kwargs):
        self._released_at: dict[int, float] = {}  # id(connection) → when it went back to the pool
        super().__init__(*args, **kwargs)

    def _close(self, conn, close_conn=False):
        if close_conn:
            self._released_at.pop(id(conn), None)
        else:
            self._released_at[id(conn)] = time.monotonic()
        return super()._close(conn, close_conn)

    def _is_closed(self, conn):
        if conn.closed:
            self._released_at.pop(id(conn), None)
            return True
        released = self._released_at.get(id(conn))
        if (released is not None and time.monotonic() - released < self.PING_IDLE_SECONDS
                and self._adapter.txn_status(conn) == self._adapter.txn_idle):
            return False
        return super()._is_closed(conn)

    def replace_for_read_again(self) -> bool:
        """After a read failed: if PostgreSQL ended the connection, outside a transaction and a
        session lock, put a new connection in its place and say the read may be made once more."""
        if not self.connection_lost() or self.in_transaction() or self._pinned():
            return False
        log.warning("database connection lost: reading again on a new connection")
        self.discard()
        self.connect()
        return True

    def _pinned(self) -> bool:
        return getattr(self._state, "pinned", None) == id(self._state.conn)

    def connection_lost(self) -> bool:
        """This thread's connection is open on our side but dead (psycopg2's ``closed`` is set)."""
        conn = self._state.conn
        return conn is not None and bool(getattr(conn, "closed", 0))

    def discard(self) -> None:
        """Forget this thread's connection: out of the pool, closed, and the thread's state reset
        (a transaction it held died with it)."""
        conn = self._state.conn
        self._state.reset()
        if conn is not None:
            self._close(conn, close_conn=True)


def connection_lost(exc: BaseException | None = None) -> bool:
    """The current connection was ended from the other side (PostgreSQL only), or ``exc`` (or an
    error it arose from) was raised by a statement on a connection found dead then."""
    while exc is not None:
        if getattr(exc, "connection_lost", False):
            return True
        exc = exc.__cause__ or exc.__context__
    return isinstance(db.obj, PooledPostgres) and db.obj.connection_lost()


def release() -> None:
    """End of a request or job: the connection back to the pool, or out of it if it died."""
    if db.obj is None or db.is_closed():
        return
    if connection_lost():
        db.obj.discard()
    elif not db.in_transaction():
        db.close()


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
        # Every statement Lienlac PREPAREs (service.prepared) looks rows up by keys: the generic plan
        # is the one PostgreSQL settles on after five executions anyway. Forcing it from the first
        # spares each new pooled connection five custom plans per statement (measured: 5-12 ms per
        # execution of the conversation list's statement before it settles, 2.6 ms after). Plain
        # (unprepared) statements are planned per execution as always.
        params["options"] = " ".join(filter(None, [params.get("options"), "-c plan_cache_mode=force_generic_plan"]))
        return PooledPostgres(
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
        if opened:
            release()


@contextlib.contextmanager
def connection_if_used():
    """For a block that may not touch the database at all (a socket event whose answers come from
    caches and gathered batches): a connection is checked out only by its first statement, and
    given back at the end of the block if the block took one."""
    was_closed = db.is_closed()
    try:
        yield db
    finally:
        if was_closed:
            release()


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


@contextlib.contextmanager
def one_snapshot():
    """Several reads that see the same data, whatever commits meanwhile: a REPEATABLE READ
    transaction on PostgreSQL (a SQLite transaction is one snapshot already)."""
    with db.atomic():
        if is_postgres():
            db.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


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
