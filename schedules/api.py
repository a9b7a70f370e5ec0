"""HTTP: timetables, changes, the week view, events and sign-ups, the iCalendar feed (API.md "Schedules")."""
from __future__ import annotations

import json

from flask import Response, g, url_for
from flask_smorest import Blueprint

from service.accounts.logic import login_required
from service.schemas import ErrorEnvelope

from . import logic
from .schemas import dump_week
from .schemas import (StudentCalendarArgs, StudentCalendarOut, TimetableChangeIn, TimetableChangeList, TimetableChangeOut, TimetableChangeRangeArgs, EventIn, EventOut,
                      CalendarFeedOut, EventSignupIn, EventSignupOut, TimetableArgs, TimetableIn, TimetableOut, TimetableWeekArgs, TimetableWeekOut)

classes_blp = Blueprint("schedules_classes", __name__, url_prefix="/classes",
                        description="Class timetables (thời khóa biểu) and their changes")
students_blp = Blueprint("schedules_students", __name__, url_prefix="/students",
                         description="A student's week and calendar")
school_events_blp = Blueprint("schedules_school_events", __name__, url_prefix="/schools",
                              description="School events (holidays, exams, meetings, activities)")
events_blp = Blueprint("schedules_events", __name__, url_prefix="/events", description="Event sign-ups")
feed_blp = Blueprint("schedules_feed", __name__, url_prefix="/me/calendar-feed",
                     description="The caller's iCalendar feed URL")
ics_blp = Blueprint("schedules_ics", __name__, url_prefix="/calendar",
                    description="iCalendar feeds (no bearer token: the URL is the secret)")
blueprints = (classes_blp, students_blp, school_events_blp, events_blp, feed_blp, ics_blp)

NO_CLASS = "no such class for the caller"
NO_STUDENT = "no such student for the caller (e.g. another family's child)"


# --- timetables -----------------------------------------------------------------------------------
@classes_blp.route("/<int:class_id>/timetable", methods=["PUT"])
@classes_blp.arguments(TimetableIn)
@classes_blp.response(200, TimetableOut)
@classes_blp.alt_response(403, schema=ErrorEnvelope, description="not an admin of the school")
@classes_blp.alt_response(404, schema=ErrorEnvelope, description=NO_CLASS)
@classes_blp.alt_response(409, schema=ErrorEnvelope, description="a teacher would be in two classes at once; "
                          "`fields` name each clash (class, weekday, period, times)")
@classes_blp.alt_response(422, schema=ErrorEnvelope, description="bad periods, a teacher not of the school, "
                          "a term of another school: nothing stored")
@login_required
def put_timetable(body, class_id):
    """Replace the class's timetable for the term (the school's admins), in one transaction."""
    return logic.set_timetable(g.user, class_id, body["term_id"], body["periods"])


@classes_blp.route("/<int:class_id>/timetable", methods=["GET"])
@classes_blp.arguments(TimetableArgs, location="query")
@classes_blp.response(200, TimetableOut)
@classes_blp.alt_response(404, schema=ErrorEnvelope, description=NO_CLASS + ", or no term today")
@login_required
def get_timetable(args, class_id):
    """The class's timetable for a term (its teachers, the school's staff, guardians of its students)."""
    return logic.get_timetable(g.user, class_id, args["term_id"])


@classes_blp.route("/<int:class_id>/timetable/changes", methods=["POST"])
@classes_blp.arguments(TimetableChangeIn)
@classes_blp.response(201, TimetableChangeOut, description="recorded (or replaced the slot's earlier change); "
                      "guardians and the teachers concerned are told")
@classes_blp.alt_response(200, schema=TimetableChangeOut, description="the very same change was recorded before: nobody is told again")
@classes_blp.alt_response(403, schema=ErrorEnvelope, description="not an admin or the homeroom teacher")
@classes_blp.alt_response(404, schema=ErrorEnvelope, description=NO_CLASS)
@classes_blp.alt_response(422, schema=ErrorEnvelope, description="no such period on that date, or a bad substitute or move")
@login_required
def post_change(body, class_id):
    """A change for one period on one date: cancelled, a substitute teacher, or moved (one per slot)."""
    view, changed = logic.post_change(g.user, class_id, body)
    return view, (201 if changed else 200)


@classes_blp.route("/<int:class_id>/timetable/changes", methods=["GET"])
@classes_blp.arguments(TimetableChangeRangeArgs, location="query")
@classes_blp.response(200, TimetableChangeList)
@classes_blp.alt_response(404, schema=ErrorEnvelope, description=NO_CLASS)
@login_required
def list_changes(args, class_id):
    """The class's changes dated from..to."""
    return {"items": logic.list_changes(g.user, class_id, args["from_"], args["to"])}


# --- a student's week and calendar ----------------------------------------------------------------
@students_blp.route("/<int:student_id>/timetable", methods=["GET"])
@students_blp.arguments(TimetableWeekArgs, location="query")
@students_blp.response(200, TimetableWeekOut)
@students_blp.alt_response(404, schema=ErrorEnvelope, description=NO_STUDENT)
@login_required
def student_week(args, student_id):
    """The student's ISO week, Monday to Sunday, with the changes applied (dates in school time)."""
    view = logic.student_week(g.user, student_id, args["week"])
    return Response(json.dumps(dump_week(view), ensure_ascii=False, separators=(",", ":")),
                    mimetype="application/json")  # the documented TimetableWeekOut, dumped by hand


@students_blp.route("/<int:student_id>/calendar", methods=["GET"])
@students_blp.arguments(StudentCalendarArgs, location="query")
@students_blp.response(200, StudentCalendarOut)
@students_blp.alt_response(404, schema=ErrorEnvelope, description=NO_STUDENT)
@students_blp.alt_response(422, schema=ErrorEnvelope, description="to before from, or more than a year")
@login_required
def student_calendar(args, student_id):
    """The events of the student's school, grade and class between two dates, with their sign-up state."""
    return logic.student_calendar(g.user, student_id, args["from_"], args["to"])


# --- events ---------------------------------------------------------------------------------------
@school_events_blp.route("/<int:school_id>/events", methods=["POST"])
@school_events_blp.arguments(EventIn)
@school_events_blp.response(201, EventOut)
@school_events_blp.alt_response(403, schema=ErrorEnvelope, description="not an admin of the school")
@school_events_blp.alt_response(404, schema=ErrorEnvelope, description="no such school for the caller")
@login_required
def create_event(body, school_id):
    """Add an event for the school, some grades or classes; the audience's guardians are told."""
    return logic.create_event(g.user, school_id, body), 201


@events_blp.route("/<int:event_id>/signups", methods=["POST"])
@events_blp.arguments(EventSignupIn)
@events_blp.response(201, EventSignupOut)
@events_blp.alt_response(200, schema=EventSignupOut, description="the child was signed up already")
@events_blp.alt_response(403, schema=ErrorEnvelope, description="not a guardian of the child")
@events_blp.alt_response(404, schema=ErrorEnvelope, description="no such event for this child, or no such child")
@events_blp.alt_response(409, schema=ErrorEnvelope, description="full, no sign-up for this event, or it has started")
@login_required
def sign_up(body, event_id):
    """Sign one's child up for an event."""
    view, created = logic.sign_up(g.user, event_id, body["student_id"])
    return view, (201 if created else 200)


@events_blp.route("/<int:event_id>/signups/<int:student_id>", methods=["DELETE"])
@events_blp.response(204)
@events_blp.alt_response(404, schema=ErrorEnvelope, description="not signed up, or no such event or child")
@login_required
def cancel_signup(event_id, student_id):
    """Take a child's sign-up back."""
    logic.cancel_signup(g.user, event_id, student_id)
    return "", 204


# --- the iCalendar feed ---------------------------------------------------------------------------
@feed_blp.route("", methods=["POST"])
@feed_blp.response(200, CalendarFeedOut)
@login_required
def issue_feed():
    """A new calendar feed URL for the caller's phone calendar (the previous URL stops working)."""
    token = logic.issue_feed(g.user)
    return {"url": url_for("schedules_ics.calendar_feed", feed_token=token, _external=True)}


@feed_blp.route("", methods=["DELETE"])
@feed_blp.response(204)
@login_required
def revoke_feed():
    """Revoke the caller's calendar feed URL (it answers 404 from now on)."""
    logic.revoke_feed(g.user)
    return "", 204


@ics_blp.route("/<string:feed_token>.ics", methods=["GET"])
@ics_blp.doc(security=[], responses={"200": {"description": "RFC 5545 calendar",
                                             "content": {"text/calendar": {"schema": {"type": "string"}}}}})
@ics_blp.alt_response(404, schema=ErrorEnvelope, description="unknown or revoked feed token")
def calendar_feed(feed_token):
    """The iCalendar feed (no bearer token: the URL's secret token is the credential)."""
    body = logic.build_feed(feed_token)
    return Response(body, status=200, content_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300",
                             "Content-Disposition": 'inline; filename="lienlac.ics"'})
