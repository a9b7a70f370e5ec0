"""Contact-book JSON in and out (attendance, gate devices and check-ins, leave requests, the day's page)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

import nutrition
import schedules
from service.schemas import FastSchema, Id, ListArgs, UtcDateTime

from ..logic.attendance import MAX_NOTE
from ..logic.checkins import MAX_EVENTS
from ..logic.leave import MAX_NOTE as MAX_DECISION_NOTE
from ..logic.leave import MAX_REASON
from ..logic.leave import STATUSES as LEAVE_STATUSES
from ..models import SOURCES, STATUSES
from .grades import RemarkOut

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="HH:MM (school time).")
SOURCE_DOC = {"description": "who set the status last: teacher (a post), gate (a check-in), leave (an approved request)"}


# --- attendance -------------------------------------------------------------------------------------
class AttendanceRecordIn(Schema):
    student_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE))


class AttendancePostIn(Schema):
    date = fields.Date(required=True, metadata={"description": "YYYY-MM-DD, the school's local date (today or before)"})
    records = fields.List(fields.Nested(AttendanceRecordIn), required=True, validate=validate.Length(min=1, max=500),
                          metadata={"description": "some or all students of the class; each at most once"})


class AttendanceRecordOut(Schema):
    student_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    note = fields.String(required=True)
    check_in_at = UtcDateTime(allow_none=True, required=True, metadata={"description": "the day's first gate `in`"})
    check_out_at = UtcDateTime(allow_none=True, required=True, metadata={"description": "the day's last gate `out`"})
    source = fields.String(required=True, validate=validate.OneOf(SOURCES), metadata=SOURCE_DOC)
    updated_at = UtcDateTime(required=True)


class ClassDayOut(Schema):
    class_id = Id(required=True)
    date = fields.Date(required=True)
    records = fields.List(fields.Nested(AttendanceRecordOut), required=True,
                          metadata={"description": "every student of the class with a status that day"})


class ClassDayArgs(Schema):
    date = fields.Date(load_default=None, metadata={"description": "default: today (school time)"})


class AttendanceDayOut(Schema):
    date = fields.Date(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    note = fields.String(required=True)
    check_in_at = UtcDateTime(allow_none=True, required=True)
    check_out_at = UtcDateTime(allow_none=True, required=True)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES), metadata=SOURCE_DOC)


class StudentAttendanceArgs(Schema):
    from_ = fields.Date(data_key="from", load_default=None, metadata={"description": "default: 29 days before `to`"})
    to = fields.Date(load_default=None, metadata={"description": "default: today (school time); at most 366 days"})


class StudentAttendanceOut(Schema):
    student_id = Id(required=True)
    from_ = fields.Date(data_key="from", required=True)
    to = fields.Date(required=True)
    items = fields.List(fields.Nested(AttendanceDayOut), required=True,
                        metadata={"description": "days with a status, oldest first"})


class AttendanceChangeOut(Schema):
    student_id = Id(required=True)
    date = fields.Date(required=True)
    old_status = fields.String(allow_none=True, required=True, metadata={"description": "null: the day had no status"})
    new_status = fields.String(required=True)
    old_note = fields.String(allow_none=True, required=True)
    new_note = fields.String(required=True)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    changed_by = Id(allow_none=True, required=True, metadata={"description": "user id; null for a gate device"})
    device_id = Id(allow_none=True, required=True)
    leave_request_id = Id(allow_none=True, required=True)
    changed_at = UtcDateTime(required=True)


class AttendanceChangesOut(Schema):
    items = fields.List(fields.Nested(AttendanceChangeOut), required=True)


class HistoryArgs(Schema):
    date = fields.Date(load_default=None, metadata={"description": "default: today (school time)"})


# --- gate devices and check-ins ---------------------------------------------------------------------
class GateDeviceIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "e.g. \"Cổng chính\""})


class GateDeviceOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    name = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    last_seen_at = UtcDateTime(allow_none=True, required=True, metadata={"description": "its last batch with events to store"})


class GateDeviceCreated(GateDeviceOut):
    api_key = fields.String(required=True, metadata={
        "description": "the device's key for `X-Device-Key`; shown this once, stored only as a hash"})


class GateDeviceList(Schema):
    items = fields.List(fields.Nested(GateDeviceOut), required=True,
                        metadata={"description": "live devices (revoked ones are gone)"})


class CheckinEventIn(Schema):
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=100),
                             metadata={"description": "unique per device: a replay of the same id is stored once"})
    student_id = Id(required=True)
    at = UtcDateTime(required=True, metadata={"description": "when the child passed the gate (with a timezone)"})
    direction = fields.String(required=True, validate=validate.OneOf(["in", "out"]))


class CheckinBatchIn(Schema):
    events = fields.List(fields.Nested(CheckinEventIn), required=True, validate=validate.Length(max=MAX_EVENTS),
                         metadata={"description": f"at most {MAX_EVENTS}; any order (a backlog is fine)"})


class CheckinRejectedOut(Schema):
    event_id = fields.String(required=True)
    reason = fields.String(required=True, metadata={
        "description": "student_not_in_school (unknown, or of another school) | in_future (more than 10 minutes "
                       "ahead of the server) | too_old (more than 31 days ago)"})


class CheckinResultOut(Schema):
    stored = fields.Integer(required=True, metadata={"description": "events stored by this request"})
    duplicates = fields.Integer(required=True, metadata={"description": "events this device had sent before"})
    rejected = fields.List(fields.Nested(CheckinRejectedOut), required=True,
                           metadata={"description": "events refused; nothing is stored for them"})


# --- settings ---------------------------------------------------------------------------------------
class SettingsIn(Schema):
    start_time = fields.String(validate=HHMM, metadata={"description": "a first gate `in` after it is late (default 07:30)"})
    school_days = fields.List(fields.Integer(validate=validate.Range(min=1, max=7)),
                              validate=validate.Length(min=1, max=7),
                              metadata={"description": "ISO weekdays, Monday 1 (default [1, 2, 3, 4, 5])"})


class SettingsOut(Schema):
    school_id = Id(required=True)
    start_time = fields.String(required=True)
    school_days = fields.List(fields.Integer(), required=True)
    timezone = fields.String(required=True)


# --- leave requests ---------------------------------------------------------------------------------
class LeaveIn(Schema):
    from_date = fields.Date(required=True)
    to_date = fields.Date(required=True, metadata={"description": "inclusive; at most 31 days from from_date"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))


class LeaveOut(Schema):
    id = Id(required=True)
    student_id = Id(required=True)
    from_date = fields.Date(required=True)
    to_date = fields.Date(required=True)
    reason = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(LEAVE_STATUSES))
    created_by = Id(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)
    decided_by = Id(allow_none=True, required=True)
    decided_at = UtcDateTime(allow_none=True, required=True)
    decision_note = fields.String(required=True)
    cancelled_at = UtcDateTime(allow_none=True, required=True)


class LeavePage(Schema):
    items = fields.List(fields.Nested(LeaveOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class LeaveListArgs(ListArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(LEAVE_STATUSES))


class DecisionIn(Schema):
    approved = fields.Boolean(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=MAX_DECISION_NOTE))


# --- the day's page ---------------------------------------------------------------------------------
class CheckinOut(Schema):
    at = UtcDateTime(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(["in", "out"]))
    device_id = Id(required=True)
    device_name = fields.String(required=True)


class DayAnnouncementOut(Schema):
    id = Id(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    urgent = fields.Boolean(required=True)
    created_at = UtcDateTime(required=True, metadata={"description": "when it reached the inbox"})


class DayPageArgs(Schema):
    date = fields.Date(load_default=None, metadata={"description": "default: today (school time)"})


class DayPageOut(FastSchema):
    student_id = Id(required=True)
    date = fields.Date(required=True)
    attendance = fields.Nested(AttendanceDayOut, allow_none=True, required=True,
                               metadata={"description": "null: no status that day (yet)"})
    checkins = fields.List(fields.Nested(CheckinOut), required=True, metadata={"description": "in time order"})
    remarks = fields.List(fields.Nested(RemarkOut), required=True, metadata={"description": "the teachers' remarks of the day"})
    meals = fields.List(fields.Nested(nutrition.DayMealOut), required=True,
                        metadata={"description": "the day's meals: what the child ate and allergy flags"})
    timetable = fields.List(fields.Nested(schedules.TimetableDayPeriodOut), required=True,
                            metadata={"description": "the day's periods, with the day's changes applied"})
    announcements = fields.List(fields.Nested(DayAnnouncementOut), required=True,
                                metadata={"description": "announcements received that day"})
