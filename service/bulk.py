"""Bulk writes for the hot paths (a fan-out's inbox rows, a class's day, a gate batch, a meal log).

``insert_ignore``: ``INSERT … ON CONFLICT DO NOTHING``; ``upsert``: ``INSERT … ON CONFLICT (key)
DO UPDATE SET col = EXCLUDED.col``. PostgreSQL gets one statement per 1,000 rows with one array
parameter per column (``SELECT * FROM unnest(%s::bigint[], …)``), SQLite an ``executemany`` of one
prepared statement: peewee's ``insert_many`` builds the SQL value by value, which dominates a
batch of hundreds of rows. Values go through each field's ``db_value``. Call inside a transaction.

``upsert`` also takes SQL expressions for the update and a condition (a claim: take over a row
only when it is due), and ``update_many`` sets each row's own values on the rows its key names
(``UPDATE … FROM unnest(…)`` on PostgreSQL): a window of results in one statement.
"""
from __future__ import annotations

import peewee as pw

from service.db import db, is_postgres

_PG_TYPES = ((pw.BooleanField, "boolean"), (pw.BigIntegerField, "bigint"), (pw.BigAutoField, "bigint"),
             (pw.IntegerField, "integer"), (pw.DateTimeField, "timestamp"), (pw.DateField, "date"),
             (pw.CharField, "text"), (pw.TextField, "text"))


def _pg_type(field: pw.Field) -> str:
    if isinstance(field, pw.ForeignKeyField):
        field = field.rel_field
    for cls, name in _PG_TYPES:
        if isinstance(field, cls):
            return name
    raise TypeError(f"no array type for {field!r}")


def _write(model, columns: list[str], rows: list[tuple], conflict: str, batch: int = 1000,
           params: tuple = (), returning: str | None = None) -> list[tuple] | None:
    if not rows:
        return [] if returning and is_postgres() else None
    out: list[tuple] = []
    fields = [model._meta.fields[name] for name in columns]
    names = ", ".join(f'"{f.column_name}"' for f in fields)
    table = model._meta.table_name
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        if is_postgres():
            arrays = [[field.db_value(row[i]) for row in part] for i, field in enumerate(fields)]
            marks = ", ".join(f"%s::{_pg_type(f)}[]" for f in fields)
            cursor = db.execute_sql(f'INSERT INTO "{table}" ({names}) SELECT * FROM unnest({marks}) {conflict}'
                                    + (f" RETURNING {returning}" if returning else ""), arrays + list(params))
            if returning:
                out.extend(cursor.fetchall())
        else:
            marks = ", ".join("?" for _ in fields)
            values = [tuple(field.db_value(row[i]) for i, field in enumerate(fields)) + tuple(params) for row in part]
            db.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks}) {conflict}', values)
    return out if returning and is_postgres() else None


def insert_ignore(model, columns: list[str], rows: list[tuple]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order); rows that hit a unique key are skipped."""
    _write(model, columns, rows, "ON CONFLICT DO NOTHING")


def upsert(model, columns: list[str], rows: list[tuple], key: list[str], update: list[str] | dict[str, str],
           where: str | None = None, params: tuple = (), returning: str | None = None) -> list[tuple] | None:
    """Insert ``rows``; a row whose ``key`` exists updates the ``update`` columns instead.

    ``update`` as a dict maps columns to SQL expressions (``EXCLUDED."col"`` is the new row,
    ``"table"."col"`` the stored one); ``where`` (SQL, with ``db.param`` placeholders for
    ``params``) limits the update to the stored rows it matches: the others stay as they are.
    ``returning`` (SQL columns): on PostgreSQL, the rows inserted or updated, as tuples (the rows
    ``where`` left alone are not among them); None on SQLite (``executemany`` returns no rows).
    """
    fields = model._meta.fields
    target = ", ".join(f'"{fields[k].column_name}"' for k in key)
    if not isinstance(update, dict):
        update = {c: f'EXCLUDED."{fields[c].column_name}"' for c in update}
    sets = ", ".join(f'"{fields[c].column_name}" = {expr}' for c, expr in update.items())
    condition = f" WHERE {where}" if where else ""
    return _write(model, columns, rows, f"ON CONFLICT ({target}) DO UPDATE SET {sets}{condition}", params=params,
                  returning=returning)


def update_many(model, key: list[str], columns: list[str], rows: list[tuple], batch: int = 1000) -> None:
    """Set ``columns`` to each row's own values on the stored row its ``key`` names.

    ``rows``: tuples of the key values, then the column values. A row whose key matches nothing
    changes nothing (a key can hold a guard: an attempt's id *and* its claim token).
    """
    if not rows:
        return
    fields = [model._meta.fields[name] for name in key + columns]
    table = model._meta.table_name
    cols = [f'"{f.column_name}"' for f in fields]
    keys, values = cols[:len(key)], cols[len(key):]
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        if is_postgres():
            arrays = [[field.db_value(row[i]) for row in part] for i, field in enumerate(fields)]
            marks = ", ".join(f"%s::{_pg_type(f)}[]" for f in fields)
            sets = ", ".join(f"{c} = v.{c}" for c in values)
            match = " AND ".join(f't.{c} = v.{c}' for c in keys)
            db.execute_sql(f'UPDATE "{table}" AS t SET {sets} FROM unnest({marks}) AS v({", ".join(cols)}) '
                           f'WHERE {match}', arrays)
        else:
            sets = ", ".join(f"{c} = ?" for c in values)
            match = " AND ".join(f"{c} = ?" for c in keys)
            n = len(key)
            data = [tuple(f.db_value(row[i]) for i, f in enumerate(fields[n:], n))
                    + tuple(f.db_value(row[i]) for i, f in enumerate(fields[:n])) for row in part]
            db.cursor().executemany(f'UPDATE "{table}" SET {sets} WHERE {match}', data)
