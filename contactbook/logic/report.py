"""The term report (``GET /students/{id}/report?term_id=``): subject averages, learning result,
attendance totals and the term's remarks, as JSON.

Attendance is the other half of the contact book: its totals come from
``contactbook.logic.attendance.totals(student_id, from_date, to_date)`` when that module exists.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging

from service.accounts.models import User

from .. import policy
from . import grades, remarks

log = logging.getLogger("lienlac.contactbook.report")

ATTENDANCE_STATUSES = ("present", "late", "absent_excused", "absent_unexcused")


def attendance_totals(student_id: int, date_from, date_to) -> dict:
    """Totals by attendance status over the term.

    TODO(merge): ``contactbook.logic.attendance.totals(student_id, from_date, to_date)`` is built in
    the attendance branch; until it is merged this answers zeros (``available: false``).
    """
    if importlib.util.find_spec("contactbook.logic.attendance") is not None:
        attendance = importlib.import_module("contactbook.logic.attendance")
        if hasattr(attendance, "totals"):
            return {**dict(attendance.totals(student_id, date_from, date_to)), "available": True}
    return {**{status: 0 for status in ATTENDANCE_STATUSES}, "available": False}


def term_report(user: User, student_id: int, term_id) -> dict:
    student, drafts = policy.report_student_for(user, student_id)
    term = grades.term_for_student(term_id, student)
    summary = grades.term_summary(student, term, drafts)
    return {
        "student_id": student.id, "student_name": student.name, "class_id": student.school_class_id,
        "term": {"id": term.id, "school_year_id": term.school_year_id, "name": term.name,
                 "starts_on": term.starts_on, "ends_on": term.ends_on},
        "subjects": [{k: s[k] for k in ("subject", "assessment", "average")} for s in summary["subjects"]],
        "result": summary["result"],
        "attendance": attendance_totals(student.id, term.starts_on, term.ends_on),
        "remarks": remarks.remarks_between(student.id, term.starts_on, term.ends_on),
    }
