"""The conversation list built by PostgreSQL: ``GET /conversations`` as JSON text in one statement.

The list is the heaviest hot path: a teacher's page holds ~43 conversations, three of them class
channels of 40-45 members listed in full. Built in Python (``conversations.list_conversations``,
then ``ConversationPage``'s dump and orjson) it cost the web process most of its CPU per request:
five statements, thousands of rows turned into tuples, models and dicts, then into JSON. Here one
prepared statement (``service.prepared``) answers the page's items as the JSON text the Python path
would encode, participants and last message (with its attachments) included, plus what the cursor
and the class channels need; the web process only wraps the bytes.

The same rules, the same pieces: the page, its membership and its order are
``conversations.page_query`` (as a CTE), direct members ``policy.direct_members_named_query``,
class members ``roster.queries.class_member_rows_query``, missing channels
``conversations.missing_channels_query``. Only the formatting is written here, in SQL:
``ConversationOut``'s fields in their order, ids as strings, times as ``UtcDateTime`` writes them
(``…:SS`` or ``…:SS.mmm``, then ``Z``), strings through ``to_json`` (which escapes as orjson does).
The tests run every list request both ways and compare the bytes (``LIENLAC_CHECK_FAST_DUMP``,
``messaging.api``), so the two cannot drift apart.

PostgreSQL only, and only while attachments are served by the API itself (a storage whose
``url()`` is None, as ``LocalStorage``): elsewhere ``page_json`` answers None and the caller takes
the Python path.
"""
from __future__ import annotations

import peewee as pw

from service.db import db, is_postgres
from service.prepared import Prepared
from service.roster import queries as roster_queries

from .. import policy
from .. import storage as storage_mod
from .conversations import ensure_class_conversations, missing_channels_query, page_cursor, page_position, page_query


def _ts(column: str) -> str:
    """A naive UTC timestamp as ``UtcDateTime`` writes it (JSON, null when NULL)."""
    return (f"""COALESCE('"' || to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN {column} = """
            f"""date_trunc('second', {column}) THEN '' ELSE to_char({column}, '.MS') END || 'Z"', 'null')""")


def _id(column: str) -> str:
    """An id as ``Id`` writes it: a string (null when NULL)."""
    return f"""COALESCE('"' || {column} || '"', 'null')"""


def _str(expr: str) -> str:
    return f"COALESCE(to_json(({expr})::text)::text, 'null')"


def _bool(expr: str) -> str:
    return f"CASE WHEN {expr} THEN 'true' ELSE 'false' END"


_PERSON = """'{"id":' || %s || ',"name":' || %s || ',"role":"' || %s || '"}'"""

_ATTACHMENTS = (
    """COALESCE((SELECT string_agg('{"id":' || """ + _id("a.id") + """ || ',"content_type":' || """
    + _str("a.content_type") + """ || ',"size":' || a.size || ',"filename":' || """ + _str("a.filename")
    + """ || ',"url":"/api/v1/attachments/' || a.id || '"}', ',' ORDER BY a.id) FROM message_attachment a """
    """WHERE a.message_id = page.m_id AND a.deleted_at IS NULL), '')""")

_LAST_MESSAGE = (
    """CASE WHEN page.m_id IS NULL THEN 'null' ELSE '{"id":' || """ + _id("page.m_id")
    + """ || ',"conversation_id":' || """ + _id("page.id") + """ || ',"sender_id":' || """ + _id("page.m_sender")
    + """ || ',"body":' || CASE WHEN page.m_deleted_at IS NULL THEN """ + _str("page.m_body") + """ ELSE '""' END"""
    + """ || ',"client_id":' || """ + _str("page.m_client_id") + """ || ',"created_at":' || """
    + _ts("page.m_created_at") + """ || ',"seq":' || COALESCE(page.m_seq::text, 'null') || ',"edited_at":' || """
    + _ts("page.m_edited_at") + """ || ',"deleted":' || """ + _bool("page.m_deleted_at IS NOT NULL")
    + """ || ',"attachments":[' || CASE WHEN page.m_deleted_at IS NULL THEN """ + _ATTACHMENTS
    + """ ELSE '' END || '],"notice":null}' END""")

# each direct conversation's members (``dm``) and each class's (``cm``), aggregated once: the
# participants' JSON, and for a direct title the other members' names (else the caller's own)
_DIRECT = (
    """(SELECT dm.conversation_id, string_agg(""" + _PERSON % (
        _id("dm.user_id"), _str("dm.name"), "CASE WHEN dm.is_teacher THEN 'teacher' ELSE 'guardian' END")
    + """, ',' ORDER BY dm.pid) AS people, string_agg(dm.name, ', ' ORDER BY dm.pid) FILTER (WHERE dm.user_id """
    """<> %s) AS others, (array_agg(dm.name ORDER BY dm.pid) FILTER (WHERE dm.user_id = %s))[1] AS own """
    """FROM dm GROUP BY dm.conversation_id) AS d ON d.conversation_id = page.id""")
_CLASS = (
    """(SELECT cm.class_id, string_agg(""" + _PERSON % (
        _id("cm.user_id"), _str("cm.name"), "CASE WHEN cm.ord[1] < 2 THEN 'teacher' ELSE 'guardian' END")
    + """, ',' ORDER BY cm.ord, cm.user_id) AS people FROM cm GROUP BY cm.class_id) AS c """
    """ON c.class_id = page.school_class_id""")

_ITEM = (
    """'{"id":' || """ + _id("page.id") + """ || ',"kind":' || """ + _str("page.kind")
    + """ || ',"title":' || """ + _str("CASE WHEN page.kind = 'class' THEN page.title ELSE COALESCE(d.others, "
                                      "d.own, '') || ' · ' || COALESCE(page.student_name, '') END")
    + """ || ',"student_id":' || """ + _id("page.student_id") + """ || ',"class_id":' || """
    + _id("page.school_class_id") + """ || ',"announcement_only":' || """ + _bool("page.announcement_only")
    + """ || ',"participants":[' || COALESCE(CASE WHEN page.kind = 'class' THEN c.people ELSE d.people END, '')"""
    + """ || '],"last_message":' || """ + _LAST_MESSAGE
    + """ || ',"unread_count":' || COALESCE(page.unread_n, 0) || ',"last_seq":' || page.last_seq"""
    + """ || ',"updated_at":' || """ + _ts("page.updated_at") + """ || ',"created_at":' || """
    + _ts("page.created_at") + " || '}'")

# one row: the items shown (JSON text, comma-separated), how many rows the page query found (one more
# than shown when a next page exists), the last shown row's (updated_at, id), the missing channels
_ANSWER = (
    """string_agg(""" + _ITEM + """, ',' ORDER BY page.rn) FILTER (WHERE page.rn <= %s) AS items, """
    """count(*) AS found, max(page.updated_at) FILTER (WHERE page.rn = %s) AS last_at, """
    """max(page.id) FILTER (WHERE page.rn = %s) AS last_id, ARRAY(SELECT missing.id FROM missing) AS missing """
    """FROM (SELECT page_rows.*, row_number() OVER (ORDER BY page_rows.updated_at DESC, page_rows.id DESC) AS rn """
    """FROM page_rows) AS page LEFT JOIN """ + _DIRECT + " LEFT JOIN " + _CLASS)


def _statement(p, after_cursor: bool):
    page = page_query(p, after_cursor, last_prefix="m_").cte("page_rows")
    direct = page.select(page.c.id).where(page.c.kind == "direct")
    dm = policy.direct_members_named_query(direct).cte("dm", materialized=True)
    classes = page.select(page.c.school_class_id).where(page.c.kind == "class")
    rows = roster_queries.class_member_rows_query(classes).cte("cm_rows")
    cm = (rows.select_from(rows.c.class_id, rows.c.user_id, pw.fn.MIN(rows.c.name).alias("name"),
                           pw.fn.MIN(pw.SQL("ARRAY[cm_rows.rank, cm_rows.pos]")).alias("ord"))
          .group_by(rows.c.class_id, rows.c.user_id).cte("cm"))
    missing = missing_channels_query(p).cte("missing")
    return (pw.Select(columns=[pw.SQL(_ANSWER, [p.shown, p.shown, p.shown, p.user, p.user])])
            .with_cte(page, dm, rows, cm, missing).bind(db).tuples())


_FIRST = Prepared("conversation_page_json", lambda p: _statement(p, False))
_NEXT = Prepared("conversation_page_json_after", lambda p: _statement(p, True))


def available() -> bool:
    """Whether ``page_json`` answers here: PostgreSQL, attachments served by the API."""
    return is_postgres() and type(storage_mod.storage()) is storage_mod.LocalStorage


def page_json(user_id: int, limit: int = 50, cursor: str | None = None) -> bytes | None:
    """``GET /conversations``'s body (``ConversationPage`` as the app's JSON provider writes it, the
    final newline included), or None where the database does not build it (``available``)."""
    if not available():
        return None
    user_id = int(user_id)
    position = page_position(cursor)
    for _attempt in range(2):
        if position is None:
            row = _FIRST.raw(user=user_id, limit=limit + 1, shown=limit)[0]
        else:
            row = _NEXT.raw(user=user_id, at=position[0], last_id=position[1], limit=limit + 1, shown=limit)[0]
        items, found, last_at, last_id, missing = row
        if not missing:
            break
        ensure_class_conversations(missing)  # then read again: the new channels are in the page
    cursor_json = "null"
    if found > limit:
        cursor_json = '"' + page_cursor(last_at, last_id) + '"'
    return ('{"items":[' + (items or "") + '],"next_cursor":' + cursor_json + "}\n").encode()


__all__ = ["available", "page_json"]
