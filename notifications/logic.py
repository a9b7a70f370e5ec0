"""Notifications: the one call other packages use (``notify``) and the rules behind it.

The inbox is the source of truth; push is the signal that something is there. Every
notification is a ``Notification`` row per recipient (``in_inbox=False`` for push-only
deliveries such as chat messages), inserted in bulk by jobs with a unique key (per
announcement, or per ``notify`` call) so a job that runs twice inserts nothing twice. Pushes go
through :mod:`notifications.push`, which records one attempt per (notification, device).

Preferences decide the push, never the inbox row: a switched-off category or quiet hours
(judged in the school's timezone) keep the push back (held pushes go out when quiet hours end);
``urgent`` ignores both. Functions take ``now=`` so tests inject time instead of sleeping.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import namedtuple
from typing import Iterable
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from service import presence, realtime
from service.db import utcnow, write_transaction
from service.errors import NotFound, ValidationError
from service.pagination import paginate_by_id

from . import queues
from .models import Device, Notification, Preference
from . import fanout
from .push import push_notifications
from .schemas import NotificationOut

log = logging.getLogger("lienlac.notifications")

CATEGORIES = ("message", "announcement", "attendance", "grade", "meal", "schedule", "leave")
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
PLATFORMS = ("android", "ios", "web")
CHUNK = 1000  # recipients per delivery job
PUSH_JOB = 2000  # notifications per push job: ~2,600 devices, three windows (push.WINDOW) in turn
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

Prefs = namedtuple("Prefs", "disabled quiet language")
DEFAULT_PREFS = Prefs(frozenset(), None, DEFAULT_LANGUAGE)


# --- the public call ---------------------------------------------------------------------------
def notify(user_ids: Iterable[int], category: str, title: str, body: str, data: dict | None = None, *,
           inbox: bool = True, push: bool = True, urgent: bool = False, silent: bool = False,
           collapse_key: str | None = None, texts: dict | None = None,
           now: dt.datetime | None = None) -> None:
    """Notify users: an inbox row each (unless ``inbox=False``) and a push to their devices.

    ``category``: one of CATEGORIES. ``data``: the deep link ``{"type": ..., "id": ...}`` (plus
    small extras). ``inbox=False``: push only (chat messages: the conversation's unread count is
    the truth). ``silent``: no sound or alert. ``urgent``: through quiet hours and switched-off
    categories. ``texts``: ``{"vi": (title, body), "en": (title, body)}`` chosen by each
    recipient's language (``title``/``body`` otherwise). Returns at once: the work is done by
    jobs (one for up to 1,000 recipients, a planner cutting larger lists into chunks); call it
    after your transaction has committed.
    """
    spec = make_spec(category, title, body, data, inbox=inbox, push=push, urgent=urgent, silent=silent,
                     collapse_key=collapse_key, texts=texts)
    ids = sorted({int(u) for u in user_ids})
    if not ids or not (inbox or push):
        return

    key = "n:" + uuid.uuid4().hex
    when = now.isoformat() if now else None
    if len(ids) <= CHUNK:
        queues.enqueue("deliver", key, ids, spec, when, queue="high", job_id=f"notify-{key[2:]}")
    else:
        queues.enqueue("plan_notify", key, ids, spec, when, queue="default", job_id=f"notify-plan-{key[2:]}")


def notify_each(notices: Iterable[dict], now: dt.datetime | None = None) -> None:
    """Many ``notify`` calls at once, each with its own recipients and text, in one job per 1,000
    recipients instead of a job each (e.g. a gate batch's 500 "arrived 07:05" notices, one per child),
    and each job's notices stored together by one set-wise statement (:func:`fanout.store`).

    Each notice is a dict of ``notify``'s arguments (``user_ids``, ``category``, ``title``, ``body``,
    ``data``, ``texts``, ...). The same rules and guarantees as ``notify``: each notice has its own
    dedupe key, so a job that runs twice delivers nothing twice. Call it after your transaction.
    """
    items = []
    for notice in notices:
        args = dict(notice)
        ids = sorted({int(u) for u in args.pop("user_ids")})
        spec = make_spec(**args)
        if not ids or not (spec["inbox"] or spec["push"]):
            continue
        if len(ids) > CHUNK:
            notify(ids, **args, now=now)
            continue
        items.append(["n:" + uuid.uuid4().hex, ids, spec])
    when = now.isoformat() if now else None
    group: list = []
    size = 0
    for item in items + [None]:
        if group and (item is None or size + len(item[1]) > CHUNK):
            queues.enqueue("deliver_each", group, when, queue="high", job_id=f"notify-each-{group[0][0][2:]}")
            group, size = [], 0
        if item is not None:
            group.append(item)
            size += len(item[1])


def make_spec(category, title, body, data=None, *, inbox=True, push=True, urgent=False, silent=False,
              collapse_key=None, texts=None) -> dict:
    """Check ``notify``'s arguments and turn them into the JSON-able spec the jobs carry."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown notification category {category!r}; one of {CATEGORIES}")
    data = dict(data or {})
    if "id" in data and data["id"] is not None:
        data["id"] = str(data["id"])
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ValueError("notification data must be JSON-serialisable") from exc
    clean_texts = {}
    for lang, pair in (texts or {}).items():
        if lang not in LANGUAGES or len(pair) != 2:
            raise ValueError(f"texts: {{'vi'|'en': (title, body)}}, got {lang!r}")
        clean_texts[lang] = [str(pair[0]), str(pair[1])]
    return {"category": category, "title": str(title), "body": str(body), "data": data, "inbox": bool(inbox),
            "push": bool(push), "urgent": bool(urgent), "silent": bool(silent),
            "collapse_key": collapse_key[:100] if collapse_key else None, "texts": clean_texts}


# --- preferences -------------------------------------------------------------------------------
def _parse_hhmm(value: str) -> dt.time:
    try:
        hours, minutes = value.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError
        return dt.time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise ValidationError("Times are HH:MM.", fields={"quiet_hours": ["Times are HH:MM (00:00-23:59)."]}) from exc


def preferences(user_id: int) -> dict:
    """``{categories: {...: bool}, quiet_hours: {start, end} | None, language}``."""
    row = Preference.get_or_none(Preference.user == user_id)
    prefs = _prefs_of(row) if row else DEFAULT_PREFS
    return {"categories": {c: c not in prefs.disabled for c in CATEGORIES},
            "quiet_hours": {"start": prefs.quiet[0], "end": prefs.quiet[1]} if prefs.quiet else None,
            "language": prefs.language}


_UNSET = object()


def set_preferences(user_id: int, categories: dict | None = None, quiet_hours=_UNSET,
                    language: str | None = None, now: dt.datetime | None = None) -> dict:
    """Change what is given (categories merge: the ones not named keep their value)."""
    current = preferences(user_id)
    cats = dict(current["categories"])
    for name, on in (categories or {}).items():
        if name not in CATEGORIES:
            raise ValidationError("Unknown category.", fields={"categories": {name: ["Unknown category."]}})
        cats[name] = bool(on)
    quiet = current["quiet_hours"] if quiet_hours is _UNSET else quiet_hours
    if quiet is not None:
        start, end = _parse_hhmm(quiet.get("start")), _parse_hhmm(quiet.get("end"))
        if start == end:
            raise ValidationError("Quiet hours must not start and end at the same time.",
                                  fields={"quiet_hours": ["start equals end."]})
        quiet = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    language = language or current["language"]
    if language not in LANGUAGES:
        raise ValidationError("Unknown language.", fields={"language": ["vi or en."]})
    values = {"disabled": ",".join(c for c in CATEGORIES if not cats[c]),
              "quiet_start": quiet["start"] if quiet else None, "quiet_end": quiet["end"] if quiet else None,
              "language": language, "updated_at": now or utcnow()}
    with write_transaction():
        (Preference.insert(user=user_id, **values)
         .on_conflict(conflict_target=[Preference.user], update=values).execute())
    return preferences(user_id)


def _prefs_of(row: Preference) -> Prefs:
    disabled = frozenset(c for c in (row.disabled or "").split(",") if c)
    quiet = (row.quiet_start, row.quiet_end) if row.quiet_start and row.quiet_end else None
    return Prefs(disabled, quiet, row.language or DEFAULT_LANGUAGE)


def preferences_of(user_ids: Iterable[int]) -> dict[int, Prefs]:
    """Preferences of many users at once (defaults for users who never changed them)."""
    ids = list(user_ids)
    out = {}
    for start in range(0, len(ids), 1000):
        for row in Preference.select().where(Preference.user.in_(ids[start:start + 1000])):
            out[row.user_id] = _prefs_of(row)
    return {u: out.get(u, DEFAULT_PREFS) for u in ids}


def quiet_until(quiet: tuple[str, str] | None, now: dt.datetime, timezone: str = DEFAULT_TIMEZONE) -> dt.datetime | None:
    """If ``now`` (naive UTC) falls in the quiet hours (local ``HH:MM`` start/end, may wrap past
    midnight), the naive UTC time they end; else None."""
    if not quiet:
        return None
    tz = ZoneInfo(timezone)
    start, end = _parse_hhmm(quiet[0]), _parse_hhmm(quiet[1])
    if start == end:
        return None
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        if not start <= t < end:
            return None
        end_day = local.date()
    else:
        if not (t >= start or t < end):
            return None
        end_day = local.date() if t < end else local.date() + dt.timedelta(days=1)
    ends = dt.datetime.combine(end_day, end, tzinfo=tz)
    return ends.astimezone(dt.timezone.utc).replace(tzinfo=None)


# --- devices -----------------------------------------------------------------------------------
def register_device(user_id: int, token: str, platform: str, locale: str | None = None,
                    now: dt.datetime | None = None) -> Device:
    """Upsert: a token is one device; registering it on another account moves it there."""
    if platform not in PLATFORMS:
        raise ValidationError("Unknown platform.", fields={"platform": ["android, ios or web."]})
    now = now or utcnow()
    values = {"user": user_id, "platform": platform, "locale": locale, "last_seen_at": now}
    with write_transaction():
        (Device.insert(token=token, created_at=now, **values)
         .on_conflict(conflict_target=[Device.token], update=values).execute())
    return Device.get(Device.token == token)


def remove_device(user_id: int, token: str) -> None:
    """The caller's own device only (another account's token: 404)."""
    if not Device.delete().where((Device.token == token) & (Device.user == user_id)).execute():
        raise NotFound("No such device.")


def drop_device_token(user_id: int, token: str | None) -> int:
    """Logout: forget this device's push token (if it is this user's)."""
    if not token:
        return 0
    return Device.delete().where((Device.token == token) & (Device.user == user_id)).execute()


def _on_logged_out(_sender, user_id=None, device_token=None, **_kw) -> None:
    if user_id is not None and device_token:
        drop_device_token(user_id, device_token)


# --- the inbox ---------------------------------------------------------------------------------
def serialize(note: Notification) -> dict:
    return {"id": note.id, "category": note.category, "title": note.title, "body": note.body,
            "data": json.loads(note.data or "{}"), "urgent": note.urgent, "created_at": note.created_at,
            "read_at": note.read_at}


def inbox(user_id: int, unread_only: bool = False, limit: int = 50, cursor: str | None = None) -> dict:
    query = Notification.select().where((Notification.user == user_id) & Notification.in_inbox)
    if unread_only:
        query = query.where(Notification.read_at.is_null())
    page = paginate_by_id(query, Notification.id, limit, cursor)
    return {"items": [serialize(n) for n in page["items"]], "next_cursor": page["next_cursor"]}


def unread_count(user_id: int) -> int:
    return (Notification.select().where((Notification.user == user_id) & Notification.in_inbox
                                        & Notification.read_at.is_null()).count())


def mark_read(user_id: int, notification_id: int, now: dt.datetime | None = None) -> dict:
    """Mark one of the caller's own inbox rows read (someone else's: 404). Idempotent."""
    now = now or utcnow()
    note = Notification.get_or_none((Notification.id == notification_id) & (Notification.user == user_id)
                                    & Notification.in_inbox)
    if note is None:
        raise NotFound("No such notification.")
    if note.read_at is None:
        Notification.update(read_at=now).where((Notification.id == note.id) & Notification.read_at.is_null()).execute()
        note = Notification.get_by_id(note.id)
    return serialize(note)


def mark_all_read(user_id: int, now: dt.datetime | None = None) -> int:
    return (Notification.update(read_at=now or utcnow())
            .where((Notification.user == user_id) & Notification.in_inbox & Notification.read_at.is_null())
            .execute())


# --- delivery (jobs call these) ----------------------------------------------------------------
def _config_timezone() -> str:
    if has_app_context():
        config = current_app.config.get("LIENLAC")
        if config is not None and config.timezone:
            return config.timezone
    return DEFAULT_TIMEZONE


def deliver(user_ids: list[int] | str, spec: dict, *, announcement_id: int | None = None,
            dedupe_key: str | None = None, students: dict | None = None,
            timezone: str | None = None, now: dt.datetime | None = None) -> list[int]:
    """Store one row per recipient set-wise in the database (conflicts ignored: safe to re-run; see
    :mod:`notifications.fanout`), tell connected users, schedule the release of held pushes, and
    return the ids whose push is due now. ``user_ids``: ids or their comma-separated text;
    ``students``: an announcement's audience, to name each recipient's children in it."""
    if (announcement_id is None) == (dedupe_key is None):
        raise ValueError("deliver needs exactly one of announcement_id and dedupe_key")
    key = announcement_id if announcement_id is not None else dedupe_key
    return _deliver([(key, user_ids, spec)], by_announcement=announcement_id is not None, students=students,
                    timezone=timezone, now=now)


def _deliver(notices: list, *, by_announcement: bool = False, students: dict | None = None,
             timezone: str | None = None, now: dt.datetime | None = None) -> list[int]:
    """``deliver`` for many notices ``[(key, user_ids, spec)]`` at once: one set-wise store for all."""
    now = now or utcnow()
    timezone = timezone or _config_timezone()
    todo = []
    for key, user_ids, spec in notices:
        users_csv = user_ids if isinstance(user_ids, str) else ",".join(str(int(u)) for u in user_ids)
        if users_csv.strip(","):
            todo.append((key, users_csv, spec))
    if not todo:
        return []
    stored = fanout.store(todo, by_announcement=by_announcement, students=students, timezone=timezone, now=now)
    _tell_connected(stored.inbox)
    for when in sorted(stored.held_until):
        schedule_release(when)
    return sorted(stored.pending)


def _tell_connected(rows: list[tuple[int, int]]) -> None:
    """``notification:new`` to recipients with an open socket (on any web process); ``[(user, row id)]``."""
    if not rows:
        return
    try:
        online = presence.online_users({user for user, _ in rows})
    except Exception:  # presence is a nicety; the inbox row is what counts
        log.warning("presence lookup failed", exc_info=True)
        return
    if not online:
        return
    notes = Notification.select().where(Notification.id.in_([i for user, i in rows if user in online]))
    schema = NotificationOut()
    for note in notes:
        realtime.emit_to(realtime.user_room(note.user_id), "notification:new",
                         {"notification": schema.dump(serialize(note))})


def schedule_release(when: dt.datetime) -> None:
    """A job at ``when`` (rounded up to the minute; one job per minute) pushes what was held."""
    minute = (when + dt.timedelta(seconds=59)).replace(second=0, microsecond=0)
    queues.enqueue("release_held", queue="default", at=minute,
                   job_id=f"release-held-{minute:%Y%m%dT%H%M}")


def enqueue_push(notification_ids: list[int], job_prefix: str | None = None,
                 now: dt.datetime | None = None) -> None:
    """Push jobs of ``PUSH_JOB`` notifications each, on the ``push`` queue: a worker takes one after
    at most a few jobs of the ``default`` and ``low`` queues in a row (``service.worker``), so an
    announcement's inbox chunks run one after another and its pushes go out beside them, never
    behind all of a long queue."""
    ids = sorted(notification_ids)
    when = now.isoformat() if now else None
    for k, start in enumerate(range(0, len(ids), PUSH_JOB)):
        part = ids[start:start + PUSH_JOB]
        job_id = f"{job_prefix}-{k}" if job_prefix else None
        queues.enqueue("push", part, when, queue=queues.PUSH_QUEUE, job_id=job_id)


def release_held(now: dt.datetime | None = None) -> int:
    """Push every held notification whose quiet hours are over. Returns how many."""
    now = now or utcnow()
    released = 0
    last = 0
    while True:
        ids = [n.id for n in Notification.select(Notification.id)
               .where((Notification.push_status == "held") & (Notification.push_after <= now)
                      & (Notification.id > last))
               .order_by(Notification.id).limit(5000)]
        if not ids:
            return released
        enqueue_push(ids, now=now)
        released += len(ids)
        last = ids[-1]


def deliver_chunk(key: str, user_ids: list[int], spec: dict, now: dt.datetime | None = None,
                  queue: str = "high", seq: int = 0) -> None:
    """One ``notify`` chunk: rows, then the pushes (in this same job for a few recipients)."""
    pending = deliver(user_ids, spec, dedupe_key=key, now=now)
    if not pending:
        return
    if len(pending) <= 50:
        push_notifications(pending, now=now)
    else:
        enqueue_push(pending, job_prefix=f"push-{key[2:]}-{seq}", now=now)


def deliver_each(items: list, now: dt.datetime | None = None) -> None:
    """One ``notify_each`` job: every notice's rows (each under its own key) in one set-wise store, then
    their pushes together."""
    pending = _deliver([(key, user_ids, spec) for key, user_ids, spec in items], now=now)
    if not pending:
        return
    if len(pending) <= 50:
        push_notifications(pending, now=now)
    else:
        enqueue_push(pending, job_prefix=f"push-each-{items[0][0][2:]}", now=now)


def plan_notify(key: str, user_ids: list[int], spec: dict, now: dt.datetime | None = None) -> None:
    ids = sorted({int(u) for u in user_ids})
    when = now.isoformat() if now else None
    for seq, start in enumerate(range(0, len(ids), CHUNK)):
        queues.enqueue("deliver", key, ids[start:start + CHUNK], spec, when, "low", seq, queue="low",
                       job_id=f"notify-{key[2:]}-{seq}")


# --- reading for other packages ----------------------------------------------------------------
def announcements_received(user_ids: Iterable[int], since: dt.datetime, until: dt.datetime) -> list[dict]:
    """Announcements that reached any of these users' inboxes in ``[since, until)`` (naive UTC), once
    each, oldest first: ``[{id, title, body, urgent, created_at}]`` (the day's page of the contact book)."""
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return []
    rows = (Notification.select(Notification.announcement, Notification.title, Notification.body,
                                Notification.urgent, Notification.created_at)
            .where(Notification.user.in_(ids) & Notification.announcement.is_null(False) & Notification.in_inbox
                   & (Notification.created_at >= since) & (Notification.created_at < until))
            .order_by(Notification.created_at, Notification.id))
    out: dict[int, dict] = {}
    for row in rows:
        out.setdefault(row.announcement_id, {"id": row.announcement_id, "title": row.title, "body": row.body,
                                             "urgent": row.urgent, "created_at": row.created_at})
    return list(out.values())
