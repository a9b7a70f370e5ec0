"""Who may do what to the contact book's objects, built on ``service.permissions``.

What the caller may not see answers 404; a role that never may answers 403.

Grades and remarks (``grades_*``, ``remark_*``, ``report_*``):

- Grading a class: a subject teacher of that class for the subjects they teach there (the
  ``ClassTeacher.subject``); the school's admins for any subject. Another teacher of the class
  (the homeroom teacher included, unless they teach the subject) and the cafeteria: 403.
  Anyone who does not see the class (a teacher of another class, another school's admin, a
  guardian): 404.
- Reading a student's grades and report: their guardians (published scores only), the teachers
  of their class and the school's admins (drafts too). The cafeteria: 403.
- Writing a remark: the teachers of the student's class (homeroom and subject) and the admins.
  Reading remarks: those and the student's guardians.
"""
from __future__ import annotations

from service import permissions
from service.errors import Forbidden
from service.roster.models import ClassTeacher

from .logic.circular22 import subject_key


def taught_subjects(user_id: int, class_id: int) -> list[str]:
    """The subjects this user teaches in this class (as the roster spells them)."""
    return [row.subject for row in ClassTeacher.select(ClassTeacher.subject)
            .where((ClassTeacher.school_class == class_id) & (ClassTeacher.teacher == user_id))
            if row.subject.strip()]


def grades_class_for(user, class_id: int, subject: str):
    """The class for grading ``subject`` (write or publish); 404 / 403 as above."""
    klass, access = permissions.class_access(user, class_id)
    if "admin" in access.staff:
        return klass
    key = subject_key(subject)
    if access.teacher and any(subject_key(s) == key for s in taught_subjects(user.id, klass.id)):
        return klass
    raise Forbidden("Only the class's teacher of this subject or an admin grades it.")


def grades_class_settings_for(user, class_id: int):
    """A class's grading settings: its teachers and the admins read them, admins write (``grades_admin``)."""
    klass, access = permissions.class_access(user, class_id)
    if not access.has(("teacher", "admin")):
        raise Forbidden("Only the class's teachers and the school's admins.")
    return klass, access


def grades_admin_class_for(user, class_id: int):
    return permissions.class_for(user, class_id, roles=("admin",))


def grades_student_for(user, student_id: int):
    """``(student, drafts_visible)`` for reading grades or the report; guardians see published only."""
    student, access = permissions.student_access(user, student_id)
    if access.has(("teacher", "admin")):
        return student, True
    if access.guardian:
        return student, False
    raise Forbidden("The cafeteria does not read grades.")


report_student_for = grades_student_for


def remark_author_for(user, student_id: int):
    """The student, if the caller may write a remark about them."""
    return permissions.student_for(user, student_id, roles=("teacher", "admin"))


def remark_reader_for(user, student_id: int):
    return permissions.student_for(user, student_id, roles=("guardian", "teacher", "admin"))
