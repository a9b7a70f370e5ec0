"""Notification tables: devices, preferences, the inbox, push attempts and announcements."""
from __future__ import annotations

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import School


class Device(BaseModel):
    """A phone's FCM registration token. A token belongs to one account at a time."""

    id = pw.BigAutoField()
    user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE", index=True)
    token = pw.CharField(max_length=1024, unique=True)
    platform = pw.CharField(max_length=10)  # android | ios | web
    locale = pw.CharField(max_length=35, null=True)
    created_at = pw.DateTimeField(default=utcnow)
    last_seen_at = pw.DateTimeField(default=utcnow)


class Preference(BaseModel):
    """A user's notification settings; no row means the defaults (all on, no quiet hours, vi)."""

    user = pw.ForeignKeyField(User, primary_key=True, backref="+", on_delete="CASCADE")
    disabled = pw.CharField(max_length=200, default="")  # comma-separated switched-off categories
    quiet_start = pw.CharField(max_length=5, null=True)  # "21:00", local time of the school
    quiet_end = pw.CharField(max_length=5, null=True)  # "06:30"
    language = pw.CharField(max_length=2, default="vi")
    updated_at = pw.DateTimeField(default=utcnow)


class Announcement(BaseModel):
    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, backref="+", on_delete="CASCADE")
    author = pw.ForeignKeyField(User, backref="+", null=True, on_delete="SET NULL")
    title = pw.CharField(max_length=200)
    body = pw.TextField()
    audience = pw.TextField()  # JSON {grades, class_ids, guardian_ids}
    urgent = pw.BooleanField(default=False)
    requires_ack = pw.BooleanField(default=False)
    remind_after_minutes = pw.IntegerField(null=True)
    # scheduled | queued | sending | sent | cancelled
    status = pw.CharField(max_length=12, default="queued", index=True)
    send_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)  # the planner took it; quiet hours are judged at this time
    planned_at = pw.DateTimeField(null=True)  # every chunk is recorded and enqueued
    completed_at = pw.DateTimeField(null=True)  # every chunk has stored its inbox rows
    cancelled_at = pw.DateTimeField(null=True)
    reminded_at = pw.DateTimeField(null=True)
    recipients = pw.IntegerField(null=True)
    chunks = pw.IntegerField(null=True)


class AnnouncementChunk(BaseModel):
    """One slice of an announcement's audience; ``done_at`` once its inbox rows are stored."""

    id = pw.BigAutoField()
    announcement = pw.ForeignKeyField(Announcement, backref="+", on_delete="CASCADE")
    seq = pw.IntegerField()
    size = pw.IntegerField()
    user_ids = pw.TextField()  # the chunk's guardians, comma-separated: a re-run plans the same chunks
    done_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("announcement", "seq"), True),)


class AnnouncementAck(BaseModel):
    id = pw.BigAutoField()
    announcement = pw.ForeignKeyField(Announcement, backref="+", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE")
    acked_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("announcement", "user"), True),)


class Notification(BaseModel):
    """An inbox row (``in_inbox``) or a push-only delivery record (chat messages, reminders).

    One row per recipient and announcement, or per recipient and ``dedupe_key`` (one ``notify``
    call): a job that runs twice inserts nothing the second time.
    """

    id = pw.BigAutoField()
    user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE", index=False)  # (user, in_inbox, id)
    category = pw.CharField(max_length=20)
    title = pw.CharField(max_length=300)
    body = pw.TextField()
    data = pw.TextField(default="{}")  # JSON; holds the deep link {"type", "id"}
    announcement = pw.ForeignKeyField(Announcement, backref="+", null=True, on_delete="CASCADE",
                                      index=False)  # the unique (announcement, user) below serves it
    dedupe_key = pw.CharField(max_length=64, null=True)
    in_inbox = pw.BooleanField(default=True)
    urgent = pw.BooleanField(default=False)
    silent = pw.BooleanField(default=False)
    collapse_key = pw.CharField(max_length=100, null=True)
    # pending: push due | held: quiet hours until push_after | off: category switched off | none: no push
    push_status = pw.CharField(max_length=8, default="none")
    push_after = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    read_at = pw.DateTimeField(null=True)

    class Meta:
        # The fan-out writes every row through these, so only what reads need (migration 0003): the
        # inbox (user, in_inbox, id), which also serves the user's cascade; each row's unique key,
        # partial (a row has an announcement or a dedupe key, never both, so it enters one of them);
        # held pushes by the end of their quiet hours (release_held), partial (few rows are held).
        indexes = ((("user", "in_inbox", "id"), False),)


Notification.add_index(Notification.index(Notification.announcement, Notification.user, unique=True,
                                          where=Notification.announcement.is_null(False),
                                          name="notification_unique_announcement_user"))
Notification.add_index(Notification.index(Notification.dedupe_key, Notification.user, unique=True,
                                          where=Notification.dedupe_key.is_null(False),
                                          name="notification_unique_dedupe_key_user"))
Notification.add_index(Notification.index(Notification.push_after, where=Notification.push_status == "held",
                                          name="notification_held_push_after"))


class PushAttempt(BaseModel):
    """One push of one notification to one device. Claimed (``sending``, ``claim`` token and
    ``claimed_at``) before the request to FCM, ``accepted`` after; the unique key means a re-run
    job never sends it again, unless its claim is older than PUSH_CLAIM_TIMEOUT_SECONDS (its
    worker died): then it is taken up again (the push's collapse key makes a resend show once)."""

    id = pw.BigAutoField()
    notification = pw.ForeignKeyField(Notification, backref="+", on_delete="CASCADE",
                                      index=False)  # the unique (notification, device_id) serves it
    device_id = pw.BigIntegerField()  # no FK: the record outlives a deleted (unregistered) device
    announcement_id = pw.BigIntegerField(null=True, index=True)
    status = pw.CharField(max_length=10)  # sending | accepted | retry | failed
    claim = pw.CharField(max_length=32, index=True)
    tries = pw.IntegerField(default=1)
    error = pw.CharField(max_length=40, null=True)
    next_at = pw.DateTimeField(null=True)
    claimed_at = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("notification", "device_id"), True), (("status", "claimed_at"), False))


MODELS = [Device, Preference, Announcement, AnnouncementChunk, AnnouncementAck, Notification, PushAttempt]
