"""Who may do what to the roster's objects, built on ``service.permissions``.

``service.roster.actions`` (the acting-user entry points the views call) asks these; each answers
with the object (or what the caller may see of it), or raises ``NotFound`` (404: the caller may
not know it exists) or ``Forbidden`` (403: the caller's role never may). One query per check;
nothing is cached beyond the call, so access follows the roster live.

- A school: its staff and its students' guardians read it (and its years); its admin runs it
  (years, terms, staff, classes, students); the admin and cafeteria list its classes.
- A class: its teachers and the school's admin and cafeteria see it, the guardians of a student
  in it see the class itself but not its roster; the school's admin edits it; the admin or the
  homeroom teacher makes invite codes for its families.
- A student: their guardians, the teachers of their class, the school's admin and cafeteria see
  them; the national id is for all of them but the cafeteria; the admin edits; the admin or the
  homeroom teacher makes invite codes. Guardians lists: staff see phone numbers, a guardian only
  their own, the cafeteria nothing (403).
- A roster import: the admins of its school (``may_upload_roster``, ``roster_import_for``).
"""
from __future__ import annotations

from .. import permissions
from ..accounts.models import User
from ..errors import Forbidden, NotFound
from .models import RosterImport, SchoolClass, SchoolYear, Student

MEMBERS = ("admin", "teacher", "cafeteria", "guardian")
ADMIN = ("admin",)
INVITERS = ("admin", "homeroom")


# --- schools ---------------------------------------------------------------------------------
def school_member(user: User, school_id: int) -> int:
    """Read a school and its years: its staff and its students' guardians."""
    return permissions.school_for(user, school_id, MEMBERS)


def school_admin(user: User, school_id: int) -> int:
    """Run a school: its years, terms, staff, classes and students (the admin of that school)."""
    return permissions.school_for(user, school_id, ADMIN)


def school_class_reader(user: User, school_id: int) -> int:
    """List a school's classes: its admin and cafeteria."""
    return permissions.school_for(user, school_id, ("admin", "cafeteria"))


def year_admin(user: User, year_id: int) -> SchoolYear:
    """Add terms to a school year: the admin of its school."""
    return permissions.year_for(user, year_id, ADMIN)


def term_reader(user: User, term_id: int):
    """A term (học kỳ): its school's staff and its students' guardians (others: 404)."""
    return permissions.term_for(user, term_id, MEMBERS)


# --- classes ---------------------------------------------------------------------------------
def class_reader(user: User, class_id: int) -> SchoolClass:
    """See a class (name, teachers): its teachers, the school's admin and cafeteria, its families."""
    return permissions.class_for(user, class_id, guardians=True)


def class_admin(user: User, class_id: int) -> SchoolClass:
    """Edit a class and its subject teachers: the school's admin (its families and teachers: 403)."""
    return permissions.class_for(user, class_id, roles=ADMIN, guardians=True)


def class_roster_reader(user: User, class_id: int) -> tuple[SchoolClass, bool]:
    """Read a class's student list: the school's staff who see the class (guardians: 403).

    Returns the class and whether the caller sees national ids (its teachers and the admin).
    """
    klass, access = permissions.class_access(user, class_id, guardians=True)
    if not access.has(("teacher", "admin", "cafeteria")):
        raise Forbidden("Only the school's staff read a class's roster.")
    return klass, access.has(("teacher", "admin"))


def class_inviter(user: User, class_id: int) -> SchoolClass:
    """Make invite codes for a class's families: the school's admin or the class's homeroom teacher."""
    return permissions.class_for(user, class_id, roles=INVITERS)


# --- students --------------------------------------------------------------------------------
def student_reader(user: User, student_id: int) -> tuple[Student, bool]:
    """See a student; returns the student and whether the caller sees the national id."""
    student, access = permissions.student_access(user, student_id)
    return student, access.has(("guardian", "teacher", "admin"))


def student_admin(user: User, student_id: int) -> Student:
    """Edit a student and their guardian links: the school's admin."""
    return permissions.student_for(user, student_id, roles=ADMIN)


def student_inviter(user: User, student_id: int) -> Student:
    """Make an invite code for a student's family: the school's admin or the homeroom teacher."""
    return permissions.student_for(user, student_id, roles=INVITERS)


def guardians_reader(user: User, student_id: int) -> bool:
    """Read a student's guardians: their guardians, their class's teachers, the admin (the cafeteria:
    403). Returns whether the caller sees every guardian's phone number (staff) or only their own."""
    _, access = permissions.student_access(user, student_id)
    if not access.has(("guardian", "teacher", "admin")):
        raise Forbidden("The cafeteria does not read guardians.")
    return access.has(("teacher", "admin"))


# --- roster imports --------------------------------------------------------------------------
def may_upload_roster(user: User, school_id: int) -> int:
    """Upload a OneRoster zip for a school: its admin."""
    return permissions.school_for(user, school_id, ADMIN)


def roster_import_for(user: User, import_id: int) -> RosterImport:
    """An import the caller may read: an admin of its school. Another school's import is 404, like a
    missing one; a caller who is no school's admin gets 403 whatever the id."""
    permissions.require_staff_role(user, ADMIN)
    run = RosterImport.get_or_none(RosterImport.id == import_id)
    if run is None or not permissions.is_staff(user, run.school_id, ADMIN):
        raise NotFound("No such roster import.")
    return run
