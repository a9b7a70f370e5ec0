"""The one place that answers "may this user see / act on this student, class, school".

What a caller may not see answers 404 (they must not learn it exists); an action a caller's
role never allows answers 403. A guardian reaches only their children, a teacher only their
classes (and those classes' students), staff only their school.

Who sees what:

- a student: their guardians, the teachers of their class (homeroom or subject), and the admin
  and cafeteria staff of their school. A teacher of the school who does not teach the class does not.
- a class: its teachers, the admin and cafeteria staff of its school and, when the endpoint says
  so (``guardians=True``), the guardians of a student in it.
- a school: its staff (``school_for`` roles), the guardians of a student in it when asked.

Role names in ``roles=`` arguments: ``"guardian"`` (of this student / of a student in this class),
``"teacher"`` (a teacher of this class, homeroom or subject), ``"homeroom"`` (its homeroom
teacher), ``"admin"`` and ``"cafeteria"`` (that staff role in the school). For a school,
``"teacher"`` means the teacher role in that school.

Each check is one SQL query: the row and the caller's relations to it come back together
(``student_access``, ``class_access``); ``school_for`` reads the caller's staff roles once.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import peewee as pw
from peewee import Case, fn

from .roster import logic as roster
from .errors import Forbidden, NotFound
from .prepared import Prepared
from .accounts.models import User
from .roster.models import (STAFF_ROLES, ClassTeacher, SchoolClass, SchoolYear, StaffRole, Student, StudentGuardian,
                            Term)

_ROLE_BITS = {"admin": 1, "teacher": 2, "cafeteria": 4}
_MAX_ID = 2**63


def _uid(user: User | int) -> int:
    return int(getattr(user, "id", user))


def _valid_id(value) -> bool:
    try:
        return 0 < int(value) < _MAX_ID
    except (TypeError, ValueError):
        return False


@dataclasses.dataclass(frozen=True)
class Access:
    """The caller's relations to one student or class (and its school)."""

    guardian: bool = False
    teacher: bool = False  # teacher of the class (homeroom or subject)
    homeroom: bool = False
    staff: frozenset = frozenset()  # the caller's staff roles in the school

    def has(self, roles: Iterable[str]) -> bool:
        for role in roles:
            if role == "guardian" and self.guardian:
                return True
            if role == "teacher" and self.teacher:
                return True
            if role == "homeroom" and self.homeroom:
                return True
            if role in ("admin", "cafeteria") and role in self.staff:
                return True
        return False

    @property
    def sees_as_staff(self) -> bool:
        """A teacher of the class or the school's admin / cafeteria staff."""
        return self.has(("teacher", "admin", "cafeteria"))


def _staff_bits(user_id: int, school_field):
    """A correlated subquery: the caller's staff roles in ``school_field``'s school, as a bit mask."""
    bits = Case(StaffRole.role, [(role, bit) for role, bit in _ROLE_BITS.items()], 0)
    return (StaffRole.select(fn.COALESCE(fn.SUM(bits), 0))
            .where((StaffRole.user == user_id) & (StaffRole.school == school_field)))


def _roles_from_bits(bits) -> frozenset:
    bits = int(bits or 0)
    return frozenset(role for role, bit in _ROLE_BITS.items() if bits & bit)


def _allow(access: Access, roles: Iterable[str] | None, what: str) -> None:
    if roles is not None and not access.has(tuple(roles)):
        raise Forbidden(f"Your role may not do this for this {what}.")


# --- students -------------------------------------------------------------------------------
def _student_access_query(p):
    guardian = fn.EXISTS(StudentGuardian.select(StudentGuardian.id).where(
        (StudentGuardian.student == Student.id) & (StudentGuardian.guardian == p.user)))
    subject = fn.EXISTS(ClassTeacher.select(ClassTeacher.id).where(
        (ClassTeacher.school_class == Student.school_class) & (ClassTeacher.teacher == p.user)))
    homeroom = SchoolClass.homeroom_teacher == p.user
    return (Student.select(Student, guardian.alias("acc_guardian"), subject.alias("acc_subject"),
                           homeroom.alias("acc_homeroom"), _staff_bits(p.user, Student.school).alias("acc_staff"))
            .join(SchoolClass, pw.JOIN.LEFT_OUTER, on=(Student.school_class == SchoolClass.id))
            .where(Student.id == p.student).limit(1))


_STUDENT_ACCESS = Prepared("student_access", _student_access_query)  # every student-scoped request asks it


def student_access(user: User | int, student_id: int) -> tuple[Student, Access]:
    """The student and the caller's relations to it, in one query; 404 if the caller may not see it."""
    user_id = _uid(user)
    if not _valid_id(student_id):
        raise NotFound("No such student.")
    rows = _STUDENT_ACCESS.run(user=int(user_id), student=int(student_id))
    row = rows[0] if rows else None
    if row is None:
        raise NotFound("No such student.")
    access = Access(guardian=bool(row.acc_guardian), homeroom=bool(row.acc_homeroom),
                    teacher=bool(row.acc_homeroom) or bool(row.acc_subject), staff=_roles_from_bits(row.acc_staff))
    if not (access.guardian or access.sees_as_staff):
        raise NotFound("No such student.")
    return row, access


def student_for(user: User | int, student_id: int, roles: Iterable[str] | None = None) -> Student:
    """The student if the caller may see it, else 404.

    ``roles`` narrows who may act, e.g. ``("guardian",)`` for a leave request, ``("admin",)`` to
    edit, ``("admin", "homeroom")`` for invite codes. Visible but not allowed → 403.
    """
    student, access = student_access(user, student_id)
    _allow(access, roles, "student")
    return student


def is_guardian_of(user_id: int, student_id: int) -> bool:
    return StudentGuardian.select().where((StudentGuardian.guardian == _uid(user_id))
                                          & (StudentGuardian.student == student_id)).exists()


def can_see_student(user: User | int, student: Student | int) -> bool:
    try:
        student_access(user, getattr(student, "id", student))
    except NotFound:
        return False
    return True


def visible_student_ids(user: User | int, student_ids: Iterable[int]) -> set[int]:
    """Of ``student_ids``, those the caller may see (for lists: a constant number of queries)."""
    user_id = _uid(user)
    ids = list({int(s) for s in student_ids if _valid_id(s)})
    if not ids:
        return set()
    staff_schools = StaffRole.select(StaffRole.school).where(
        (StaffRole.user == user_id) & StaffRole.role.in_(["admin", "cafeteria"]))
    taught = SchoolClass.select(SchoolClass.id).where(SchoolClass.homeroom_teacher == user_id).union(
        ClassTeacher.select(ClassTeacher.school_class).where(ClassTeacher.teacher == user_id))
    own = StudentGuardian.select(StudentGuardian.student).where(StudentGuardian.guardian == user_id)
    out: set[int] = set()
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        query = Student.select(Student.id).where(Student.id.in_(chunk) & (
            Student.school.in_(staff_schools) | Student.school_class.in_(taught) | Student.id.in_(own)))
        out.update(row.id for row in query)
    return out


# --- classes --------------------------------------------------------------------------------
def class_access(user: User | int, class_id: int, guardians: bool = False) -> tuple[SchoolClass, Access]:
    """The class and the caller's relations to it, in one query; 404 if the caller may not see it.

    ``guardians=True``: the guardian of a student in the class sees it too.
    """
    user_id = _uid(user)
    if not _valid_id(class_id):
        raise NotFound("No such class.")
    subject = fn.EXISTS(ClassTeacher.select(ClassTeacher.id).where(
        (ClassTeacher.school_class == SchoolClass.id) & (ClassTeacher.teacher == user_id)))
    homeroom = SchoolClass.homeroom_teacher == user_id
    columns = [SchoolClass, subject.alias("acc_subject"), homeroom.alias("acc_homeroom"),
               _staff_bits(user_id, SchoolClass.school).alias("acc_staff")]
    if guardians:
        columns.append(fn.EXISTS(StudentGuardian.select(StudentGuardian.id)
                                 .join(Student, on=(StudentGuardian.student == Student.id))
                                 .where((Student.school_class == SchoolClass.id)
                                        & (StudentGuardian.guardian == user_id))).alias("acc_guardian"))
    row = SchoolClass.select(*columns).where(SchoolClass.id == int(class_id)).first()
    if row is None:
        raise NotFound("No such class.")
    access = Access(guardian=bool(getattr(row, "acc_guardian", False)), homeroom=bool(row.acc_homeroom),
                    teacher=bool(row.acc_homeroom) or bool(row.acc_subject), staff=_roles_from_bits(row.acc_staff))
    if not (access.sees_as_staff or (guardians and access.guardian)):
        raise NotFound("No such class.")
    return row, access


def class_for(user: User | int, class_id: int, roles: Iterable[str] | None = None,
              guardians: bool = False) -> SchoolClass:
    """The class if the caller may see it (teachers of it; admin and cafeteria of its school), else 404.

    ``roles`` narrows who may act: e.g. ``("teacher",)`` for taking attendance (a teacher of this
    class), ``("teacher", "admin")`` to let the school admin act too. Visible but not allowed → 403.
    ``guardians=True`` lets a guardian of a student in the class see it (then 403 unless
    ``"guardian"`` is in ``roles``).
    """
    klass, access = class_access(user, class_id, guardians=guardians or "guardian" in (roles or ()))
    _allow(access, roles, "class")
    return klass


def is_teacher_of_class(user_id: int, class_id: int) -> bool:
    user_id = _uid(user_id)
    return (SchoolClass.select().where((SchoolClass.id == class_id) & (SchoolClass.homeroom_teacher == user_id))
            | SchoolClass.select().join(ClassTeacher, on=(ClassTeacher.school_class == SchoolClass.id))
            .where((SchoolClass.id == class_id) & (ClassTeacher.teacher == user_id))).exists()


def is_homeroom_teacher(user_id: int, class_id: int) -> bool:
    return SchoolClass.select().where((SchoolClass.id == class_id)
                                      & (SchoolClass.homeroom_teacher == _uid(user_id))).exists()


def can_see_class(user: User | int, klass: SchoolClass | int) -> bool:
    try:
        class_access(user, getattr(klass, "id", klass))
    except NotFound:
        return False
    return True


# --- schools --------------------------------------------------------------------------------
def is_staff(user_id: int, school_id: int, roles: Iterable[str] = STAFF_ROLES) -> bool:
    return roster.has_staff_role(_uid(user_id), school_id, roles)


def _guardian_school_ids(user_id: int) -> set[int]:
    query = (Student.select(Student.school).distinct().join(StudentGuardian, on=(StudentGuardian.student == Student.id))
             .where(StudentGuardian.guardian == user_id))
    return {row.school_id for row in query}


def school_for(user: User | int, school_id: int | None, roles: Iterable[str] = ("admin",)) -> int:
    """For school-level actions; returns the school id.

    Allowed when the caller holds one of ``roles`` in this school (``"guardian"``: a guardian of a
    student in it). Otherwise: staff of this school with another role → 403; holding the role in
    another school only → 404 (they must not learn of this school); holding the role nowhere
    (e.g. a guardian calling an admin endpoint) → 403.
    """
    user_id = _uid(user)
    roles = tuple(roles)
    school_id = int(school_id) if _valid_id(school_id) else None
    rows = [(r.role, r.school_id) for r in StaffRole.select(StaffRole.role, StaffRole.school)
            .where(StaffRole.user == user_id)]
    if any(role in roles and school == school_id for role, school in rows):
        return school_id
    guardian_schools = _guardian_school_ids(user_id) if "guardian" in roles else set()
    if school_id is not None and school_id in guardian_schools:
        return school_id
    if school_id is not None and any(school == school_id for _, school in rows):
        raise Forbidden("This needs the school's " + " or ".join(roles) + " role.")
    if guardian_schools or any(role in roles for role, _ in rows):
        raise NotFound("No such school.")
    raise Forbidden("This needs the school's " + " or ".join(roles) + " role.")


def year_for(user: User | int, year_id: int, roles: Iterable[str] = ("admin",)) -> SchoolYear:
    """A school year for an action of ``roles`` in its school (same answers as ``school_for``)."""
    year = SchoolYear.get_or_none(SchoolYear.id == int(year_id)) if _valid_id(year_id) else None
    school_for(user, year.school_id if year else None, roles)
    if year is None:  # pragma: no cover - school_for already answered
        raise NotFound("No such school year.")
    return year


def term_for(user: User | int, term_id: int, roles: Iterable[str] = ("admin",)) -> Term:
    """A term for ``roles`` in its school (same answers as ``school_for``; no such term → 404 too)."""
    term = Term.get_or_none(Term.id == int(term_id)) if _valid_id(term_id) else None
    school_for(user, SchoolYear.get_by_id(term.school_year_id).school_id if term else None, roles)
    if term is None:  # pragma: no cover - school_for already answered
        raise NotFound("No such term.")
    return term


def require_staff_role(user: User | int, roles: Iterable[str] = ("admin",)) -> None:
    user_id = _uid(user)
    if not StaffRole.select().where((StaffRole.user == user_id) & StaffRole.role.in_(tuple(roles))).exists():
        raise Forbidden("This needs the school's " + " or ".join(roles) + " role.")



# --- relations as SQL, for many rows in one query --------------------------------------------
def student_relation_exprs(user_field, student_field):
    """Correlated SQL expressions ``(guardian, teacher)`` for "is ``user_field`` a guardian / a
    teacher of ``student_field`` now", to filter or annotate many rows in one query (e.g. the
    participants of many conversations). ``teacher``: homeroom or subject teacher of the student's
    current class, a class of the student's school, holding the teacher role in that school.
    """
    link = StudentGuardian.alias()
    guardian = fn.EXISTS(link.select(link.id).where((link.student == student_field) & (link.guardian == user_field)))
    student, klass, subject, role = Student.alias(), SchoolClass.alias(), ClassTeacher.alias(), StaffRole.alias()
    teaches = fn.EXISTS(subject.select(subject.id).where((subject.school_class == klass.id)
                                                          & (subject.teacher == user_field)))
    has_role = fn.EXISTS(role.select(role.id).where((role.user == user_field) & (role.school == student.school)
                                                    & (role.role == "teacher")))
    teacher = fn.EXISTS(student.select(student.id)
                        .join(klass, on=((student.school_class == klass.id) & (klass.school == student.school)))
                        .where((student.id == student_field)
                               & ((klass.homeroom_teacher == user_field) | teaches) & has_role))
    return guardian, teacher


def has_any_role(user: User | int) -> bool:
    """A staff role in some school, or a linked child."""
    user_id = _uid(user)
    return (StaffRole.select(StaffRole.id).where(StaffRole.user == user_id).exists()
            or StudentGuardian.select(StudentGuardian.id).where(StudentGuardian.guardian == user_id).exists())
