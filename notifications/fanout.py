"""The set-wise fan-out: one chunk of recipients' inbox rows (and their devices' push attempts) in SQL.

``store_chunk`` writes, for a comma-separated list of user ids, one ``Notification`` row each
(``ON CONFLICT DO NOTHING``: a chunk run again adds nothing) with everything decided in the
database: the recipient's language picks the text, a switched-off category gives ``off``, quiet
hours give ``held`` until they end (judged in the school's timezone; ``urgent`` overrides both),
an announcement's row names the recipient's children in its audience; and, when push is on, one
queued ``PushAttempt`` per (notification, device) of a push that is due or held.

PostgreSQL: one statement (``WITH ins AS (INSERT … RETURNING), att AS (INSERT …) SELECT
aggregates FROM ins``), the quiet-hours end computed with ``AT TIME ZONE``. SQLite (the embedded
default, one school): the same ``INSERT … SELECT`` with the quiet-hours end from
:func:`notifications.logic.quiet_until` registered as an SQL function on every connection
(:func:`register_sqlite_functions`, called by the app factory through ``notifications.setup``;
SQLite has no time zones),
then the attempts and a read-back: three statements in one transaction.

A queued attempt is ``status='retry', tries=0, claim=''`` with ``next_at`` = when it was queued, so
the sender's claim takes it like a due retry; whether the push is due is the notification's
``push_status``/``push_after``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from zoneinfo import ZoneInfo

import peewee

from service.db import db, is_postgres, utcnow, write_transaction
from service.roster import queries as roster_queries

QUEUED = "retry"  # a queued attempt looks like a due retry to the sender's claim (tries 0)
_LANGS = ("vi", "en")


@dataclasses.dataclass
class Stored:
    """What a chunk has stored (this run's rows, or all the chunk's rows on a re-run)."""

    count: int
    pending: list[int]  # notification ids whose push is due now
    held_until: list[dt.datetime]  # distinct ends of quiet hours of held pushes
    inbox: dict[int, int]  # user id -> notification id (inbox rows only)


class _Params:
    """Named placeholders in the backend's style (%(p0)s for psycopg2, :p0 for sqlite3)."""

    def __init__(self, postgres: bool):
        self.postgres, self.values = postgres, {}

    def __call__(self, value) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s" if self.postgres else f":{name}"


def register_sqlite_functions(database, quiet_until) -> None:
    """Register ``lienlac_quiet_until(start, end, now, timezone)`` on a SQLite database.

    peewee loads a registered function into every connection it opens afterwards, but into an
    already open one only if it is the calling thread's; so this runs once, when the app factory
    has just made the database, before any other thread connects (a lazy registration at the
    first fan-out left other threads' open connections without it: "no such function", and the
    notice of the job on that connection was lost)."""
    if not isinstance(database, peewee.SqliteDatabase):
        return

    def held_until(start, end, now, timezone):
        until = quiet_until((start, end), dt.datetime.fromisoformat(now), timezone) if start and end else None
        return until.isoformat(" ") if until else None

    database.register_function(held_until, "lienlac_quiet_until", 4, deterministic=True)


def _held_until_sql(p: _Params, now: dt.datetime, timezone: str) -> str:
    """The naive UTC end of the recipient's quiet hours if ``now`` is inside them, else NULL."""
    if not is_postgres():
        return (f"CASE WHEN pr.quiet_start IS NOT NULL AND pr.quiet_end IS NOT NULL THEN lienlac_quiet_until("
                f"pr.quiet_start, pr.quiet_end, {p(now.isoformat(' '))}, {p(timezone)}) END")
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone))
    t, d, tz = p(local.time().replace(tzinfo=None)), p(local.date()), p(timezone)
    qs, qe = "pr.quiet_start::time", "pr.quiet_end::time"

    def at(day: str) -> str:
        return f"((({day}) + {qe}) AT TIME ZONE {tz}) AT TIME ZONE 'UTC'"

    return (f"CASE WHEN pr.quiet_start IS NULL OR pr.quiet_end IS NULL OR pr.quiet_start = pr.quiet_end THEN NULL"
            f" WHEN {qs} < {qe} THEN CASE WHEN {t}::time >= {qs} AND {t}::time < {qe} THEN {at(d + '::date')} END"
            f" WHEN {t}::time < {qe} THEN {at(d + '::date')}"
            f" WHEN {t}::time >= {qs} THEN {at(d + '::date + 1')} END")


def _status_sql(p: _Params, spec: dict, held: str) -> tuple[str, str]:
    """(push_status, push_after) expressions."""
    if not spec["push"]:
        return "'none'", "NULL"
    if spec["urgent"]:
        return "'pending'", "NULL"
    off = f"(',' || COALESCE(pr.disabled, '') || ',') LIKE {p('%,' + spec['category'] + ',%')}"
    status = f"CASE WHEN {off} THEN 'off' WHEN {held} IS NOT NULL THEN 'held' ELSE 'pending' END"
    after = f"CASE WHEN {off} THEN NULL ELSE {held} END"
    return status, after


def _text_sql(p: _Params, spec: dict, index: int) -> str:
    default = (spec["title"], spec["body"])[index]
    texts = spec.get("texts") or {}
    cases = " ".join(f"WHEN {p(lang)} THEN {p(texts[lang][index][:300] if index == 0 else texts[lang][index])}"
                     for lang in _LANGS if lang in texts)
    default = default[:300] if index == 0 else default
    if not cases:
        return p(default)
    return f"CASE COALESCE(pr.language, 'vi') {cases} ELSE {p(default)} END"


def _data_sql(p: _Params, spec: dict, students: dict | None) -> tuple[str, str]:
    """(the data column's expression, the extra FROM clause naming the children)."""
    base = json.dumps(spec["data"], ensure_ascii=False)
    if students is None:
        return p(base), ""
    prefix = base[:-1] + (", " if spec["data"] else "")
    kids_sql = roster_queries.audience_children_sql(p, is_postgres(), students["school_id"], students["grades"],
                                                    students["class_ids"], students["guardian_ids"])
    if is_postgres():
        item = "json_build_object('id', k.student_id::text, 'name', k.name)"
        agg = f"json_agg({item} ORDER BY k.student_id)"
        kids = (f"SELECT k.guardian_id AS user_id, ({agg} FILTER (WHERE k.named))::text AS named, "
                f"{agg}::text AS everyone, bool_or(k.explicit) AS explicit FROM ({kids_sql}) k GROUP BY k.guardian_id")
    else:
        item = "json_object('id', CAST(k.student_id AS TEXT), 'name', k.name)"
        kids = (f"SELECT k.guardian_id AS user_id, json_group_array({item}) FILTER (WHERE k.named) AS named, "
                f"json_group_array({item}) AS everyone, max(k.explicit) AS explicit "
                f"FROM ({kids_sql} ORDER BY 1, 2) k GROUP BY k.guardian_id")
    named = "CASE WHEN kids.named IS NOT NULL AND kids.named <> '[]' THEN kids.named END"
    chosen = f"COALESCE({named}, CASE WHEN kids.explicit THEN kids.everyone END, '[]')"
    head = p(prefix + '"students": ')
    data = f"CASE WHEN kids.user_id IS NULL THEN {p(base)} ELSE {head} || {chosen} || '}}' END"
    return data, f" LEFT JOIN ({kids}) kids ON kids.user_id = a.user_id"


def store_chunk(users_csv: str, spec: dict, *, announcement_id: int | None, dedupe_key: str | None,
                students: dict | None, timezone: str, now: dt.datetime, attempts: bool) -> Stored:
    """Store one chunk (see the module docstring). ``users_csv``: "1,2,3"; ``students``: the
    announcement's audience ``{school_id, grades, class_ids, guardian_ids}`` to name children."""
    postgres = is_postgres()
    p = _Params(postgres)
    aud = (f"SELECT DISTINCT CAST(u AS bigint) AS user_id FROM unnest(string_to_array({p(users_csv)}, ',')) u"
           if postgres else f"SELECT DISTINCT CAST(value AS INTEGER) AS user_id FROM json_each('[' || {p(users_csv)} || ']')")
    status, after = _status_sql(p, spec, _held_until_sql(p, now, timezone))
    data, kids_join = _data_sql(p, spec, students)
    created = p(now)
    columns = ("user_id, category, title, body, data, announcement_id, dedupe_key, in_inbox, urgent, silent, "
               "collapse_key, push_status, push_after, created_at")
    values = (f"a.user_id, {p(spec['category'])}, {_text_sql(p, spec, 0)}, {_text_sql(p, spec, 1)}, {data}, "
              f"{p(announcement_id)}, {p(dedupe_key)}, {p(spec['inbox'])}, {p(spec['urgent'])}, {p(spec['silent'])}, "
              f"{p(spec['collapse_key'])}")
    queued_at = min(now, utcnow())
    key = "announcement_id" if announcement_id is not None else "dedupe_key"
    key_value = announcement_id if announcement_id is not None else dedupe_key
    with_attempts = attempts and spec["push"]
    if postgres:
        attempt = (f", att AS (INSERT INTO push_attempt (notification_id, device_id, announcement_id, status, claim, "
                   f"tries, next_at, updated_at) SELECT ins.id, d.id, {p(announcement_id)}, '{QUEUED}', '', 0, "
                   f"{p(queued_at)}, {p(queued_at)} FROM ins JOIN device d ON d.user_id = ins.user_id "
                   f"WHERE ins.push_status IN ('pending', 'held') ON CONFLICT DO NOTHING)") if with_attempts else ""
        sql = (f"WITH a AS ({aud}), ins AS (INSERT INTO notification ({columns}) "
               f"SELECT {values}, {status}, {after}, {created} FROM a LEFT JOIN preference pr ON pr.user_id = a.user_id{kids_join} "
               f"ON CONFLICT DO NOTHING RETURNING id, user_id, push_status, push_after){attempt} "
               f"SELECT count(*), array_agg(id ORDER BY id) FILTER (WHERE push_status = 'pending'), "
               f"array_agg(DISTINCT push_after) FILTER (WHERE push_status = 'held'), "
               f"array_agg(user_id ORDER BY user_id), array_agg(id ORDER BY user_id), "
               f"(SELECT count(*) FROM a) FROM ins")
        with write_transaction():
            count, pending, held_until, users, ids, expected = db.execute_sql(sql, p.values).fetchone()
        if count == expected:
            return Stored(count, pending or [], held_until or [],
                          dict(zip(users, ids)) if spec["inbox"] else {})
        return _read_back(users_csv, key, key_value, spec)  # a re-run: report every row of the chunk
    sql = (f"WITH a AS ({aud}) INSERT INTO notification ({columns}) SELECT {values}, {status}, {after}, {created} "
           f"FROM a LEFT JOIN preference pr ON pr.user_id = a.user_id{kids_join} WHERE true "
           f"ON CONFLICT DO NOTHING")
    with write_transaction():
        db.execute_sql(sql, p.values)
        if with_attempts:
            q = _Params(False)
            db.execute_sql(
                f"INSERT INTO push_attempt (notification_id, device_id, announcement_id, status, claim, tries, next_at, "
                f"updated_at) SELECT n.id, d.id, n.announcement_id, '{QUEUED}', '', 0, {q(queued_at)}, {q(queued_at)} "
                f"FROM notification n JOIN device d ON d.user_id = n.user_id WHERE n.{key} = {q(key_value)} "
                f"AND n.user_id IN (SELECT value FROM json_each('[' || {q(users_csv)} || ']')) "
                f"AND n.push_status IN ('pending', 'held') ON CONFLICT DO NOTHING", q.values)
    return _read_back(users_csv, key, key_value, spec)


def _read_back(users_csv: str, key: str, key_value, spec: dict) -> Stored:
    q = _Params(is_postgres())
    users = (f"SELECT CAST(u AS bigint) FROM unnest(string_to_array({q(users_csv)}, ',')) u" if is_postgres()
             else f"SELECT value FROM json_each('[' || {q(users_csv)} || ']')")
    rows = db.execute_sql(f"SELECT id, user_id, push_status, push_after FROM notification "
                          f"WHERE {key} = {q(key_value)} AND user_id IN ({users}) ORDER BY id", q.values).fetchall()
    parse = (lambda v: v) if is_postgres() else (lambda v: dt.datetime.fromisoformat(v) if isinstance(v, str) else v)
    return Stored(len(rows), [r[0] for r in rows if r[2] == "pending"],
                  sorted({parse(r[3]) for r in rows if r[2] == "held" and r[3]}),
                  {r[1]: r[0] for r in rows} if spec["inbox"] else {})
