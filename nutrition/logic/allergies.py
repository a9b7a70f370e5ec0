"""A student's allergens, set by a guardian or the school (admins, the class's teachers).

Adding an allergen checks the school's published days from today on at once: a dish already on the
menu that holds the new allergen alerts the child's guardians and the cafeteria (once, see ``alerts``).
"""
from __future__ import annotations

import datetime as dt

from service.roster import logic as roster
from service.db import write_transaction
from service.accounts.models import User

from .. import policy
from ..models import StudentAllergy
from . import alerts
from .common import ordered_allergens


def _current(student_id: int) -> list[str]:
    return ordered_allergens(row.allergen for row in StudentAllergy.select(StudentAllergy.allergen)
                             .where(StudentAllergy.student == student_id))


def get_allergies(user: User | int, student_id) -> dict:
    student = policy.student_reader(user, student_id)
    return {"allergens": _current(student.id)}


def set_allergies(user: User | int, student_id, allergens: list[str], today: dt.date | None = None) -> dict:
    """Replace the student's allergens with ``allergens`` (checked against ALLERGENS by the schema)."""
    student = policy.allergy_writer(user, student_id)
    wanted = set(ordered_allergens(allergens))
    uid = int(getattr(user, "id", user))
    with write_transaction():
        have = {row.allergen for row in StudentAllergy.select(StudentAllergy.allergen)
                .where(StudentAllergy.student == student.id)}
        gone, added = have - wanted, wanted - have
        if gone:
            StudentAllergy.delete().where((StudentAllergy.student == student.id)
                                          & StudentAllergy.allergen.in_(sorted(gone))).execute()
        if added:
            (StudentAllergy.insert_many([{"student": student.id, "allergen": a, "created_by": uid}
                                         for a in sorted(added)]).on_conflict_ignore().execute())
    if added:
        alerts.check_published(student.school_id, today or roster.school_today(student.school_id),
                               student_ids=[student.id])
    return {"allergens": _current(student.id)}
