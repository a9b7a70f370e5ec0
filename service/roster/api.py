"""HTTP: roster administration (school admin) and the class roster teachers and the cafeteria read.

The views parse, call ``service.roster.actions`` (acting user first) and serialize; who may call
what is decided by ``service.roster.policy`` (built on ``service.permissions``):

- School-level administration (``/schools/{id}/...`` writes, staff, the student list) needs the
  ``admin`` role in that school. Someone holding no such role anywhere (a guardian, a teacher)
  gets 403; the admin of another school gets 404.
- Creating a school is not an API call: schools are created by the operator, with
  ``lienlac create-school`` (a school and its first admin) or by a OneRoster import; the demo
  with ``lienlac seed-demo``. A school admin runs their own school only.
- ``GET /schools/{id}`` and its years: the school's staff and the guardians of its students.
- A class: its teachers and the admin and cafeteria staff of its school see it; the guardians of
  a student in it see the class itself (name, teachers) but not its student list.
- A student: their guardians, the teachers of their class, the school's admin and cafeteria.
  Only the admin edits. Guardians lists show phone numbers to staff; a guardian sees the other
  guardians' names and relationships, never their phone numbers.
"""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from . import actions
from . import logic as roster
from ..accounts.logic import login_required
from ..schemas import ErrorEnvelope, ListArgs
from .schemas import (ClassIn, ClassListArgs, ClassOut, ClassPage, ClassPatch, ClassTeacherDeleteArgs,
                      ClassTeacherIn, GuardianIn, GuardianInviteList, GuardianOut, GuardianPage, GuardianPhoneIn,
                      InviteIn, InviteOut, SchoolOut, StaffDeleteArgs, StaffIn, StaffListArgs, StaffOut, StaffPage,
                      StudentIn, StudentListArgs, StudentOut, StudentPage, StudentPatch, TermIn, TermOut, YearIn,
                      YearOut, YearPage)

schools_blp = Blueprint("roster_schools", __name__, url_prefix="",
                        description="Schools, school years and terms, staff (school admin)")
classes_blp = Blueprint("roster_classes", __name__, url_prefix="",
                        description="Classes, their teachers and their students")
students_blp = Blueprint("roster_students", __name__, url_prefix="",
                         description="Students, their guardians and invite codes")
blueprints = (schools_blp, classes_blp, students_blp)


def _errors(blp, *statuses):
    """Document the error envelope for these statuses."""
    text = {403: "the caller's role may never do this", 404: "no such thing, or not visible to the caller",
            409: "conflicts with existing data", 422: "invalid fields"}

    def decorate(view):
        for status in reversed(statuses):
            view = blp.alt_response(status, schema=ErrorEnvelope, description=text[status])(view)
        return view

    return decorate


# --- serialising ------------------------------------------------------------------------------
def _years_out(years) -> list[dict]:
    terms = roster.terms_by_year([y.id for y in years])
    return [{"id": y.id, "school_id": y.school_id, "name": y.name, "starts_on": y.starts_on, "ends_on": y.ends_on,
             "terms": terms.get(y.id, [])} for y in years]


def _classes_out(classes) -> list[dict]:
    ids = [c.id for c in classes]
    teachers = roster.teachers_by_class(ids)
    counts = roster.student_counts(ids)
    names = roster.user_names(c.homeroom_teacher_id for c in classes if c.homeroom_teacher_id)
    return [{"id": c.id, "school_id": c.school_id, "school_year_id": c.school_year_id, "name": c.name,
             "grade": c.grade, "homeroom_teacher_id": c.homeroom_teacher_id,
             "homeroom_teacher_name": names.get(c.homeroom_teacher_id), "teachers": teachers.get(c.id, []),
             "student_count": counts.get(c.id, 0)} for c in classes]


def _students_out(students, private: bool) -> list[dict]:
    """``private``: include the national id (admin, the class's teachers, the student's guardians)."""
    guardians = roster.guardians_by_student([s.id for s in students])
    return [{"id": s.id, "school_id": s.school_id, "school_class_id": s.school_class_id, "name": s.name,
             "birth_date": s.birth_date, "national_id": s.national_id if private else None,
             "guardian_ids": guardians.get(s.id, [])} for s in students]


def _page(page: dict, render) -> dict:
    return {"items": render(page["items"]), "next_cursor": page["next_cursor"]}


def _staff_out(rows) -> list[dict]:
    return [{"user_id": r.user_id, "school_id": r.school_id, "name": r.user.name, "phone": r.user.phone,
             "role": r.role} for r in rows]


# --- schools, years, terms --------------------------------------------------------------------
@schools_blp.route("/schools/<int:school_id>")
@schools_blp.response(200, SchoolOut)
@_errors(schools_blp, 403, 404)
@login_required
def get_school(school_id):
    """A school (name, timezone): for its staff and its students' guardians."""
    return actions.get_school(g.user, school_id)


@schools_blp.route("/schools/<int:school_id>/years")
class SchoolYears(MethodView):
    @schools_blp.arguments(ListArgs, location="query")
    @schools_blp.response(200, YearPage)
    @_errors(schools_blp, 403, 404)
    @login_required
    def get(self, args, school_id):
        """The school years (năm học) with their terms (học kỳ), oldest first."""
        return _page(actions.list_years(g.user, school_id, args["limit"], args["cursor"]), _years_out)

    @schools_blp.arguments(YearIn)
    @schools_blp.response(201, YearOut)
    @_errors(schools_blp, 403, 404, 409, 422)
    @login_required
    def post(self, body, school_id):
        """Add a school year (admin). Years of a school do not overlap."""
        year = actions.create_school_year(g.user, school_id, body["name"], body["starts_on"], body["ends_on"])
        return _years_out([year])[0], 201


@schools_blp.route("/years/<int:year_id>/terms", methods=["POST"])
@schools_blp.arguments(TermIn)
@schools_blp.response(201, TermOut)
@_errors(schools_blp, 403, 404, 409, 422)
@login_required
def create_term(body, year_id):
    """Add a term to a school year (admin). It lies inside the year; terms do not overlap."""
    return actions.create_term(g.user, year_id, body["name"], body["starts_on"], body["ends_on"]), 201


@schools_blp.route("/terms/<int:term_id>")
@schools_blp.response(200, TermOut)
@_errors(schools_blp, 403, 404)
@login_required
def get_term(term_id):
    """A term (học kỳ): for its school's staff and its students' guardians."""
    return actions.get_term(g.user, term_id)


# --- staff --------------------------------------------------------------------------------------
@schools_blp.route("/schools/<int:school_id>/staff")
class Staff(MethodView):
    @schools_blp.arguments(StaffListArgs, location="query")
    @schools_blp.response(200, StaffPage)
    @_errors(schools_blp, 403, 404)
    @login_required
    def get(self, args, school_id):
        """The school's staff, one item per role (admin)."""
        page = actions.list_staff(g.user, school_id, args.get("role"), args["limit"], args["cursor"])
        return _page(page, _staff_out)

    @schools_blp.arguments(StaffIn)
    @schools_blp.response(201, StaffOut)
    @_errors(schools_blp, 403, 404, 422)
    @login_required
    def post(self, body, school_id):
        """Give a person a staff role (admin). Found by phone number, or created: they sign in by OTP."""
        user, row = actions.add_staff_by_phone(g.user, school_id, body["phone"], body["name"], body["role"])
        return {"user_id": user.id, "school_id": school_id, "name": user.name, "phone": user.phone,
                "role": row.role}, 201


@schools_blp.route("/schools/<int:school_id>/staff/<int:user_id>", methods=["DELETE"])
@schools_blp.arguments(StaffDeleteArgs, location="query")
@schools_blp.response(204)
@_errors(schools_blp, 403, 404, 409)
@login_required
def remove_staff(args, school_id, user_id):
    """Take a staff role away (admin); without ``role``, every role in the school.

    A former teacher also leaves the school's classes. The last admin cannot be removed (409).
    """
    actions.remove_staff(g.user, school_id, user_id, args.get("role"))
    return "", 204


# --- classes --------------------------------------------------------------------------------
@classes_blp.route("/schools/<int:school_id>/classes")
class SchoolClasses(MethodView):
    @classes_blp.arguments(ClassListArgs, location="query")
    @classes_blp.response(200, ClassPage)
    @_errors(classes_blp, 403, 404)
    @login_required
    def get(self, args, school_id):
        """The school's classes (admin, cafeteria), filtered by grade or school year."""
        page = actions.list_classes(g.user, school_id, args.get("grade"), args.get("school_year_id"),
                                    args["limit"], args["cursor"])
        return _page(page, _classes_out)

    @classes_blp.arguments(ClassIn)
    @classes_blp.response(201, ClassOut)
    @_errors(classes_blp, 403, 404, 422)
    @login_required
    def post(self, body, school_id):
        """Add a class (admin); the homeroom teacher must hold the teacher role in the school."""
        klass = actions.create_class(g.user, school_id, body["name"], grade=body.get("grade"),
                                     homeroom_teacher_id=body.get("homeroom_teacher_id"),
                                     school_year_id=body.get("school_year_id"))
        return _classes_out([klass])[0], 201


@classes_blp.route("/classes/<int:class_id>")
class Class(MethodView):
    @classes_blp.response(200, ClassOut)
    @_errors(classes_blp, 404)
    @login_required
    def get(self, class_id):
        """A class with its homeroom and subject teachers (its teachers, school staff, its families)."""
        return _classes_out([actions.get_class(g.user, class_id)])[0]

    @classes_blp.arguments(ClassPatch)
    @classes_blp.response(200, ClassOut)
    @_errors(classes_blp, 403, 404, 422)
    @login_required
    def patch(self, body, class_id):
        """Rename a class, change its grade, school year or homeroom teacher (admin; null clears)."""
        return _classes_out([actions.update_class(g.user, class_id, body)])[0]


@classes_blp.route("/classes/<int:class_id>/teachers", methods=["POST"])
@classes_blp.arguments(ClassTeacherIn)
@classes_blp.response(201, ClassOut)
@_errors(classes_blp, 403, 404, 422)
@login_required
def add_class_teacher(body, class_id):
    """Add a subject teacher to a class (admin); they must hold the teacher role in the school."""
    klass = actions.add_subject_teacher(g.user, class_id, body["teacher_id"], body["subject"])
    return _classes_out([klass])[0], 201


@classes_blp.route("/classes/<int:class_id>/teachers/<int:teacher_id>", methods=["DELETE"])
@classes_blp.arguments(ClassTeacherDeleteArgs, location="query")
@classes_blp.response(204)
@_errors(classes_blp, 403, 404)
@login_required
def remove_class_teacher(args, class_id, teacher_id):
    """Remove a subject teacher from a class (admin): one ``subject``, or all of theirs."""
    actions.remove_subject_teacher(g.user, class_id, teacher_id, args.get("subject"))
    return "", 204


@classes_blp.route("/classes/<int:class_id>/students")
@classes_blp.arguments(ListArgs, location="query")
@classes_blp.response(200, StudentPage)
@_errors(classes_blp, 403, 404)
@login_required
def class_students(args, class_id):
    """The class roster: its teachers, the school's admin and cafeteria (guardians: 403)."""
    page, private = actions.class_students(g.user, class_id, args["limit"], args["cursor"])
    return _page(page, lambda rows: _students_out(rows, private))


# --- students -------------------------------------------------------------------------------
@students_blp.route("/schools/<int:school_id>/students")
class SchoolStudents(MethodView):
    @students_blp.arguments(StudentListArgs, location="query")
    @students_blp.response(200, StudentPage)
    @_errors(students_blp, 403, 404)
    @login_required
    def get(self, args, school_id):
        """The school's students (admin), optionally of one class; by id, with a cursor."""
        page = actions.list_students(g.user, school_id, args.get("class_id"), args["limit"], args["cursor"])
        return _page(page, lambda rows: _students_out(rows, True))

    @students_blp.arguments(StudentIn)
    @students_blp.response(201, StudentOut)
    @_errors(students_blp, 403, 404, 409, 422)
    @login_required
    def post(self, body, school_id):
        """Add a student (admin), optionally in a class of the school and with a national id."""
        student = actions.create_student(g.user, school_id, body["name"], class_id=body.get("class_id"),
                                         national_id=body.get("national_id"), birth_date=body.get("birth_date"))
        return _students_out([student], True)[0], 201


@students_blp.route("/students/<int:student_id>")
class StudentView(MethodView):
    @students_blp.response(200, StudentOut)
    @_errors(students_blp, 404)
    @login_required
    def get(self, student_id):
        """A student: for their guardians, their class's teachers and the school's admin and cafeteria."""
        student, private = actions.get_student(g.user, student_id)
        return _students_out([student], private)[0]

    @students_blp.arguments(StudentPatch)
    @students_blp.response(200, StudentOut)
    @_errors(students_blp, 403, 404, 409, 422)
    @login_required
    def patch(self, body, student_id):
        """Edit a student (admin): name, birth date, national id, or move to another class (null: none)."""
        return _students_out([actions.update_student(g.user, student_id, body)], True)[0]


@students_blp.route("/students/<int:student_id>/guardians")
class StudentGuardians(MethodView):
    @students_blp.response(200, GuardianPage)
    @_errors(students_blp, 403, 404)
    @login_required
    def get(self, student_id):
        """The student's guardians. Staff see phone numbers; a guardian sees only their own."""
        return {"items": actions.guardians(g.user, student_id), "next_cursor": None}

    @students_blp.arguments(GuardianIn)
    @students_blp.response(201, GuardianOut)
    @_errors(students_blp, 403, 404, 422)
    @login_required
    def post(self, body, student_id):
        """Link a guardian (admin), found by phone number or created: they sign in by OTP."""
        user, link = actions.add_guardian_by_phone(g.user, student_id, body["phone"], body["name"],
                                                   body["relationship"])
        return {"user_id": user.id, "name": user.name, "phone": user.phone, "relationship": link.relationship}, 201


@students_blp.route("/students/<int:student_id>/guardians/<int:user_id>", methods=["DELETE"])
@students_blp.response(204)
@_errors(students_blp, 403, 404)
@login_required
def unlink_guardian(student_id, user_id):
    """Unlink a guardian from a student (admin)."""
    actions.unlink_guardian(g.user, student_id, user_id)
    return "", 204


@students_blp.route("/students/<int:student_id>/guardians/<int:user_id>", methods=["PATCH"])
@students_blp.arguments(GuardianPhoneIn)
@students_blp.response(200, GuardianOut)
@_errors(students_blp, 403, 404, 409, 422)
@login_required
def set_guardian_phone(body, student_id, user_id):
    """Give a guardian imported without a phone their phone (admin): they sign in with it by OTP, and later
    roster imports with that phone match the same account."""
    return actions.set_guardian_phone(g.user, student_id, user_id, body["phone"])


@classes_blp.route("/classes/<int:class_id>/guardian-invites", methods=["POST"])
@classes_blp.response(201, GuardianInviteList)
@_errors(classes_blp, 403, 404)
@login_required
def guardian_invites(class_id):
    """New invite codes for the class's guardians who have no phone (admin or homeroom teacher): a list to
    print and hand out. The guardian signs in with their phone and claims the child (POST /guardians/claim)."""
    return {"items": actions.phoneless_guardian_invites(g.user, class_id)}, 201


@students_blp.route("/students/<int:student_id>/invites", methods=["POST"])
@students_blp.arguments(InviteIn, required=False)
@students_blp.response(201, InviteOut)
@_errors(students_blp, 403, 404, 422)
@login_required
def create_invite(body, student_id):
    """A new invite code for the student's family (admin or homeroom teacher); the code is shown once.

    The guardian claims the child with it: ``POST /guardians/claim {code}``. Valid 30 days, once.
    """
    relationship = (body or {}).get("relationship", "guardian")
    code, row = actions.create_invite(g.user, student_id, relationship)
    return {"code": code, "expires_at": row.expires_at, "student_id": student_id, "relationship": relationship}, 201
