"""Schedules JSON in and out (paths and names fixed by API.md "Schedules")."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.schemas import FastSchema, Id, UtcDateTime

from .logic.common import KINDS
from .logic.events import KINDS as EVENT_KINDS

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="A time HH:MM (00:00–23:59), school time.")
WEEK = validate.Regexp(r"^\d{4}-W\d{2}$", error="An ISO week like 2026-W48.")
STATUSES = ("scheduled", "cancelled", "substitute", "moved")


# --- timetables -----------------------------------------------------------------------------------
class TimetablePeriodIn(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(1, 7), metadata={"description": "1 = Monday … 7 = Sunday"})
    period = fields.Integer(required=True, validate=validate.Range(1, 20))
    start = fields.String(required=True, validate=HHMM, metadata={"example": "07:00"})
    end = fields.String(required=True, validate=HHMM, metadata={"example": "07:45"})
    subject = fields.String(required=True, validate=validate.Length(1, 100))
    teacher_id = Id(allow_none=True, load_default=None, metadata={"description": "a teacher (or admin) of the school"})
    room = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=50))


class TimetableIn(Schema):
    term_id = Id(required=True)
    periods = fields.List(fields.Nested(TimetablePeriodIn), required=True, validate=validate.Length(max=200))


class TimetableArgs(Schema):
    term_id = Id(load_default=None, metadata={"description": "default: the term running today (school time)"})


class TimetableTeacherRef(Schema):
    id = Id(required=True)
    name = fields.String(required=True)


class TimetableTermRef(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class TimetablePeriodOut(Schema):
    weekday = fields.Integer(required=True)
    period = fields.Integer(required=True)
    start = fields.String(required=True)
    end = fields.String(required=True)
    subject = fields.String(required=True)
    teacher_id = Id(allow_none=True)
    teacher = fields.Nested(TimetableTeacherRef, allow_none=True)
    room = fields.String(allow_none=True)


class TimetableOut(FastSchema):
    class_id = Id(required=True)
    term_id = Id(required=True)
    term = fields.Nested(TimetableTermRef, required=True)
    periods = fields.List(fields.Nested(TimetablePeriodOut), required=True)


# --- changes --------------------------------------------------------------------------------------
class TimetableChangeIn(Schema):
    date = fields.Date(required=True, metadata={"description": "school-time date of the period"})
    period = fields.Integer(required=True, validate=validate.Range(1, 20))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    teacher_id = Id(allow_none=True, load_default=None, metadata={"description": "substitute: the teacher who stands in"})
    to_date = fields.Date(allow_none=True, load_default=None, metadata={"description": "moved: the new date (default: the same)"})
    to_period = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(1, 20),
                               metadata={"description": "moved: the new period"})
    to_start = fields.String(allow_none=True, load_default=None, validate=HHMM,
                             metadata={"description": "moved: start, when the new slot is not in the timetable"})
    to_end = fields.String(allow_none=True, load_default=None, validate=HHMM)
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))


class TimetableChangeOut(Schema):
    id = Id(required=True)
    class_id = Id(required=True)
    date = fields.Date(required=True)
    period = fields.Integer(required=True)
    kind = fields.String(required=True)
    teacher_id = Id(allow_none=True, metadata={"description": "the substitute"})
    to_date = fields.Date(allow_none=True)
    to_period = fields.Integer(allow_none=True)
    to_start = fields.String(allow_none=True)
    to_end = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    subject = fields.String(required=True)
    regular_teacher_id = Id(allow_none=True)
    start = fields.String(required=True)
    end = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class TimetableChangeRangeArgs(Schema):
    from_ = fields.Date(load_default=None, data_key="from", metadata={"description": "default: 7 days ago"})
    to = fields.Date(load_default=None, metadata={"description": "default: from + 67 days; at most a year"})


class TimetableChangeList(Schema):
    items = fields.List(fields.Nested(TimetableChangeOut), required=True)


# --- the week -------------------------------------------------------------------------------------
class TimetableWeekArgs(Schema):
    week = fields.String(load_default=None, validate=WEEK,
                         metadata={"description": "ISO week, e.g. 2026-W48; default: this week (school time)"})


class TimetableSlotRef(Schema):
    date = fields.Date(required=True)
    period = fields.Integer(required=True)
    start = fields.String(allow_none=True)
    end = fields.String(allow_none=True)


class TimetableDayPeriodOut(Schema):
    period = fields.Integer(required=True)
    start = fields.String(required=True)
    end = fields.String(required=True)
    subject = fields.String(required=True)
    teacher = fields.Nested(TimetableTeacherRef, allow_none=True, metadata={"description": "the substitute on a substitute day"})
    room = fields.String(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    note = fields.String(allow_none=True)
    change_id = Id(allow_none=True)
    moved_to = fields.Nested(TimetableSlotRef, allow_none=True, metadata={"description": "moved away: where to"})
    moved_from = fields.Nested(TimetableSlotRef, allow_none=True, metadata={"description": "moved here: from where"})


class TimetableDayOut(Schema):
    date = fields.Date(required=True)
    periods = fields.List(fields.Nested(TimetableDayPeriodOut), required=True)


class TimetableWeekOut(FastSchema):
    week = fields.String(required=True)
    student_id = Id(required=True)
    class_id = Id(allow_none=True)
    timezone = fields.String(required=True)
    days = fields.List(fields.Nested(TimetableDayOut), required=True, metadata={"description": "Monday to Sunday"})


# --- events ---------------------------------------------------------------------------------------
class EventAudienceIn(Schema):
    grades = fields.List(fields.Integer(validate=validate.Range(1, 12)), load_default=list,
                         validate=validate.Length(max=12))
    class_ids = fields.List(Id(), load_default=list, validate=validate.Length(max=500))


class EventIn(Schema):
    title = fields.String(required=True, validate=validate.Length(1, 200))
    description = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=5000))
    kind = fields.String(load_default="other", validate=validate.OneOf(EVENT_KINDS))
    location = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    starts_at = UtcDateTime(required=True)
    ends_at = UtcDateTime(required=True)
    audience = fields.Nested(EventAudienceIn, load_default=dict,
                             metadata={"description": "grades and/or classes; empty: the whole school"})
    capacity = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(1, 100000))
    signup = fields.Boolean(load_default=False)


class EventAudienceOut(Schema):
    grades = fields.List(fields.Integer(), required=True)
    class_ids = fields.List(Id(), required=True)


class EventOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    kind = fields.String(required=True)
    location = fields.String(allow_none=True)
    starts_at = UtcDateTime(required=True)
    ends_at = UtcDateTime(required=True)
    audience = fields.Nested(EventAudienceOut, required=True)
    signup = fields.Boolean(required=True)
    capacity = fields.Integer(allow_none=True)
    signups = fields.Integer(required=True)
    spots_left = fields.Integer(allow_none=True)
    signed_up = fields.Boolean(metadata={"description": "in a student's calendar: this student is signed up"})
    created_at = UtcDateTime(required=True)


class StudentCalendarArgs(Schema):
    from_ = fields.Date(load_default=None, data_key="from", metadata={"description": "default: today (school time)"})
    to = fields.Date(load_default=None, metadata={"description": "default: from + 30 days; at most a year"})


class StudentCalendarOut(Schema):
    student_id = Id(required=True)
    from_ = fields.Date(required=True, data_key="from", attribute="from")
    to = fields.Date(required=True)
    timezone = fields.String(required=True)
    items = fields.List(fields.Nested(EventOut), required=True)


class EventSignupIn(Schema):
    student_id = Id(required=True)


class EventSignupOut(Schema):
    id = Id(required=True)
    event_id = Id(required=True)
    student_id = Id(required=True)
    signed_up_by = Id(allow_none=True)
    created_at = UtcDateTime(required=True)


class CalendarFeedOut(Schema):
    url = fields.String(required=True, metadata={"description": "absolute https URL of the .ics feed; "
                                                                "shown once (only its hash is kept)"})


# --- the week, serialised by hand ------------------------------------------------------------------
def _id(value):
    return None if value is None else str(value)


def _slot(slot):
    return None if slot is None else {"date": slot["date"].isoformat(), "period": slot["period"],
                                      "start": slot["start"], "end": slot["end"]}


def dump_week(view: dict) -> dict:
    """``TimetableWeekOut().dump(view)``, written out: the week is the page families open most and
    marshmallow spends more on its ~50 nested periods than the database does. A test holds the two equal."""
    return {"week": view["week"], "student_id": _id(view["student_id"]), "class_id": _id(view["class_id"]),
            "timezone": view["timezone"],
            "days": [{"date": day["date"].isoformat(), "periods": [
                {"period": p["period"], "start": p["start"], "end": p["end"], "subject": p["subject"],
                 "teacher": None if p["teacher"] is None else {"id": str(p["teacher"]["id"]),
                                                               "name": p["teacher"]["name"]},
                 "room": p["room"], "status": p["status"], "note": p["note"], "change_id": _id(p["change_id"]),
                 "moved_to": _slot(p["moved_to"]), "moved_from": _slot(p["moved_from"])}
                for p in day["periods"]]} for day in view["days"]]}
