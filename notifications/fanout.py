"""The set-wise fan-out: notices' inbox rows in SQL.

``store`` writes, for a set of notices (each a key, a comma-separated list of user ids and a
spec), one ``Notification`` row per (notice, recipient) (``ON CONFLICT DO NOTHING``: a chunk run
again adds nothing) with everything decided in the database: the recipient's language picks the
text, a switched-off category gives ``off``, quiet hours give ``held`` until they end (judged in
the school's timezone; ``urgent`` overrides both), an announcement's row names the recipient's
children in its audience. The notices travel as one JSON parameter (the CTE ``s``),
so an announcement's chunk of 20,000 guardians and a gate batch's hundreds of small notices
(``notify_each``) are the same one statement.

PostgreSQL: one statement (``WITH s, a, ins AS (INSERT … RETURNING) SELECT aggregates FROM ins``),
the quiet-hours end computed with ``AT TIME ZONE``. SQLite (the embedded default, one school): the
same ``INSERT … SELECT`` with the quiet-hours end from :func:`notifications.logic.quiet_until`
registered as an SQL function on every connection (:func:`register_sqlite_functions`, called by the
app factory through ``notifications.setup``; SQLite has no time zones), then a read-back: two
statements in one transaction.

No ``PushAttempt`` is written here: the push job's claim inserts each (notification, device)
attempt as it takes it (``notifications.push``). A row whose push job is lost has a due
``push_status`` and a device without any attempt, which is what the recovery sweep looks for
(``notifications.recovery.recover_pushes``). Queued attempts written here (until issue 14) cost
the chunk a second insert per device into a table of five indexes, and every claim then rewrote
them; and while 130,000 of them waited as ``retry`` rows, each push job's follow-up read them all.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from zoneinfo import ZoneInfo

import peewee

from service.db import db, is_postgres, write_transaction
from service.roster import queries as roster_queries

SQLITE_QUIET_UNTIL = "lienlac_quiet_until"
_LANGS = ("vi", "en")
_NOTICE_COLUMNS = (("k", "int"), ("ann", "bigint"), ("dkey", "text"), ("users", "text"), ("category", "text"),
                   ("title", "text"), ("body", "text"), ("title_vi", "text"), ("body_vi", "text"),
                   ("title_en", "text"), ("body_en", "text"), ("data", "text"), ("inbox", "boolean"),
                   ("push", "boolean"), ("urgent", "boolean"), ("silent", "boolean"), ("collapse_key", "text"))


@dataclasses.dataclass
class Stored:
    """What a call has stored (this run's rows, or all the notices' rows on a re-run)."""

    count: int
    pending: list[int]  # notification ids whose push is due now
    held_until: list[dt.datetime]  # distinct ends of quiet hours of held pushes
    inbox: list[tuple[int, int]]  # (user id, notification id) of the inbox rows


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

    database.register_function(held_until, SQLITE_QUIET_UNTIL, 4, deterministic=True)


def _held_until_sql(p: _Params, now: dt.datetime, timezone: str) -> str:
    """The naive UTC end of the recipient's quiet hours if ``now`` is inside them, else NULL."""
    if not is_postgres():
        return (f"CASE WHEN pr.quiet_start IS NOT NULL AND pr.quiet_end IS NOT NULL THEN {SQLITE_QUIET_UNTIL}("
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


def _status_sql(p: _Params, held: str) -> tuple[str, str]:
    """(push_status, push_after) expressions over the notice ``s`` and the preference ``pr``."""
    off = f"(',' || COALESCE(pr.disabled, '') || ',') LIKE ({p('%,')} || s.category || {p(',%')})"
    status = (f"CASE WHEN NOT s.push THEN 'none' WHEN s.urgent THEN 'pending' WHEN {off} THEN 'off' "
              f"WHEN {held} IS NOT NULL THEN 'held' ELSE 'pending' END")
    after = f"CASE WHEN NOT s.push OR s.urgent OR {off} THEN NULL ELSE {held} END"
    return status, after


def _text_sql(column: str) -> str:
    """The notice's title or body in the recipient's language (the default text without one)."""
    cases = " ".join(f"WHEN '{lang}' THEN COALESCE(s.{column}_{lang}, s.{column})" for lang in _LANGS)
    return f"CASE COALESCE(pr.language, 'vi') {cases} ELSE s.{column} END"


def _data_sql(p: _Params, spec: dict, students: dict | None) -> tuple[str, str]:
    """(the data column's expression, the extra FROM clause naming the children)."""
    if students is None:
        return "s.data", ""
    base = json.dumps(spec["data"], ensure_ascii=False)
    prefix = base[:-1] + (", " if spec["data"] else "")
    kids_sql = roster_queries.audience_children_sql(p, is_postgres(), students["school_id"], students["grades"],
                                                    students["class_ids"], students["guardian_ids"])
    # every child of an explicitly named guardian: needed only when the audience names guardians (a
    # second json_agg over every child of the chunk otherwise, ~15 % of an all-school chunk's statement)
    explicit = bool(students["guardian_ids"])
    if is_postgres():
        item = "json_build_object('id', k.student_id::text, 'name', k.name)"
        agg = f"json_agg({item} ORDER BY k.student_id)"
        everyone = f"{agg}::text AS everyone, bool_or(k.explicit)" if explicit else "NULL::text AS everyone, false"
        kids = (f"SELECT k.guardian_id AS user_id, ({agg} FILTER (WHERE k.named))::text AS named, "
                f"{everyone} AS explicit FROM ({kids_sql}) k GROUP BY k.guardian_id")
    else:
        item = "json_object('id', CAST(k.student_id AS TEXT), 'name', k.name)"
        everyone = f"json_group_array({item}) AS everyone, max(k.explicit)" if explicit else "NULL AS everyone, 0"
        kids = (f"SELECT k.guardian_id AS user_id, json_group_array({item}) FILTER (WHERE k.named) AS named, "
                f"{everyone} AS explicit FROM ({kids_sql} ORDER BY 1, 2) k GROUP BY k.guardian_id")
    named = "CASE WHEN kids.named IS NOT NULL AND kids.named <> '[]' THEN kids.named END"
    chosen = f"COALESCE({named}, CASE WHEN kids.explicit THEN kids.everyone END, '[]')"
    head = p(prefix + '"students": ')
    data = f"CASE WHEN kids.user_id IS NULL THEN s.data ELSE {head} || {chosen} || '}}' END"
    return data, f" LEFT JOIN ({kids}) kids ON kids.user_id = a.user_id"


def _notice_rows(notices: list, by_announcement: bool) -> str:
    rows = []
    for k, (key, users_csv, spec) in enumerate(notices):
        texts = spec.get("texts") or {}
        row = {"k": k, "ann": key if by_announcement else None, "dkey": None if by_announcement else key,
               "users": users_csv, "category": spec["category"], "title": spec["title"][:300], "body": spec["body"],
               "data": json.dumps(spec["data"], ensure_ascii=False), "inbox": spec["inbox"], "push": spec["push"],
               "urgent": spec["urgent"], "silent": spec["silent"], "collapse_key": spec["collapse_key"]}
        for lang in _LANGS:
            title, body = texts.get(lang) or (None, None)
            row[f"title_{lang}"], row[f"body_{lang}"] = (title[:300] if title is not None else None), body
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False)


def _sources_sql(p: _Params, notices: list, by_announcement: bool) -> str:
    """``WITH s (the notices), a (k, user_id: each notice's distinct recipients)``."""
    rows = p(_notice_rows(notices, by_announcement))
    if is_postgres():
        columns = ", ".join(f"{name} {kind}" for name, kind in _NOTICE_COLUMNS)
        s = f"SELECT * FROM json_to_recordset({rows}::json) AS s({columns})"
        a = "SELECT DISTINCT s.k, CAST(u AS bigint) AS user_id FROM s, unnest(string_to_array(s.users, ',')) u"
    else:
        s = "SELECT " + ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name, _ in _NOTICE_COLUMNS) + \
            f" FROM json_each({rows})"
        a = "SELECT DISTINCT s.k, CAST(u.value AS INTEGER) AS user_id FROM s, json_each('[' || s.users || ']') u"
    return f"WITH s AS MATERIALIZED ({s}), a AS ({a})"


def store(notices: list, *, by_announcement: bool, students: dict | None, timezone: str,
          now: dt.datetime) -> Stored:
    """Store notices (see the module docstring) in one statement (PostgreSQL) or two (SQLite).

    ``notices``: ``[(key, users_csv, spec)]`` with ``key`` the announcement id (``by_announcement``)
    or the notice's dedupe key, ``users_csv`` "1,2,3"; ``students``: an announcement's audience
    ``{school_id, grades, class_ids, guardian_ids}`` to name children (one notice only)."""
    if students is not None and len(notices) != 1:
        raise ValueError("children are named for one announcement at a time")
    postgres = is_postgres()
    p = _Params(postgres)
    sources = _sources_sql(p, notices, by_announcement)
    status, after = _status_sql(p, _held_until_sql(p, now, timezone))
    data, kids_join = _data_sql(p, notices[0][2], students)
    columns = ("user_id, category, title, body, data, announcement_id, dedupe_key, in_inbox, urgent, silent, "
               "collapse_key, push_status, push_after, created_at")
    values = (f"a.user_id, s.category, {_text_sql('title')}, {_text_sql('body')}, {data}, s.ann, s.dkey, s.inbox, "
              f"s.urgent, s.silent, s.collapse_key, {status}, {after}, {p(now)}")
    source = f"FROM a JOIN s ON s.k = a.k LEFT JOIN preference pr ON pr.user_id = a.user_id{kids_join}"
    if postgres:
        sql = (f"{sources}, ins AS (INSERT INTO notification ({columns}) SELECT {values} {source} "
               f"ON CONFLICT DO NOTHING RETURNING id, user_id, in_inbox, push_status, push_after)"
               f" SELECT count(*), array_agg(id ORDER BY id) FILTER (WHERE push_status = 'pending'), "
               f"array_agg(DISTINCT push_after) FILTER (WHERE push_status = 'held'), "
               f"array_agg(user_id ORDER BY id) FILTER (WHERE in_inbox), array_agg(id ORDER BY id) FILTER (WHERE in_inbox), "
               f"(SELECT count(*) FROM a) FROM ins")
        with write_transaction():
            count, pending, held_until, users, ids, expected = db.execute_sql(sql, p.values).fetchone()
        if count == expected:
            return Stored(count, pending or [], held_until or [], list(zip(users or [], ids or [])))
        return _read_back(sources, p, by_announcement)  # a re-run: report every row of the notices
    with write_transaction():
        db.execute_sql(f"{sources} INSERT INTO notification ({columns}) SELECT {values} {source} WHERE true "
                       f"ON CONFLICT DO NOTHING", p.values)
    return _read_back(sources, p, by_announcement)


def _read_back(sources: str, p: _Params, by_announcement: bool) -> Stored:
    match = "n.announcement_id = s.ann" if by_announcement else "n.dedupe_key = s.dkey"
    rows = db.execute_sql(f"{sources} SELECT n.id, n.user_id, n.in_inbox, n.push_status, n.push_after "
                          f"FROM a JOIN s ON s.k = a.k JOIN notification n ON {match} AND n.user_id = a.user_id "
                          f"ORDER BY n.id", p.values).fetchall()
    parse = (lambda v: v) if is_postgres() else (lambda v: dt.datetime.fromisoformat(v) if isinstance(v, str) else v)
    return Stored(len(rows), [r[0] for r in rows if r[3] == "pending"],
                  sorted({parse(r[4]) for r in rows if r[3] == "held" and r[4]}),
                  [(r[1], r[0]) for r in rows if r[2]])
