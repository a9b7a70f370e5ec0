"""HTTP: grades (Circular 22/2021), remarks and the term report. Views parse, call, serialize."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.accounts.logic import login_required
from service.schemas import ErrorEnvelope

from ..logic import grades, remarks, report
from ..schemas.grades import (GradeBookArgs, GradeBookOut, GradeChangeList, GradesIn, GradesOut, GradeSubjectIn,
                             GradeSubjectList, GradeSubjectOut, PublishIn, PublishOut, RemarkIn, RemarkListArgs,
                             RemarkOut, RemarkPage, ReportArgs, ReportOut, StudentGradesArgs, StudentGradesOut)

grades_blp = Blueprint("contactbook_grades", __name__, url_prefix="",
                       description="Grades by Circular 22/2021/TT-BGDĐT: grade book, publishing, a student's grades")
remarks_blp = Blueprint("contactbook_remarks", __name__, url_prefix="",
                        description="Teachers' remarks about a student, and the term report")
blueprints = (grades_blp, remarks_blp)

_TEXT = {403: "the caller's role may not do this (e.g. a teacher of another subject of the class)",
         404: "no such class or student, or not visible to the caller", 422: "invalid fields; nothing stored"}


def _errors(blp, *statuses):
    def decorate(view):
        for status in reversed(statuses):
            view = blp.alt_response(status, schema=ErrorEnvelope, description=_TEXT[status])(view)
        return view

    return decorate


# --- grades -----------------------------------------------------------------------------------------
@grades_blp.route("/classes/<int:class_id>/grades")
class ClassGrades(MethodView):
    @grades_blp.arguments(GradesIn)
    @grades_blp.response(200, GradesOut)
    @_errors(grades_blp, 403, 404, 422)
    @login_required
    def put(self, body, class_id):
        """Enter or correct one assessment of a subject for students of the class (a draft until published).

        The class's teacher of this subject, or an admin. Scores 0–10 with at most one decimal
        (comment-assessed subjects: "Đ" / "CĐ"); all or nothing. After publishing, every change is
        audited and the guardians of the students concerned are told (category ``grade``).
        """
        return grades.put_grades(g.user, class_id, body["term_id"], body["subject"], body["kind"],
                                 body.get("slot"), body["scores"])

    @grades_blp.arguments(GradeBookArgs, location="query")
    @grades_blp.response(200, GradeBookOut)
    @_errors(grades_blp, 403, 404, 422)
    @login_required
    def get(self, args, class_id):
        """The class's grade book for one subject and term, drafts included (its teachers, admins)."""
        return grades.class_grade_book(g.user, class_id, args["term_id"], args["subject"])


@grades_blp.route("/classes/<int:class_id>/grades/publish", methods=["POST"])
@grades_blp.arguments(PublishIn)
@grades_blp.response(200, PublishOut)
@_errors(grades_blp, 403, 404, 422)
@login_required
def publish_grades(body, class_id):
    """Publish a subject's scores for a term: guardians see them and are notified once (category ``grade``)."""
    return grades.publish(g.user, class_id, body["term_id"], body["subject"])


@grades_blp.route("/classes/<int:class_id>/grades/changes")
@grades_blp.arguments(GradeBookArgs, location="query")
@grades_blp.response(200, GradeChangeList)
@_errors(grades_blp, 403, 404, 422)
@login_required
def grade_changes(args, class_id):
    """Changes made to a published subject: who, when, old and new (its teachers, admins)."""
    return {"items": grades.grade_changes(g.user, class_id, args["term_id"], args["subject"])}


@grades_blp.route("/classes/<int:class_id>/grade-subjects")
class GradeSubjects(MethodView):
    @grades_blp.response(200, GradeSubjectList)
    @_errors(grades_blp, 403, 404)
    @login_required
    def get(self, class_id):
        """The class's subjects and how each is assessed (scored or comment, regular assessments a term)."""
        return {"items": grades.list_grade_subjects(g.user, class_id)}

    @grades_blp.arguments(GradeSubjectIn)
    @grades_blp.response(200, GradeSubjectOut)
    @_errors(grades_blp, 403, 404, 422)
    @login_required
    def put(self, body, class_id):
        """Set a subject's yearly periods (→ 2, 3 or 4 regular assessments a term) or assessment (admin)."""
        return grades.set_grade_subject(g.user, class_id, body["subject"], body["yearly_periods"], body["assessment"])


@grades_blp.route("/students/<int:student_id>/grades")
@grades_blp.arguments(StudentGradesArgs, location="query")
@grades_blp.response(200, StudentGradesOut)
@_errors(grades_blp, 403, 404, 422)
@login_required
def student_grades(args, student_id):
    """A student's grades for a term (``term_id``) or the year's averages (``year_id``).

    Guardians see published scores only; the class's teachers and the admins see drafts too.
    """
    if "term_id" in args:
        return grades.student_term_grades(g.user, student_id, args["term_id"])
    return grades.student_year_grades(g.user, student_id, args["year_id"])


# --- remarks and the report -------------------------------------------------------------------------
@remarks_blp.route("/students/<int:student_id>/remarks")
class StudentRemarks(MethodView):
    @remarks_blp.arguments(RemarkIn)
    @remarks_blp.response(201, RemarkOut)
    @_errors(remarks_blp, 403, 404, 422)
    @login_required
    def post(self, body, student_id):
        """A remark about the student (the class's teachers, admins); the guardians are notified (``grade``)."""
        return remarks.add_remark(g.user, student_id, body["body"], body.get("date")), 201

    @remarks_blp.arguments(RemarkListArgs, location="query")
    @remarks_blp.response(200, RemarkPage)
    @_errors(remarks_blp, 403, 404, 422)
    @login_required
    def get(self, args, student_id):
        """The student's remarks, newest first, optionally ``from``/``to`` (dates, inclusive)."""
        return remarks.list_remarks(g.user, student_id, args.get("date_from"), args.get("date_to"),
                                    args["limit"], args["cursor"])


@remarks_blp.route("/students/<int:student_id>/report")
@remarks_blp.arguments(ReportArgs, location="query")
@remarks_blp.response(200, ReportOut)
@_errors(remarks_blp, 403, 404, 422)
@login_required
def term_report(args, student_id):
    """The term report: subject averages, learning result, attendance totals and the term's remarks."""
    return report.term_report(g.user, student_id, args["term_id"])
