"""The day's page (``GET /students/{id}/contact-book?date=``): what a family opens every morning.

``{date, attendance, checkins, remarks, meals, timetable, announcements}`` for one student and one
local date (default today, school time). Other packages are read through their public functions:

- announcements: ``notifications.logic.announcements_received`` — those that reached the caller's
  inbox that day when the caller is a guardian, those that reached any of the child's guardians
  when the caller is staff;
- remarks: ``remarks.remarks_for_day(student_id, date)``;
- meals: ``nutrition.meals_for_day(student_id, date)``; the timetable with the day's changes:
  ``schedules.timetable_for_day(student_id, date)`` (their packages' public entries).
"""
from __future__ import annotations

import datetime as dt

import nutrition
import schedules
from notifications import announcements_received
from service.roster import logic as roster

from .. import policy
from . import attendance, checkins, common, remarks


def _remarks(student_id: int, day: dt.date) -> list:
    return list(remarks.remarks_for_day(student_id, day))


def day_page(user, student_id: int, day: dt.date | None = None) -> dict:
    student, access = policy.student_access(user, student_id)
    timezone = roster.school_timezone(student.school_id)
    day = day or common.today(timezone)
    since, until = common.day_bounds(day, timezone)
    user_id = getattr(user, "id", user)
    readers = [user_id] if access.guardian else roster.guardian_ids_of_student(student.id)
    return {"student_id": student.id, "date": day,
            "attendance": attendance.day_of(student.id, day),
            "checkins": checkins.for_day(student.id, day),
            "remarks": _remarks(student.id, day),
            "meals": nutrition.meals_for_day(student, day),  # the row read above: no second read
            "timetable": schedules.timetable_for_day(student, day),
            "announcements": announcements_received(readers, since, until)}
