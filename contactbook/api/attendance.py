"""Attendance: a class's day (post, read, audit) and a student's days; the school's settings."""
from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from service.accounts.logic import login_required

from ..logic import attendance, settings
from ..schemas import (AttendanceChangesOut, AttendancePostIn, ClassDayArgs, ClassDayOut, HistoryArgs, SettingsIn,
                       SettingsOut, StudentAttendanceArgs, StudentAttendanceOut)
from ._common import errors

blp = Blueprint("contactbook_attendance", __name__, url_prefix="",
                description="Attendance (điểm danh): a class's day and a student's days")
blueprints = (blp,)


@blp.route("/classes/<int:class_id>/attendance", methods=["POST"])
@blp.arguments(AttendancePostIn)
@blp.response(200, ClassDayOut)
@errors(blp, 403, 404, 422, e403="a teacher of the class who is not its homeroom teacher",
        e422="a student not in the class, listed twice, or a future date; nothing was stored")
@login_required
def post_attendance(body, class_id):
    """Post (or correct) a class's day: homeroom teacher or school admin.

    Records may cover some or all students. Each change of a status or note is audited; a guardian is
    notified (category `attendance`) once per change of their child's status to late or absent, never
    for present and never for a post that changes nothing. Answers the class's whole day.
    """
    return attendance.post_class_day(g.user, class_id, body["date"], body["records"])


@blp.route("/classes/<int:class_id>/attendance", methods=["GET"])
@blp.arguments(ClassDayArgs, location="query")
@blp.response(200, ClassDayOut)
@errors(blp, 403, 404)
@login_required
def get_class_attendance(args, class_id):
    """A class's day as it stands (teachers' posts, gate check-ins, approved leave): its teachers and admins."""
    return attendance.class_day(g.user, class_id, args["date"])


@blp.route("/classes/<int:class_id>/attendance/history", methods=["GET"])
@blp.arguments(HistoryArgs, location="query")
@blp.response(200, AttendanceChangesOut)
@errors(blp, 403, 404, 422)
@login_required
def get_class_attendance_history(args, class_id):
    """The audit of a class's day, oldest first: who changed which status or note, when, from what."""
    return {"items": attendance.class_changes(g.user, class_id, args["date"])}


@blp.route("/students/<int:student_id>/attendance", methods=["GET"])
@blp.arguments(StudentAttendanceArgs, location="query")
@blp.response(200, StudentAttendanceOut)
@errors(blp, 403, 404, 422, e404="not the caller's child, nor a student of the caller's class or school")
@login_required
def get_student_attendance(args, student_id):
    """A student's days `from`–`to` (default the last 30 days): guardians, the class's teachers, admins.

    Days of an approved leave request read `absent_excused` unless the teacher posted that day otherwise.
    """
    return attendance.student_days(g.user, student_id, args["from_"], args["to"])


@blp.route("/schools/<int:school_id>/contact-book-settings", methods=["GET"])
@blp.response(200, SettingsOut)
@errors(blp, 403, 404)
@login_required
def get_settings(school_id):
    """The school's contact-book settings (its admins and teachers)."""
    return settings.get(g.user, school_id)


@blp.route("/schools/<int:school_id>/contact-book-settings", methods=["PUT"])
@blp.arguments(SettingsIn)
@blp.response(200, SettingsOut)
@errors(blp, 403, 404, 422)
@login_required
def put_settings(body, school_id):
    """Set the start time (a first gate `in` after it is late) and the school days (admins)."""
    return settings.update(g.user, school_id, body.get("start_time"), body.get("school_days"))
