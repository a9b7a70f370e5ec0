"""Hot-path reads compiled once: no SQL building per request, and no planning on PostgreSQL.

A hot path (the conversation list, the history...) asks the same few questions on every request
with other values. Built with peewee each time, a question costs the building of its SQL text
(hundreds of nodes walked in Python) and, on PostgreSQL, the planning of it (the membership
subqueries take the planner longer than the executor). A :class:`Prepared` query is built once per
backend with placeholder values, its SQL text kept; on PostgreSQL each pooled connection PREPAREs
it once (a session's prepared statement survives rollbacks; it dies with the connection), and a
request EXECUTEs it with its values. On SQLite the kept text runs with the values (the sqlite3
module caches the compiled statement per connection by its text).

    PAGE = Prepared("conversation_page", lambda p: Conversation.select().where(
        (Conversation.school_class == p.class_id) & any_of(Conversation.id, p.ids)).limit(p.limit))
    rows = PAGE.run(class_id=3, ids=[1, 2], limit=51)       # model instances, as iterating the query

The builder gets an object whose attributes are the parameters: use them where the request's
values go, and :func:`any_of` for a list (one parameter whatever its length: ``= ANY(array)`` on
PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite). ``run`` answers what iterating
the built query would (models, ``.tuples()``, ``.dicts()``...), through peewee's own row wrappers.
Every statement still goes through the database's ``execute_sql`` (logs, counters, retries).

:class:`PreparedStatement` is the same for a fixed text written by hand (a write, say): its ``$n``
parameters declared with their types, PREPAREd once per PostgreSQL connection and EXECUTEd with
the values; on SQLite nobody uses it.

Not for a connection pooler in transaction mode (pgbouncer's SQL-level PREPARE limitation): the
production set-up connects each web process's pool to PostgreSQL directly (docs/deploy.md).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from typing import Callable

import peewee

from .db import db

_BASE = -7_331_000_000_000_000  # parameter stand-ins: integers no query compares with
_STEP = 7_919


class _Stand:
    """The builder's view of the parameters: ``p.user`` is the stand-in integer of ``user``."""

    def __init__(self):
        self._names: dict[str, int] = {}

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._names:
            self._names[name] = _BASE - _STEP * len(self._names)
        return self._names[name]


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError("a prepared statement's name is lower-case letters, digits and _")


def _postgres(database) -> bool:
    return isinstance(database, peewee.PostgresqlDatabase)


def any_of(field, param):
    """``field`` is one of the list ``param`` (a parameter of a :class:`Prepared` query)."""
    if _postgres(db.obj):
        return field == peewee.fn.ANY(param)
    return field.in_(peewee.SQL("(SELECT value FROM json_each(?))", [param]))


def among(field, ids):
    """``field`` is one of ``ids``: a parameter of a :class:`Prepared` query (``any_of``: one
    parameter for the whole list), or a list or subquery of ids (``IN``). For query pieces built
    both ways: prepared on their own, and inside a larger statement."""
    return any_of(field, ids) if isinstance(ids, int) else field.in_(ids)


class _Compiled:
    """One backend's form of a query: the built query (its row wrappers), the SQL, and for each
    placeholder either a parameter's name or a constant."""

    def __init__(self, query, sql: str, slots: list, postgres: bool, name: str):
        self.query, self.sql, self.slots, self.postgres = query, sql, slots, postgres
        self.names = list(dict.fromkeys(s[1] for s in slots if s[0] == "param"))
        if postgres:
            self.statement = f"ll_{name}_{hashlib.sha1(sql.encode()).hexdigest()[:10]}"
            self.execute = f"EXECUTE {self.statement}" + (f"({', '.join(['%s'] * len(self.names))})" if self.names else "")

    def prepare_sql(self, cursor) -> str:
        """``PREPARE name AS …``: each parameter a ``$n`` (the same one wherever it recurs), each
        constant written out (quoted by the driver)."""
        pieces = self.sql.split("%s")
        out = [pieces[0]]
        for slot, piece in zip(self.slots, pieces[1:]):
            if slot[0] == "param":
                out.append(f"${self.names.index(slot[1]) + 1}")
            else:
                out.append(cursor.mogrify("%s", (slot[1],)).decode())
            out.append(piece)
        return f"PREPARE {self.statement} AS " + "".join(out)


class Prepared:
    """A read built once per backend by ``build(p)`` (see the module's docstring)."""

    def __init__(self, name: str, build: Callable):
        _check_name(name)
        self.name, self.build = name, build
        self._compiled: dict[int, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self) -> _Compiled:
        database = db.obj
        compiled = self._compiled.get(id(database))
        if compiled is not None and compiled.database() is database:
            return compiled
        with self._lock:
            stand = _Stand()
            query = self.build(stand)
            sql, params = query.sql()
            # a field may have converted its stand-in (a text column compares with str(stand-in))
            by_value = {form: k for k, v in stand._names.items() for form in (v, str(v))}
            slots = [("param", by_value[p]) if isinstance(p, (int, str)) and p in by_value else ("const", p)
                     for p in params]
            postgres = _postgres(database)
            if postgres and ("%%" in sql or sql.count("%s") != len(params)):
                raise ValueError(f"{self.name}: SQL with a literal % cannot be prepared")
            compiled = _Compiled(query, sql, slots, postgres, self.name)
            compiled.database = weakref.ref(database)
            self._compiled[id(database)] = compiled
        return compiled

    def cursor(self, **values):
        """Execute with ``values`` (every parameter the builder used); the driver's cursor."""
        compiled = self._compile()
        missing = set(compiled.names) - values.keys()
        if missing:
            raise TypeError(f"{self.name}: no value for {', '.join(sorted(missing))}")
        if not compiled.postgres:
            args = [_sqlite_value(values[slot[1]]) if slot[0] == "param" else slot[1] for slot in compiled.slots]
            return db.execute_sql(compiled.sql, args)
        args = [list(v) if isinstance(v, (set, tuple)) else v for v in (values[n] for n in compiled.names)]
        try:
            return _execute_prepared(compiled.statement, compiled.prepare_sql, compiled.execute, args)
        except (peewee.OperationalError, peewee.InterfaceError):
            # as the pool reads a plain SELECT again (service.db.PooledPostgres), prepared anew there
            replace = getattr(db.obj, "replace_for_read_again", None)
            if replace is None or not replace():
                raise
            return _execute_prepared(compiled.statement, compiled.prepare_sql, compiled.execute, args)

    def run(self, **values) -> list:
        """The rows, as iterating the built query gives them (models, tuples, dicts...)."""
        compiled = self._compile()
        return list(compiled.query._get_cursor_wrapper(self.cursor(**values)))

    def raw(self, **values) -> list[tuple]:
        """The rows as the driver gives them, without peewee's per-column conversions: for columns
        both backends return alike (integers, text; a boolean is 0/1 on SQLite)."""
        return self.cursor(**values).fetchall()


class PreparedStatement:
    """A fixed PostgreSQL statement, ``$1``… with ``types`` (``"int, bigint, timestamp"``),
    PREPAREd once per connection: ``execute(*values)`` gives the driver's cursor."""

    def __init__(self, name: str, types: str, build: Callable[[], str]):
        _check_name(name)
        self.name, self.types, self.build = name, types, build
        self._ready: tuple[str, str, str] | None = None

    def _compile(self) -> tuple[str, str, str]:
        if self._ready is None:
            text = self.build()
            statement = f"ll_{self.name}_{hashlib.sha1((self.types + text).encode()).hexdigest()[:10]}"
            count = len([t for t in self.types.split(",") if t.strip()])
            execute = f"EXECUTE {statement}({', '.join(['%s'] * count)})"
            _texts[statement] = text
            self._ready = (statement, f"PREPARE {statement} ({self.types}) AS {text}", execute)
        return self._ready

    def execute(self, *values):
        statement, prepare, execute = self._compile()
        return _execute_prepared(statement, lambda _cursor: prepare, execute, values)


def _execute_prepared(statement: str, prepare_sql: Callable, execute: str, args):
    """``execute`` (``EXECUTE statement(…)``) on this thread's connection, which PREPAREs it first
    if it has not yet (``prepare_sql(cursor)`` gives the PREPARE text)."""
    connection = db.connection()
    ready = _prepared_on.setdefault(connection, set())
    if statement not in ready:
        with connection.cursor() as cursor:
            text = prepare_sql(cursor)
        db.execute_sql(text)
        ready.add(statement)
    return db.execute_sql(execute, args)


def source_of(sql: str) -> str:
    """The text behind ``EXECUTE ll_…(…)`` of a :class:`PreparedStatement` (else ``sql`` itself): for
    tests that look at what a statement does."""
    if sql.startswith("EXECUTE ll_"):
        return _texts.get(sql[len("EXECUTE "):].split("(", 1)[0], sql)
    return sql


_texts: dict[str, str] = {}  # a PreparedStatement's name → its text


def _sqlite_value(value):
    return json.dumps(list(value)) if isinstance(value, (list, tuple, set, frozenset)) else value


# the statements each PostgreSQL connection has prepared (gone with the connection)
_prepared_on: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
