"""Counting the SQL statements a piece of code sends: the query budgets of the hot paths.

``with count_queries() as q: client.get(...)`` then ``q.count`` (data statements: SELECT, INSERT,
UPDATE, DELETE, WITH, compound queries that open with a parenthesis included) and ``q.statements`` (their text, to print when a budget is exceeded).
It wraps the configured database's ``execute_sql`` (peewee's one funnel for every statement) for
the duration of the block, in this process and every thread of it; the statements still run on
the real database. Transaction control (BEGIN, COMMIT, SAVEPOINT...) is not counted.
"""
from __future__ import annotations

import contextlib
import threading

from service import db as dbmod

_DATA = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "EXECUTE")  # EXECUTE: a prepared one (service.prepared)


class QueryLog:
    def __init__(self):
        self.statements: list[str] = []
        self._lock = threading.Lock()

    def add(self, sql: str) -> None:
        if sql.lstrip(" \t\r\n(").upper().startswith(_DATA):  # "(SELECT ...) UNION ...": PostgreSQL's compounds
            with self._lock:
                self.statements.append(sql)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        with self._lock:
            self.statements.clear()

    def __str__(self) -> str:
        return f"{self.count} statements:\n" + "\n".join(f"  {s[:300]}" for s in self.statements)


@contextlib.contextmanager
def count_queries():
    database = dbmod.db.obj
    if database is None:
        raise RuntimeError("no database is configured")
    log = QueryLog()
    original = database.execute_sql  # bound method of the instance (or of its class)

    def execute_sql(sql, params=None):
        log.add(sql)
        return original(sql, params)

    database.execute_sql = execute_sql
    try:
        yield log
    finally:
        del database.execute_sql


def assert_budget(log: QueryLog, budget: int, what: str = "") -> None:
    """Fail with every statement listed when ``log`` holds more than ``budget`` statements."""
    assert log.count <= budget, f"{what or 'the request'} sent {log}\n(budget {budget})"
