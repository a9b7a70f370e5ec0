"""Announcements (thông báo): a school's broadcast to its families, fanned out by jobs.

The request stores the announcement and enqueues the planner (at ``send_at`` when scheduled).
The planner takes it (``sending``), cuts the audience into chunks of 20,000 guardians recorded
in ``AnnouncementChunk`` rows (so a re-run plans exactly the same chunks) and enqueues a job per
chunk. A chunk job inserts the inbox rows in bulk (unique per announcement and guardian,
conflicts ignored) and enqueues push jobs; the last chunk marks the announcement ``sent``.
Any of these jobs may die and run again: rows and pushes come out the same.

Who may announce, read the counts, cancel or acknowledge: ``notifications.policy``; the functions
here taking ``user_id`` first ask it before anything else. The fan-out functions (``plan``,
``run_chunk``, ``remind``) are trusted internals for the jobs: no acting user.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from peewee import fn

from service.roster import logic as roster

from service.roster import queries as roster_queries
from service.db import utcnow, write_transaction
from service.errors import Conflict, ValidationError

from . import logic, policy, queues
from .models import Announcement, AnnouncementAck, AnnouncementChunk, Notification, PushAttempt

log = logging.getLogger("lienlac.notifications.announcements")

CHUNK = 20_000  # guardians per chunk job: one INSERT … SELECT each (notifications.fanout)
DEFAULT_REMIND_MINUTES = 24 * 60
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)


# --- creating ----------------------------------------------------------------------------------
def create(user_id: int, title: str, body: str, audience: dict, send_at: dt.datetime | None = None,
           requires_ack: bool = False, urgent: bool = False, remind_after_minutes: int | None = None,
           now: dt.datetime | None = None) -> Announcement:
    """Check, store, and enqueue the planner (at ``send_at`` if later). Empty audience → 422;
    a school or class the caller may not reach → 404."""
    now = now or utcnow()
    policy.require_announcer(user_id)
    grades = sorted(set(audience.get("grades") or []))
    class_ids = sorted(set(audience.get("class_ids") or []))
    guardian_ids = sorted(set(audience.get("guardian_ids") or []))
    if not (audience.get("school_id") or grades or class_ids or guardian_ids):
        raise ValidationError("The audience is empty.", fields={"audience": ["Name a school, grades, classes or guardians."]})
    school_id = policy.announcing_school(user_id, audience.get("school_id"), class_ids)
    policy.may_announce(user_id, school_id, grades, class_ids, guardian_ids, urgent)
    if not roster_queries.audience_guardian_ids(school_id, grades, class_ids, guardian_ids, limit=1):
        raise ValidationError("Nobody is in this audience.", fields={"audience": ["No guardian matches."]})
    if send_at is not None and send_at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationError("Too far ahead.", fields={"send_at": ["At most a year ahead."]})
    scheduled = send_at is not None and send_at > now
    with write_transaction():
        ann = Announcement.create(
            school=school_id, author=user_id, title=title, body=body, urgent=urgent, requires_ack=requires_ack,
            remind_after_minutes=(remind_after_minutes or DEFAULT_REMIND_MINUTES) if requires_ack else None,
            audience=json.dumps({"grades": grades, "class_ids": class_ids, "guardian_ids": guardian_ids}),
            status="scheduled" if scheduled else "queued", send_at=send_at if scheduled else None, created_at=now)
    _enqueue_planner(ann, now=None if scheduled else now)
    log.info("announcement %s created (%s)", ann.id, "scheduled" if scheduled else "queued")
    return Announcement.get_by_id(ann.id)


def _enqueue_planner(ann: Announcement, now: dt.datetime | None = None, job_id: str | None = None) -> None:
    queues.enqueue("plan_announcement", ann.id, now.isoformat() if now else None, queue="default",
                   at=ann.send_at, job_id=job_id or f"ann-{ann.id}-plan")


def cancel(user_id: int, announcement_id: int, now: dt.datetime | None = None) -> Announcement:
    ann = policy.manageable(user_id, announcement_id)
    changed = (Announcement.update(status="cancelled", cancelled_at=now or utcnow())
               .where((Announcement.id == ann.id) & Announcement.status.in_(["scheduled", "queued"])).execute())
    ann = Announcement.get_by_id(ann.id)
    if not changed and ann.status != "cancelled":
        raise Conflict("It is already being sent.")
    return ann


# --- reading -----------------------------------------------------------------------------------
def counts(ann: Announcement) -> dict:
    base = Notification.select().where(Notification.announcement == ann.id)
    pushes = dict(PushAttempt.select(PushAttempt.status, fn.COUNT(PushAttempt.id))
                  .where(PushAttempt.announcement_id == ann.id).group_by(PushAttempt.status).tuples())
    return {"recipients": ann.recipients or 0, "inboxed": base.count(),
            "push_sent": pushes.get("accepted", 0), "push_failed": pushes.get("failed", 0),
            "read": base.where(Notification.read_at.is_null(False)).count(),
            "acknowledged": AnnouncementAck.select().where(AnnouncementAck.announcement == ann.id).count()}


def view(user_id: int, announcement_id: int) -> dict:
    """Staff who may manage it see the counts; a recipient sees the announcement (and their ack)."""
    ann, manager = policy.readable(user_id, announcement_id)
    out = {"id": ann.id, "school_id": ann.school_id, "title": ann.title, "body": ann.body, "status": ann.status,
           "urgent": ann.urgent, "requires_ack": ann.requires_ack, "send_at": ann.send_at,
           "created_at": ann.created_at, "audience": json.loads(ann.audience)}
    if manager:
        out["counts"] = counts(ann)
        return out
    ack = AnnouncementAck.get_or_none((AnnouncementAck.announcement == ann.id) & (AnnouncementAck.user == user_id))
    out["acknowledged_at"] = ack.acked_at if ack else None
    out.pop("audience")
    return out


def acknowledge(user_id: int, announcement_id: int, now: dt.datetime | None = None) -> None:
    """A recipient confirms they have read it (only announcements sent to them: else 404)."""
    now = now or utcnow()
    ann = policy.received(user_id, announcement_id)
    if not ann.requires_ack:
        raise Conflict("This announcement does not ask for an acknowledgement.")
    with write_transaction():
        AnnouncementAck.insert(announcement=ann.id, user=user_id, acked_at=now).on_conflict_ignore().execute()
        Notification.update(read_at=now).where((Notification.announcement == ann.id) & (Notification.user == user_id)
                                               & Notification.read_at.is_null()).execute()


# --- the fan-out (jobs) ------------------------------------------------------------------------
def plan(announcement_id: int, now: dt.datetime | None = None) -> None:
    """Take the announcement, record its chunks and enqueue a job per chunk. Safe to re-run."""
    now = now or utcnow()
    ann = Announcement.get_or_none(Announcement.id == announcement_id)
    if ann is None or ann.status in ("cancelled", "sent"):
        return
    if ann.status == "scheduled" and ann.send_at and ann.send_at > now + dt.timedelta(seconds=1):
        # woken too early (e.g. a clock difference): wait again, under another job id
        _enqueue_planner(ann, job_id=f"ann-{ann.id}-plan-{ann.send_at:%Y%m%dT%H%M%S}")
        return
    (Announcement.update(status="sending", started_at=now)
     .where((Announcement.id == ann.id) & Announcement.status.in_(["scheduled", "queued"])).execute())
    ann = Announcement.get_by_id(ann.id)
    if ann.status != "sending":
        return
    if ann.planned_at is None:
        audience = json.loads(ann.audience)
        guardians = roster_queries.audience_guardian_ids(ann.school_id, audience["grades"], audience["class_ids"],
                                                 audience["guardian_ids"])
        rows = [{"announcement": ann.id, "seq": seq, "size": len(guardians[start:start + CHUNK]),
                 "user_ids": ",".join(map(str, guardians[start:start + CHUNK]))}
                for seq, start in enumerate(range(0, len(guardians), CHUNK))]
        with write_transaction():
            if not AnnouncementChunk.select().where(AnnouncementChunk.announcement == ann.id).exists():
                for start in range(0, len(rows), 50):
                    AnnouncementChunk.insert_many(rows[start:start + 50]).on_conflict_ignore().execute()
                Announcement.update(recipients=len(guardians), chunks=len(rows)).where(
                    Announcement.id == ann.id).execute()
    chunks = [c.seq for c in AnnouncementChunk.select(AnnouncementChunk.seq)
              .where((AnnouncementChunk.announcement == ann.id) & AnnouncementChunk.done_at.is_null())
              .order_by(AnnouncementChunk.seq)]
    for seq in chunks:
        queues.enqueue("announcement_chunk", ann.id, seq, queue="low", job_id=f"ann-{ann.id}-chunk-{seq}")
    if ann.planned_at is None:
        Announcement.update(planned_at=utcnow()).where(Announcement.id == ann.id).execute()
        if ann.requires_ack:
            remind_at = ann.started_at + dt.timedelta(minutes=ann.remind_after_minutes or DEFAULT_REMIND_MINUTES)
            queues.enqueue("remind_announcement", ann.id, queue="default", at=remind_at,
                           job_id=f"ann-{ann.id}-remind")
    _maybe_complete(ann.id)


def spec_of(ann: Announcement) -> dict:
    return logic.make_spec("announcement", ann.title, ann.body, {"type": "announcement", "id": str(ann.id)},
                           urgent=ann.urgent, collapse_key=f"announcement-{ann.id}")


def run_chunk(announcement_id: int, seq: int) -> None:
    """Inbox rows for one chunk of guardians, then its push jobs. Safe to re-run."""
    ann = Announcement.get_or_none(Announcement.id == announcement_id)
    if ann is None or ann.status == "cancelled":
        return
    chunk = AnnouncementChunk.get_or_none((AnnouncementChunk.announcement == ann.id) & (AnnouncementChunk.seq == seq))
    if chunk is None:
        return
    audience = json.loads(ann.audience)
    pending = logic.deliver(chunk.user_ids, spec_of(ann), announcement_id=ann.id,
                            students={"school_id": ann.school_id, **audience},
                            timezone=roster.school_timezone(ann.school_id), now=ann.started_at)
    logic.enqueue_push(pending, job_prefix=f"ann-{ann.id}-push-{seq}")
    AnnouncementChunk.update(done_at=utcnow()).where(
        (AnnouncementChunk.id == chunk.id) & AnnouncementChunk.done_at.is_null()).execute()
    _maybe_complete(ann.id)


def _maybe_complete(announcement_id: int) -> None:
    open_chunks = AnnouncementChunk.select().where((AnnouncementChunk.announcement == announcement_id)
                                                   & AnnouncementChunk.done_at.is_null()).exists()
    if not open_chunks:
        (Announcement.update(status="sent", completed_at=utcnow())
         .where((Announcement.id == announcement_id) & (Announcement.status == "sending")
                & Announcement.planned_at.is_null(False)).execute())


def remind(announcement_id: int, now: dt.datetime | None = None) -> int:
    """Push a reminder to recipients who have not acknowledged. Returns how many were reminded."""
    now = now or utcnow()
    ann = Announcement.get_or_none(Announcement.id == announcement_id)
    if ann is None or not ann.requires_ack or ann.status == "cancelled" or ann.reminded_at is not None:
        return 0
    acked = AnnouncementAck.select(AnnouncementAck.user).where(AnnouncementAck.announcement == ann.id)
    users = [row.user_id for row in Notification.select(Notification.user)
             .where((Notification.announcement == ann.id) & Notification.user.not_in(acked))
             .order_by(Notification.user)]
    spec = logic.make_spec(
        "announcement", f"Nhắc: {ann.title}", ann.body, {"type": "announcement", "id": str(ann.id), "reminder": "1"},
        inbox=False, urgent=ann.urgent, collapse_key=f"announcement-{ann.id}",
        texts={"vi": (f"Nhắc: vui lòng xác nhận — {ann.title}", ann.body),
               "en": (f"Reminder: please acknowledge — {ann.title}", ann.body)})
    key = f"r:{ann.id}"
    for seq, start in enumerate(range(0, len(users), CHUNK)):
        queues.enqueue("deliver", key, users[start:start + CHUNK], spec, now.isoformat(), "low", seq,
                       queue="low", job_id=f"ann-{ann.id}-remind-{seq}")
    Announcement.update(reminded_at=now).where(Announcement.id == ann.id).execute()
    return len(users)
