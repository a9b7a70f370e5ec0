"""Who may do what in the contact book. Views never decide access: ``logic`` asks these.

Built on ``service.permissions`` (one query per check). What the caller may not know exists
answers 404 (a guardian of another family, a teacher of another class, an admin of another
school); a caller who sees the thing but whose role may never act on it answers 403 (a subject
teacher posting attendance, a guardian deciding a leave request). Access follows the roster live.

- attendance of a class, leave decisions: the class's homeroom teacher or the school's admins;
- a student's attendance, leave requests, day's page: their guardians, the teachers of their
  class (homeroom or subject) and the school's admins; anyone else 404 (the cafeteria too);
- asking for or cancelling leave: a guardian of the student;
- a class's day, its audit and its leave requests: its teachers and the school's admins (others 404);
- gate devices and contact-book settings: the school's admins (settings are read by its staff);
- ``POST /checkins``: no user at all, a gate device's key (``authenticate_device``).

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

import functools
import hashlib

from flask import g, request

from service import permissions
from service.errors import Forbidden, NotFound, Unauthorized
from service.roster.models import ClassTeacher

from .logic.circular22 import subject_key
from .models import GateDevice

WRITE_ATTENDANCE = ("homeroom", "admin")
READ_STUDENT = ("guardian", "teacher", "admin")
DEVICE_HEADER = "X-Device-Key"


def class_attendance_writer(user, class_id: int):
    return permissions.class_for(user, class_id, roles=WRITE_ATTENDANCE)


def class_reader(user, class_id: int):
    """A class's day and its leave requests: its teachers and the school's admins (others: 404)."""
    klass, access = permissions.class_access(user, class_id)
    if not access.has(("teacher", "admin")):
        raise NotFound("No such class.")
    return klass


def student_reader(user, student_id: int):
    return student_access(user, student_id)[0]


def student_access(user, student_id: int):
    """``(student, Access)`` for readers of the student's contact book; anyone else (the cafeteria
    too, who sees the roster but not the contact book) gets 404."""
    student, access = permissions.student_access(user, student_id)
    if not access.has(READ_STUDENT):
        raise NotFound("No such student.")
    return student, access


def guardian_of(user, student_id: int):
    return permissions.student_for(user, student_id, roles=("guardian",))


def leave_decider(user, student_id: int):
    return permissions.student_for(user, student_id, roles=WRITE_ATTENDANCE)


def school_admin(user, school_id: int) -> int:
    return permissions.school_for(user, school_id, ("admin",))


def school_staff(user, school_id: int) -> int:
    return permissions.school_for(user, school_id, ("admin", "teacher"))


def device_admin(user, device_id: int) -> GateDevice:
    """A live gate device of a school the caller administers (revoked or unknown: 404)."""
    device = GateDevice.get_or_none((GateDevice.id == int(device_id)) & GateDevice.revoked_at.is_null())
    permissions.school_for(user, device.school_id if device else None, ("admin",))
    if device is None:  # pragma: no cover - school_for answered already
        raise NotFound("No such gate device.")
    return device


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate_device(api_key: str | None) -> GateDevice:
    """The live device holding this key, else 401 (a wrong, unknown or revoked key)."""
    if not api_key or len(api_key) > 200:
        raise Unauthorized(f"A gate device's {DEVICE_HEADER} is needed.")
    device = GateDevice.get_or_none((GateDevice.key_hash == key_digest(api_key.strip()))
                                    & GateDevice.revoked_at.is_null())
    if device is None:
        raise Unauthorized(f"The {DEVICE_HEADER} is not valid.")
    return device


def device_required(view):
    """For device endpoints (no user): the live gate device from ``X-Device-Key`` in ``g.device``.

    It runs before the body is parsed, so a caller without a valid key learns nothing else.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.device = authenticate_device(request.headers.get(DEVICE_HEADER))
        return view(*args, **kwargs)

    wrapper._lienlac_auth = "device"
    return wrapper


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
