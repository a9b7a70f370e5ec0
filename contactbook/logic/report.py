"""The term report (``GET /students/{id}/report?term_id=``): subject averages, learning result,
attendance totals and the term's remarks, as JSON.

Attendance totals come from ``attendance.totals`` (days with a recorded status in the term).
"""
from __future__ import annotations

import logging

from service.accounts.models import User

from .. import policy
from . import attendance, grades, remarks

log = logging.getLogger("lienlac.contactbook.report")

def attendance_totals(student_id: int, date_from, date_to) -> dict:
    """Days by attendance status over the term (``available``: always true now that attendance is
    recorded by this package; kept in the answer for the app)."""
    return {**attendance.totals(student_id, date_from, date_to), "available": True}


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
