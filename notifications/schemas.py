"""Request and response bodies of the notifications API (see /work/shared/API.md "Notifications")."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.schemas import FastSchema, Id, ListArgs, UtcDateTime, page_schema

CATEGORY_NAMES = ("message", "announcement", "attendance", "grade", "meal", "schedule", "leave")
HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="HH:MM, 00:00-23:59.")


class DeviceTokenIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=8, max=1024),
                          metadata={"description": "the FCM registration token to forget"})


class DeviceIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=8, max=1024),
                          metadata={"description": "the FCM registration token of this app install"})
    platform = fields.String(required=True, validate=validate.OneOf(["android", "ios", "web"]))
    locale = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=35),
                           metadata={"example": "vi-VN"})


class DeviceOut(Schema):
    token = fields.String(required=True)
    platform = fields.String(required=True)
    locale = fields.String(allow_none=True)
    created_at = UtcDateTime(required=True)
    last_seen_at = UtcDateTime(required=True)


class NotificationOut(Schema):
    id = Id(required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORY_NAMES))
    title = fields.String(required=True)
    body = fields.String(required=True)
    data = fields.Dict(required=True, metadata={
        "description": "deep link {type, id} and extras (announcements: students [{id, name}]); "
                       "see mobile_api_docs/PUSH.md"})
    urgent = fields.Boolean(required=True)
    created_at = UtcDateTime(required=True)
    read_at = UtcDateTime(allow_none=True, required=True)


NotificationPage = page_schema(NotificationOut, "NotificationPage")


class InboxArgs(ListArgs):
    unread = fields.Boolean(load_default=False, metadata={"description": "1: unread only"})


class UnreadCountOut(FastSchema):
    unread = fields.Integer(required=True)


class MarkedOut(Schema):
    marked = fields.Integer(required=True)


class NotificationEvent(Schema):
    notification = fields.Nested(NotificationOut, required=True)


class Categories(Schema):
    message = fields.Boolean(required=True)
    announcement = fields.Boolean(required=True)
    attendance = fields.Boolean(required=True)
    grade = fields.Boolean(required=True)
    meal = fields.Boolean(required=True)
    schedule = fields.Boolean(required=True)
    leave = fields.Boolean(required=True)


class CategoriesIn(Schema):
    message = fields.Boolean()
    announcement = fields.Boolean()
    attendance = fields.Boolean()
    grade = fields.Boolean()
    meal = fields.Boolean()
    schedule = fields.Boolean()
    leave = fields.Boolean()


class QuietHours(Schema):
    start = fields.String(required=True, validate=HHMM, metadata={"example": "21:00"})
    end = fields.String(required=True, validate=HHMM, metadata={"example": "06:30"})


class PreferencesOut(Schema):
    categories = fields.Nested(Categories, required=True)
    quiet_hours = fields.Nested(QuietHours, allow_none=True, required=True,
                                metadata={"description": "local time of the school; null: none"})
    language = fields.String(required=True, validate=validate.OneOf(["vi", "en"]))


class PreferencesIn(Schema):
    """Every key optional: what is left out keeps its value (categories merge by name)."""

    categories = fields.Nested(CategoriesIn)
    quiet_hours = fields.Nested(QuietHours, allow_none=True)
    language = fields.String(validate=validate.OneOf(["vi", "en"]))


class AudienceIn(Schema):
    school_id = Id(metadata={"description": "alone: the whole school"})
    grades = fields.List(fields.Integer(validate=validate.Range(min=1, max=12)), validate=validate.Length(max=12))
    class_ids = fields.List(Id(), validate=validate.Length(max=2000))
    guardian_ids = fields.List(Id(), validate=validate.Length(max=10000))


class AnnouncementIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    audience = fields.Nested(AudienceIn, required=True)
    send_at = UtcDateTime(load_default=None, allow_none=True, metadata={"description": "later: scheduled"})
    requires_ack = fields.Boolean(load_default=False)
    urgent = fields.Boolean(load_default=False, metadata={
        "description": "emergencies, closures: pushed at once, through quiet hours and switched-off categories"})
    remind_after_minutes = fields.Integer(load_default=None, allow_none=True,
                                          validate=validate.Range(min=1, max=7 * 24 * 60),
                                          metadata={"description": "with requires_ack: when to remind those who "
                                                                   "have not acknowledged (default 1440)"})


class AnnouncementCreated(Schema):
    id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        ["scheduled", "queued", "sending", "sent", "cancelled"]))


class Counts(Schema):
    recipients = fields.Integer(required=True, metadata={"description": "guardians in the audience when it went out"})
    inboxed = fields.Integer(required=True, metadata={"description": "inbox rows stored so far"})
    push_sent = fields.Integer(required=True, metadata={"description": "pushes FCM accepted (one per device)"})
    push_failed = fields.Integer(required=True, metadata={
        "description": "pushes FCM refused for good (unregistered or invalid tokens, retries exhausted)"})
    read = fields.Integer(required=True)
    acknowledged = fields.Integer(required=True)


class AudienceOut(Schema):
    grades = fields.List(fields.Integer())
    class_ids = fields.List(Id())
    guardian_ids = fields.List(Id())


class AnnouncementOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    status = fields.String(required=True)
    urgent = fields.Boolean(required=True)
    requires_ack = fields.Boolean(required=True)
    send_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime(required=True)
    audience = fields.Nested(AudienceOut, metadata={"description": "staff only"})
    counts = fields.Nested(Counts, metadata={"description": "staff only (the school admin or the author)"})
    acknowledged_at = UtcDateTime(allow_none=True, metadata={"description": "recipients only"})
