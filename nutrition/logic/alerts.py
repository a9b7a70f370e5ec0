"""Allergy alerts: once per child, dish and day, to the child's guardians and the school's cafeteria.

Three things raise them: publishing a menu (its days from today on), adding an allergen to a child
(the published days from today on), and a meal log serving a child a dish they are allergic to (any
day). The ``AllergyAlert`` ledger row is inserted first (``ON CONFLICT DO NOTHING RETURNING``): only
the call that inserted it notifies, so concurrent publishes or a publish and a log never alert twice.
Call these outside a transaction: the ledger commits, then ``notify`` runs.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable

import notifications
from service.roster import logic as roster
from service.db import db, write_transaction
from service.roster.models import Student

from ..models import AllergyAlert, MenuDay, StudentAllergy
from .common import ALLERGEN_VI, MEAL_VI, date_text, dishes_by_id, ordered_allergens


def allergies_by_student(student_ids: Iterable[int]) -> dict[int, set[str]]:
    ids = list({int(s) for s in student_ids})
    out: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(ids), 5000):
        for row in StudentAllergy.select(StudentAllergy.student, StudentAllergy.allergen).where(
                StudentAllergy.student.in_(ids[start:start + 5000])).tuples():
            out[row[0]].add(row[1])
    return dict(out)


def _school_allergies(school_id: int, student_ids: Iterable[int] | None) -> dict[int, set[str]]:
    query = (StudentAllergy.select(StudentAllergy.student, StudentAllergy.allergen)
             .join(Student, on=(StudentAllergy.student == Student.id)).where(Student.school == school_id))
    if student_ids is not None:
        query = query.where(StudentAllergy.student.in_(list(student_ids)))
    out: dict[int, set[str]] = defaultdict(set)
    for student_id, allergen in query.tuples():
        out[student_id].add(allergen)
    return dict(out)


def check_published(school_id: int, today: dt.date, dates: Iterable[dt.date] | None = None,
                    student_ids: Iterable[int] | None = None) -> int:
    """Alert for the school's published days (``dates``, or all) from ``today`` on. Returns alerts sent."""
    allergic = _school_allergies(school_id, student_ids)
    if not allergic:
        return 0
    query = MenuDay.select().where((MenuDay.school == school_id) & MenuDay.published.is_null(False)
                                   & (MenuDay.date >= today))
    if dates is not None:
        query = query.where(MenuDay.date.in_(list(dates)))
    days = [(row.date, {m: ids for m, ids in row.published_meals().items()}) for row in query]
    dishes = dishes_by_id(d for _, meals in days for ids in meals.values() for d in ids)
    matches = []
    for day, meals in days:
        seen: set[int] = set()
        for meal, ids in meals.items():
            for dish_id in ids:
                dish = dishes.get(dish_id)
                if dish is None or dish_id in seen:
                    continue
                seen.add(dish_id)
                for student_id, allergens in allergic.items():
                    common = ordered_allergens(allergens & set(dish.allergen_list))
                    if common:
                        matches.append((student_id, dish, day, common, None))
    return send(school_id, matches, "publish")


def send(school_id: int, matches: list[tuple], source: str) -> int:
    """``matches``: ``(student_id, dish, date, allergens, meal | None)``. Inserts the ledger rows, then
    notifies the ones this call inserted. Returns how many alerts went out."""
    if not matches:
        return 0
    assert not db.in_transaction(), "allergy alerts go out after the caller's transaction has committed"
    rows = [{"student": s, "dish": dish.id, "date": day, "allergens": ",".join(common), "source": source}
            for s, dish, day, common, _meal in matches]
    fresh: set[tuple[int, int, str]] = set()
    with write_transaction():
        for start in range(0, len(rows), 500):
            query = (AllergyAlert.insert_many(rows[start:start + 500]).on_conflict_ignore()
                     .returning(AllergyAlert.student, AllergyAlert.dish, AllergyAlert.date).tuples())
            fresh.update((int(s), int(d), str(day)[:10]) for s, d, day in query.execute())
    todo = [m for m in matches if (m[0], m[1].id, m[2].isoformat()) in fresh]
    if not todo:
        return 0
    student_ids = sorted({m[0] for m in todo})
    guardians = roster.guardians_by_student(student_ids)
    names = {s.id: s.name for s in Student.select(Student.id, Student.name).where(Student.id.in_(student_ids))}
    cafeteria = sorted({row.user_id for row in roster.staff_query(school_id, "cafeteria")})
    for student_id, dish, day, common, meal in todo:
        name = names.get(student_id, "")
        vi_allergens = ", ".join(ALLERGEN_VI.get(a, a) for a in common)
        if meal:
            vi = (f"Cảnh báo dị ứng: {name}",
                  f"{name} được phục vụ món {dish.name} ({MEAL_VI.get(meal, meal)} {date_text(day)}), "
                  f"có {vi_allergens} mà cháu bị dị ứng.")
            en = (f"Allergy alert: {name}",
                  f"{name} was served {dish.name} ({meal}, {day.isoformat()}), which contains "
                  f"{', '.join(common)}; {name} is allergic to it.")
        else:
            vi = (f"Cảnh báo dị ứng: {name}",
                  f"Thực đơn ngày {date_text(day)} có món {dish.name} chứa {vi_allergens} mà cháu {name} bị dị ứng.")
            en = (f"Allergy alert: {name}",
                  f"The menu of {day.isoformat()} has {dish.name}, which contains {', '.join(common)}; "
                  f"{name} is allergic to it.")
        data = {"type": "meal", "id": student_id, "kind": "allergy", "student_id": str(student_id),
                "student_name": name, "dish_id": str(dish.id), "dish_name": dish.name, "allergen": common[0],
                "allergens": common, "date": day.isoformat()}
        if meal:
            data["meal"] = meal
        notifications.notify(set(guardians.get(student_id, [])) | set(cafeteria), "meal", vi[0], vi[1], data,
                             texts={"vi": vi, "en": en},
                             collapse_key=f"allergy-{student_id}-{dish.id}-{day.isoformat()}")
    return len(todo)
