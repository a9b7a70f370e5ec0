"""Who may do what with dishes, menus, allergies and meal logs (built on ``service.permissions``).

- dishes and menus: written by the school's ``admin`` and ``cafeteria`` staff; read by the school's
  staff and by guardians of a student in it (guardians see published menus only);
- meal logs: written by the class's teachers and the school's admin and cafeteria staff;
- a student's allergies: read by whoever may see the student; set by the student's guardians, the
  teachers of their class and the school's admins (cafeteria staff read them);
- a student's meals and intake: whoever may see the student.

Answers follow ``service.permissions``: what the caller may not know exists → 404, a role that may
not → 403. Every check reads the roster live.
"""
from __future__ import annotations

from service import permissions
from service.accounts.models import User
from service.roster.models import SchoolClass, Student

WRITERS = ("admin", "cafeteria")
SCHOOL_READERS = ("admin", "cafeteria", "teacher", "guardian")
STAFF = ("admin", "cafeteria", "teacher")
MEAL_LOGGERS = ("teacher", "admin", "cafeteria")
ALLERGY_WRITERS = ("guardian", "teacher", "admin")


def catalogue_writer(user: User | int, school_id) -> int:
    """Dishes and menus: the school's admin or cafeteria staff. Returns the school id."""
    return permissions.school_for(user, school_id, WRITERS)


def school_reader(user: User | int, school_id) -> tuple[int, bool]:
    """Reading a school's dishes and menus: ``(school_id, is_staff)``; guardians get ``is_staff=False``."""
    school_id = permissions.school_for(user, school_id, SCHOOL_READERS)
    return school_id, permissions.is_staff(user, school_id, STAFF)


def meal_logger(user: User | int, class_id) -> SchoolClass:
    """Writing a class's meal log. A guardian of a student in the class gets 403, anyone else unseen 404."""
    return permissions.class_for(user, class_id, roles=MEAL_LOGGERS, guardians=True)


def student_reader(user: User | int, student_id) -> Student:
    return permissions.student_for(user, student_id)


def allergy_writer(user: User | int, student_id) -> Student:
    return permissions.student_for(user, student_id, roles=ALLERGY_WRITERS)
