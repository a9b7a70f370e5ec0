"""The one place that answers "may this user see / act on this student, class, school".

What a caller may not see answers 404 (they must not learn it exists); an action a caller's
role never allows answers 403. A guardian reaches only their children, a teacher only their
classes (and those classes' students), staff only their school.
"""
from __future__ import annotations

from typing import Iterable

from . import roster
from .errors import Forbidden, NotFound
from .models import STAFF_ROLES, ClassTeacher, SchoolClass, StaffRole, Student, StudentGuardian, User


def is_guardian_of(user_id: int, student_id: int) -> bool:
    return StudentGuardian.select().where((StudentGuardian.guardian == user_id)
                                          & (StudentGuardian.student == student_id)).exists()


def is_teacher_of_class(user_id: int, class_id: int) -> bool:
    return (SchoolClass.select().where((SchoolClass.id == class_id) & (SchoolClass.homeroom_teacher == user_id)).exists()
            or ClassTeacher.select().where((ClassTeacher.school_class == class_id)
                                           & (ClassTeacher.teacher == user_id)).exists())


def is_homeroom_teacher(user_id: int, class_id: int) -> bool:
    return SchoolClass.select().where((SchoolClass.id == class_id) & (SchoolClass.homeroom_teacher == user_id)).exists()


def is_staff(user_id: int, school_id: int, roles: Iterable[str] = STAFF_ROLES) -> bool:
    return roster.has_staff_role(user_id, school_id, roles)


def is_school_admin_anywhere(user_id: int) -> bool:
    return StaffRole.select().where((StaffRole.user == user_id) & (StaffRole.role == "admin")).exists()


def can_see_student(user: User | int, student: Student) -> bool:
    user_id = getattr(user, "id", user)
    if is_guardian_of(user_id, student.id):
        return True
    if student.school_class_id and is_teacher_of_class(user_id, student.school_class_id):
        return True
    return is_staff(user_id, student.school_id, ("admin", "cafeteria"))


def can_see_class(user: User | int, klass: SchoolClass) -> bool:
    user_id = getattr(user, "id", user)
    return is_teacher_of_class(user_id, klass.id) or is_staff(user_id, klass.school_id, ("admin", "cafeteria"))


def student_for(user: User | int, student_id: int) -> Student:
    """The student if the caller may see it, else 404."""
    student = Student.get_or_none(Student.id == student_id)
    if student is None or not can_see_student(user, student):
        raise NotFound("No such student.")
    return student


def class_for(user: User | int, class_id: int, roles: Iterable[str] | None = None) -> SchoolClass:
    """The class if the caller may see it (teachers of it; admin and cafeteria of its school), else 404.

    ``roles`` narrows who may act: e.g. ``("teacher",)`` for taking attendance (a teacher of this
    class), ``("teacher", "admin")`` to let the school admin act too. Visible but not allowed → 403.
    """
    user_id = getattr(user, "id", user)
    klass = SchoolClass.get_or_none(SchoolClass.id == class_id)
    if klass is None or not can_see_class(user_id, klass):
        raise NotFound("No such class.")
    if roles is not None:
        allowed = ("teacher" in roles and is_teacher_of_class(user_id, klass.id)) or any(
            is_staff(user_id, klass.school_id, (r,)) for r in roles if r != "teacher")
        if not allowed:
            raise Forbidden("Your role may not do this for this class.")
    return klass


def school_for(user: User | int, school_id: int, roles: Iterable[str] = ("admin",)) -> int:
    """For school-level actions. No staff role anywhere (e.g. a guardian) → 403; another school → 404."""
    user_id = getattr(user, "id", user)
    roles = tuple(roles)
    if not StaffRole.select().where((StaffRole.user == user_id) & StaffRole.role.in_(roles)).exists():
        raise Forbidden("This needs the school's " + " or ".join(roles) + " role.")
    if not is_staff(user_id, school_id, roles):
        raise NotFound("No such school.")
    return school_id


def require_staff_role(user: User | int, roles: Iterable[str] = ("admin",)) -> None:
    user_id = getattr(user, "id", user)
    if not StaffRole.select().where((StaffRole.user == user_id) & StaffRole.role.in_(tuple(roles))).exists():
        raise Forbidden("This needs the school's " + " or ".join(roles) + " role.")
