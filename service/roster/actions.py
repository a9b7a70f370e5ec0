"""The roster's acting-user entry points: what the HTTP views (and any caller acting for a person) call.

Each function takes the acting user first, asks ``service.roster.policy`` (404 for what the
caller may not know exists, 403 for a role that never may), then does the work through
``service.roster.logic``. ``roster.logic`` itself is the *trusted* layer: plain ids, no acting
user, no authorization; for other packages' reads, jobs, the CLI, the OneRoster importer, the
demo seed and tests. Lists come back as pages ``{"items": rows, "next_cursor"}``; the views
serialize the rows.
"""
from __future__ import annotations

import datetime as dt

from ..accounts.models import User
from ..pagination import paginate_by_id
from . import logic, policy
from .models import InviteCode, School, SchoolClass, SchoolYear, StaffRole, Student, StudentGuardian, Term


def _page(query, id_field, limit: int, cursor: str | None) -> dict:
    return paginate_by_id(query, id_field, limit, cursor, newest_first=False)


# --- schools, years, terms --------------------------------------------------------------------
def get_school(user: User, school_id: int) -> School:
    policy.school_member(user, school_id)
    return logic.get_school(school_id)


def list_years(user: User, school_id: int, limit: int, cursor: str | None) -> dict:
    policy.school_member(user, school_id)
    return _page(logic.years_query(school_id), SchoolYear.id, limit, cursor)


def get_term(user: User, term_id: int) -> Term:
    return policy.term_reader(user, term_id)


def create_school_year(user: User, school_id: int, name: str, starts_on: dt.date, ends_on: dt.date) -> SchoolYear:
    policy.school_admin(user, school_id)
    return logic.create_school_year(school_id, name, starts_on, ends_on)


def create_term(user: User, year_id: int, name: str, starts_on: dt.date, ends_on: dt.date) -> Term:
    year = policy.year_admin(user, year_id)
    return logic.create_term(year.id, name, starts_on, ends_on)


# --- staff ------------------------------------------------------------------------------------
def list_staff(user: User, school_id: int, role: str | None, limit: int, cursor: str | None) -> dict:
    """Rows are ``StaffRole`` with ``row.user`` loaded."""
    policy.school_admin(user, school_id)
    return _page(logic.staff_query(school_id, role), StaffRole.id, limit, cursor)


def add_staff_by_phone(user: User, school_id: int, phone: str, name: str, role: str) -> tuple[User, StaffRole]:
    policy.school_admin(user, school_id)
    return logic.add_staff_by_phone(school_id, phone, name, role)


def remove_staff(user: User, school_id: int, user_id: int, role: str | None = None) -> list[str]:
    policy.school_admin(user, school_id)
    return logic.remove_staff(school_id, user_id, role)


# --- classes ----------------------------------------------------------------------------------
def list_classes(user: User, school_id: int, grade: int | None, school_year_id: int | None,
                 limit: int, cursor: str | None) -> dict:
    policy.school_class_reader(user, school_id)
    return _page(logic.classes_query(school_id, grade, school_year_id), SchoolClass.id, limit, cursor)


def create_class(user: User, school_id: int, name: str, grade: int | None = None,
                 homeroom_teacher_id: int | None = None, school_year_id: int | None = None) -> SchoolClass:
    policy.school_admin(user, school_id)
    return logic.create_class(school_id, name, grade=grade, homeroom_teacher_id=homeroom_teacher_id,
                              school_year_id=school_year_id)


def get_class(user: User, class_id: int) -> SchoolClass:
    return policy.class_reader(user, class_id)


def update_class(user: User, class_id: int, changes: dict) -> SchoolClass:
    policy.class_admin(user, class_id)
    return logic.update_class(class_id, changes)


def add_subject_teacher(user: User, class_id: int, teacher_id: int, subject: str) -> SchoolClass:
    policy.class_admin(user, class_id)
    logic.assign_subject_teacher(class_id, teacher_id, subject)
    return logic.get_class(class_id)


def remove_subject_teacher(user: User, class_id: int, teacher_id: int, subject: str | None = None) -> int:
    policy.class_admin(user, class_id)
    return logic.remove_subject_teacher(class_id, teacher_id, subject)


def class_students(user: User, class_id: int, limit: int, cursor: str | None) -> tuple[dict, bool]:
    """A page of the class's students, and whether the caller sees their national ids."""
    _, private = policy.class_roster_reader(user, class_id)
    return _page(logic.students_query(class_id=class_id), Student.id, limit, cursor), private


def phoneless_guardian_invites(user: User, class_id: int, now: dt.datetime | None = None) -> list[dict]:
    policy.class_inviter(user, class_id)
    return logic.phoneless_guardian_invites(class_id, user.id, now)


# --- students ---------------------------------------------------------------------------------
def list_students(user: User, school_id: int, class_id: int | None, limit: int, cursor: str | None) -> dict:
    policy.school_admin(user, school_id)
    return _page(logic.students_query(school_id=school_id, class_id=class_id), Student.id, limit, cursor)


def create_student(user: User, school_id: int, name: str, class_id: int | None = None,
                   national_id: str | None = None, birth_date: dt.date | None = None) -> Student:
    policy.school_admin(user, school_id)
    return logic.create_student(school_id, name, class_id=class_id, national_id=national_id, birth_date=birth_date)


def get_student(user: User, student_id: int) -> tuple[Student, bool]:
    """The student, and whether the caller sees the national id."""
    return policy.student_reader(user, student_id)


def update_student(user: User, student_id: int, changes: dict) -> Student:
    policy.student_admin(user, student_id)
    return logic.update_student(student_id, changes)


def guardians(user: User, student_id: int) -> list[dict]:
    """``[{user_id, name, phone, relationship}]``; a guardian sees only their own phone number."""
    staff = policy.guardians_reader(user, student_id)
    items = logic.guardian_links([student_id]).get(student_id, [])
    for item in items:
        if not staff and item["user_id"] != user.id:
            item["phone"] = None
    return items


def add_guardian_by_phone(user: User, student_id: int, phone: str, name: str,
                          relationship: str = "guardian") -> tuple[User, StudentGuardian]:
    policy.student_admin(user, student_id)
    return logic.add_guardian_by_phone(student_id, phone, name, relationship)


def unlink_guardian(user: User, student_id: int, guardian_id: int) -> None:
    policy.student_admin(user, student_id)
    logic.unlink_guardian(student_id, guardian_id)


def set_guardian_phone(user: User, student_id: int, guardian_id: int, phone: str) -> dict:
    """``{user_id, name, phone, relationship}`` of the guardian given their phone."""
    policy.student_admin(user, student_id)
    guardian = logic.set_guardian_phone(student_id, guardian_id, phone)
    link = next(x for x in logic.guardian_links([student_id])[student_id] if x["user_id"] == guardian_id)
    return {"user_id": guardian.id, "name": guardian.name, "phone": guardian.phone,
            "relationship": link["relationship"]}


def create_invite(user: User, student_id: int, relationship: str = "guardian",
                  now: dt.datetime | None = None) -> tuple[str, InviteCode]:
    policy.student_inviter(user, student_id)
    return logic.create_invite(student_id, user.id, relationship, now)
