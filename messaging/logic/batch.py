"""Concurrent sends of one web process stored and published together (PostgreSQL): group commit.

When many people send at once (parents answering a teacher's question, the morning rush), each
message alone costs PostgreSQL two statements and two commits, and the web process three round
trips (insert, PUBLISH, release): at a few hundred messages a second that, not the messages, is
what fills the machine. So the sends of one web process that arrive while another is being stored
are gathered (``service.gather``): the first send runs at once, alone, through the single path
(``sending``), with no wait for company (a lone message is as fast as before); those arriving
meanwhile queue, and the first of them runs the queue as one batch (at most ``MAX_BATCH``) when
the one in flight is done, then hands the lead on. A batch (``run``) is:

1. one statement, its own transaction (``send_batch_insert``): the advisory lock of each of the
   batch's conversations, taken in key order (two processes' batches wait for each other, never
   deadlock; a single send takes one lock), the next seqs (one UPDATE per conversation) and the
   inserts, numbered in arrival order within a conversation. A ``client_id`` stored before (a
   resend) is left out and answered as a resend;
2. one Redis round trip: each message's PUBLISH, in seq order, each with its presence question
   (``publish.emit_many_in_order``);
3. one statement (``send_batch_release``): the locks released and the senders' read marks raised.

The ordering guarantee is the single send's (``sending``'s docstring): a conversation's messages
are published after their commit and before its lock is released, so in seq order on every web
process. If the insert fails (a ``client_id`` sent at the same moment through another process, a
deadlock with a lock taken another way, a lost connection), nothing of the batch is stored (one
statement) and its locks are released: each send then goes again alone, as it would have without
batching. The same ``client_id`` twice in one batch: the later goes alone after it (a resend).
Membership, the posting rule and the rate limit are checked per send before it queues; what comes
after (office hours, the push job for the offline) runs per send after it.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from flask import current_app

from service import presence
from service.db import db, release
from service.errors import NotFound
from service.gather import Gatherer, Waiting, per_app, settle
from service.prepared import PreparedStatement

from ..models import Conversation, Message, ReadMark
from .history import message_view
from .publish import emit_many_in_order, published_payload, user_rooms
from .receipts import advance_read

log = logging.getLogger("lienlac.messaging")

#: the most messages one batch stores (its arrays' length); the rest wait for the next
MAX_BATCH = 200

LOCK_NAMESPACE = 0x6D7367  # as sending's: one lock per conversation whichever path takes it


def lock_key(conversation_id: int) -> int:
    return int(conversation_id) % 2**31


class Send(Waiting):
    """One ``message:send`` waiting to be stored; its outcome ``(message, view, message sent
    before, online recipients)``, as ``sending._store_and_publish``'s."""

    __slots__ = ("conv_id", "user_id", "client_id", "body", "ts", "members")

    def __init__(self, conv_id: int, user_id: int, client_id: str, body: str, ts: dt.datetime, members: list[int]):
        super().__init__()
        self.conv_id, self.user_id, self.client_id, self.body, self.ts = conv_id, user_id, client_id, body, ts
        self.members = members


def submit(item: Send, alone: Callable[[Send], tuple]) -> tuple:
    """Store and publish ``item``: at once through ``alone`` (the single path) if no other send of
    this process is in flight, else in the next batch. A send that waits gives its connection back
    to the pool meanwhile (it holds no lock and no transaction: ``sending`` sends alone inside a
    transaction); whatever it reads afterwards checks one out again. So the pool's size does not
    bound a batch, and the membership reads of the sends arriving meanwhile find connections."""
    gatherer = per_app(current_app, "lienlac_send_batches",
                       lambda: Gatherer(alone, lambda items: run(items, alone), limit=MAX_BATCH, release=release))
    return gatherer.submit(item)


# --- the statements ----------------------------------------------------------------------------
def _insert_text() -> str:
    conv, msg = Conversation._meta.table_name, Message._meta.table_name
    return (
        'WITH input AS (SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::timestamp[]) '
        '  WITH ORDINALITY AS i(conv, sender, client_id, body, ts, ord)), '
        'fresh AS (SELECT i.* FROM input i WHERE NOT EXISTS '
        f'  (SELECT 1 FROM "{msg}" m WHERE m.sender_id = i.sender AND m.client_id = i.client_id)), '
        'lock AS (SELECT count(pg_advisory_lock($1, k)) AS n '
        '  FROM (SELECT DISTINCT mod(conv, 2147483648)::int AS k FROM input ORDER BY k) keys), '
        'counts AS (SELECT conv, count(*) AS n, max(ts) AS ts FROM fresh GROUP BY conv), '
        f'next AS (UPDATE "{conv}" c SET last_seq = c.last_seq + counts.n, last_message_at = counts.ts, '
        '  updated_at = counts.ts FROM counts, lock WHERE c.id = counts.conv RETURNING c.id, c.last_seq - counts.n AS base) '
        f'INSERT INTO "{msg}" (conversation_id, seq, sender_id, client_id, body, created_at) '
        'SELECT f.conv, next.base + row_number() OVER (PARTITION BY f.conv ORDER BY f.ord), f.sender, f.client_id, '
        '  f.body, f.ts FROM fresh f JOIN next ON next.id = f.conv '
        'RETURNING id, conversation_id, seq, sender_id, client_id')


def _unlock_text() -> str:
    return 'SELECT count(pg_advisory_unlock($1, k)) FROM unnest($2::int[]) k'


def _release_text() -> str:
    mark = ReadMark._meta.table_name
    return (
        'WITH unlock AS (SELECT count(pg_advisory_unlock($1, k)) AS n FROM unnest($2::int[]) k) '
        f'INSERT INTO "{mark}" (conversation_id, user_id, up_to_seq, updated_at) '
        'SELECT r.conv, r.usr, r.seq, r.ts FROM unlock, '
        '  unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::timestamp[]) r(conv, usr, seq, ts) '
        'ON CONFLICT (conversation_id, user_id) DO UPDATE SET '
        f'up_to_seq = GREATEST("{mark}".up_to_seq, EXCLUDED.up_to_seq), updated_at = EXCLUDED.updated_at')


_INSERT = PreparedStatement("send_batch_insert", "int, bigint[], bigint[], text[], text[], timestamp[]", _insert_text)
_UNLOCK = PreparedStatement("send_batch_unlock", "int, int[]", _unlock_text)
_RELEASE = PreparedStatement("send_batch_release", "int, int[], bigint[], bigint[], bigint[], timestamp[]",
                             _release_text)


# --- one batch ---------------------------------------------------------------------------------
def run(batch: list[Send], single: Callable[[Send], tuple]) -> None:
    """Store, publish and release ``batch`` (PostgreSQL, two or more sends); every send gets its
    outcome or its error. ``single``: the one-send path, for what cannot go in the batch."""
    seen: set[tuple[int, str]] = set()
    firsts, later = [], []
    for item in batch:
        key = (item.user_id, item.client_id)
        (later if key in seen else firsts).append(item)
        seen.add(key)
    if len(firsts) == 1:
        later.insert(0, firsts.pop())
    if firsts and not _run_together(firsts):
        later = firsts + later
    for item in later:
        if not item.settled:
            settle(item, single)


def _run_together(items: list[Send]) -> bool:
    """The batch's three steps; False when its insert failed (nothing of it stored, no outcome set)."""
    keys = sorted({lock_key(i.conv_id) for i in items})
    db.connect(reuse_if_open=True)
    try:
        rows = _INSERT.execute(LOCK_NAMESPACE, [i.conv_id for i in items], [i.user_id for i in items],
                               [i.client_id for i in items], [i.body for i in items], [i.ts for i in items]).fetchall()
    except Exception:  # noqa: BLE001 - nothing of it was stored (one statement): each goes alone
        log.warning("a batch of %d messages could not be stored together; sending one by one", len(items),
                    exc_info=True)
        _release(keys, [])
        return False
    stored = {(sender, client_id): (msg_id, seq) for msg_id, _conv, seq, sender, client_id in rows}
    published: list[tuple[Send, Message]] = []
    try:
        for item in items:
            found = stored.get((item.user_id, item.client_id))
            if found is not None:
                published.append((item, Message(id=found[0], conversation=item.conv_id, seq=found[1],
                                                sender=item.user_id, client_id=item.client_id, body=item.body,
                                                created_at=item.ts)))
        _publish(published)
    except Exception as exc:  # noqa: BLE001 - stored, not published: as the single path, the send fails
        log.exception("publishing a batch of messages failed")
        for item, _msg in published:
            item.error = exc
    finally:
        _release(keys, [(item.conv_id, item.user_id, msg.seq, item.ts) for item, msg in published])
    for item in items:
        if not item.settled:
            _answer_unstored(item)
    return True


def new_message_event(view: dict, members: list[int], sender_id: int) -> tuple:
    """A stored message's ``message:new`` for ``emit_many_in_order``: to every member, carrying the
    question "who of the recipients is connected now" (``presence.online_users_in``, run by Redis
    right after the PUBLISH). The single path (``sending``) and a batch publish alike."""
    recipients = [u for u in members if u != sender_id]
    rider = (lambda pipe: presence.online_users_in(pipe, recipients)) if recipients else None
    return user_rooms(members), "message:new", {"message": published_payload(view)}, rider


def find_sent(user_id: int, client_id: str) -> Message | None:
    """The message this sender stored with this ``client_id``, if any (a resend's answer)."""
    return Message.get_or_none((Message.sender == user_id) & (Message.client_id == client_id))


def close_connection_with_locks() -> None:
    """This connection's locks could not be released: close it (PostgreSQL frees a closed session's
    locks) rather than give it back to the pool with them."""
    closer = getattr(db.obj, "manual_close", None)
    closer() if closer is not None else db.close()


def _publish(published: list[tuple[Send, Message]]) -> None:
    """Every stored message's ``message:new``, in seq order, in one Redis round trip; each send gets
    its outcome (a view already out on the sockets)."""
    events, views = [], []
    for item, msg in sorted(published, key=lambda pair: (pair[1].conversation_id, pair[1].seq)):
        view = message_view(msg, [])
        events.append(new_message_event(view, item.members, item.user_id))
        views.append((item, msg, view))
    answers = emit_many_in_order(events)
    for (item, msg, view), online in zip(views, answers):
        item.outcome = (msg, view, None, online)


def _release(keys: list[int], marks: list[tuple[int, int, int, dt.datetime]]) -> None:
    """Release the batch's locks; with ``marks`` (conversation, sender, seq, time), raise the senders'
    read marks in the same statement. As ``sending._release_pg``: a failure closes the connection
    (its locks go with it) rather than pool it with them."""
    best: dict[tuple[int, int], tuple[int, dt.datetime]] = {}
    for conv, user, seq, ts in marks:
        if (conv, user) not in best or best[(conv, user)][0] < seq:
            best[(conv, user)] = (seq, ts)
    try:
        if best:
            pairs = list(best.items())
            _RELEASE.execute(LOCK_NAMESPACE, keys, [c for (c, _), _ in pairs], [u for (_, u), _ in pairs],
                             [s for _, (s, _) in pairs], [t for _, (_, t) in pairs])
        else:
            _UNLOCK.execute(LOCK_NAMESPACE, keys)
        return
    except Exception:  # noqa: BLE001 - the messages are stored and published: never fail them here
        log.warning("releasing a batch's conversation locks failed; trying again", exc_info=True)
    try:
        db.execute_sql("SELECT pg_advisory_unlock_all()")
    except Exception:  # noqa: BLE001 - the session is unusable: close it, its locks go with it
        log.exception("could not release a batch's conversation locks: connection closed")
        close_connection_with_locks()
        return
    for (conv, user), (seq, ts) in best.items():
        advance_read(conv, user, seq, ts)


def _answer_unstored(item: Send) -> None:
    """A send of the batch that was not stored: its ``client_id`` was (a resend), or its
    conversation is gone."""
    existing = find_sent(item.user_id, item.client_id)
    if existing is None:
        item.error = NotFound("No such conversation.")
    else:
        item.outcome = (None, None, existing, None)
