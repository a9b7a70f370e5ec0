"""Who may do what with timetables, changes, events and calendar feeds (on ``service/permissions.py``).

- A class's timetable: the school's admins set it (it moves teachers of many classes); the class's
  teachers, the school's admin and cafeteria staff, and the guardians of a student in the class read it.
- A change for a date (cancelled, substitute, moved): the school's admins and the class's homeroom
  teacher (who usually arranges a substitute); a subject teacher sees the class (403), others 404.
- A student's week and calendar: whoever may see the student (their guardians, their class's
  teachers, the school's admin and cafeteria staff); a guardian of another family gets 404.
- Events: the school's admins create them; a guardian signs up their own child, if the child is
  in the event's audience (else the event is not found for them).
"""
from __future__ import annotations

import json

from service import permissions
from service.errors import NotFound


def class_for_timetable_write(user, class_id):
    return permissions.class_for(user, class_id, roles=("admin",))


def class_for_timetable_read(user, class_id):
    return permissions.class_for(user, class_id, guardians=True)


def class_for_change(user, class_id):
    return permissions.class_for(user, class_id, roles=("admin", "homeroom"))


def student_for_view(user, student_id):
    """The student if the caller may see them (one query), else 404."""
    return permissions.student_for(user, student_id)


def student_for_signup(user, student_id):
    """Only the child's own guardians sign them up (staff who see the student: 403)."""
    return permissions.student_for(user, student_id, roles=("guardian",))


def school_for_events(user, school_id) -> int:
    return permissions.school_for(user, school_id, roles=("admin",))


def audience_of(event) -> dict:
    return {"grades": json.loads(event.grades or "[]"), "class_ids": json.loads(event.class_ids or "[]")}


def in_audience(event, class_id: int | None, grade: int | None) -> bool:
    """The whole school (no grades, no classes), or the student's class or grade is named."""
    audience = audience_of(event)
    if not audience["grades"] and not audience["class_ids"]:
        return True
    return (class_id is not None and class_id in audience["class_ids"]) or (
        grade is not None and grade in audience["grades"])


def event_visible_to_student(event, student, class_grade: int | None) -> None:
    """404 unless the event is of the student's school and the student is in its audience."""
    if event is None or event.school_id != student.school_id or not in_audience(event, student.school_class_id,
                                                                                 class_grade):
        raise NotFound("No such event.")
