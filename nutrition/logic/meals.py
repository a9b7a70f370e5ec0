"""Meal logs (how much each child of a class ate of one meal) and a child's intake.

A log is one request per class and meal: the served dishes (the published menu's for that meal,
or ``dish_ids`` given) and one entry per child. Entries are upserted in bulk on (child, date, meal):
posting again corrects them; children left out of a later post keep their earlier entry.

Intake = Σ portion fraction × the dish's nutrients per serving, over the dishes of each logged meal,
rounded to 2 decimals per day (and per week: the sum of the rounded days). ``recommended`` is what
the day's school meals should provide for the child's age (see ``recommended``).
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal

from service.roster import logic as roster
from service import bulk
from service.db import is_postgres, utcnow, write_transaction
from service.errors import ValidationError
from service.accounts.models import User
from service.roster.models import Student

from .. import policy
from ..constants import INTAKE_NUTRIENTS, MEALS, PORTIONS
from ..models import MealEntry, MealLog, MenuDay
from . import alerts
from .common import date_range, dish_brief, dishes_by_id, ordered_allergens, q2
from .dishes import school_dishes
from .recommended import recommended

MAX_ENTRIES = 200


def log_meals(user: User | int, class_id, date: dt.date, meal: str, entries: list[dict],
              dish_ids: list[int] | None = None, now: dt.datetime | None = None) -> dict:
    """Record one meal of a class. Returns ``{logged, flags: [{student_id, dish_id, allergen}]}``."""
    klass = policy.meal_logger(user, class_id)
    school_id = klass.school_id
    errors: dict = {}
    in_class = set(roster.class_student_ids(klass.id))
    seen: set[int] = set()
    for index, entry in enumerate(entries):
        sid = entry["student_id"]
        if sid in seen:
            errors[str(index)] = {"student_id": ["This student is given twice."]}
        elif sid not in in_class:
            errors[str(index)] = {"student_id": ["Not a student of this class."]}
        seen.add(sid)
    if errors:
        raise ValidationError("Some entries are invalid.", fields={"entries": errors})
    if dish_ids is not None:
        served = list(dict.fromkeys(dish_ids))
        known = school_dishes(school_id, served)
        unknown = [str(d) for d in served if d not in known]
        if unknown:
            raise ValidationError("Unknown dishes.", fields={"dish_ids": [f"Not a dish of this school: {', '.join(unknown)}."]})
    else:
        menu = MenuDay.get_or_none((MenuDay.school == school_id) & (MenuDay.date == date)
                                   & MenuDay.published.is_null(False))
        served = (menu.published_meals() or {}).get(meal, []) if menu else []
        if not served:
            raise ValidationError("No published menu for this meal.",
                                  fields={"meal": ["No published menu for this date and meal; send dish_ids."]})
    now = now or utcnow()
    uid = int(getattr(user, "id", user))
    dishes_json = json.dumps(served)
    with write_transaction():
        log_id = (MealLog.insert(school=school_id, school_class=klass.id, date=date, meal=meal, dish_ids=dishes_json,
                                 logged_by=uid, updated_at=now)
                  .on_conflict(conflict_target=[MealLog.school_class, MealLog.date, MealLog.meal],
                               update={MealLog.dish_ids: dishes_json, MealLog.logged_by: uid, MealLog.updated_at: now})
                  .execute())
        if not is_postgres():  # PostgreSQL's RETURNING gives the row's id on update too; SQLite's lastrowid does not
            log_id = MealLog.get((MealLog.school_class == klass.id) & (MealLog.date == date)
                                 & (MealLog.meal == meal)).id
        _upsert_entries([(e["student_id"], date, meal, log_id, e["portion"], e.get("note") or "", now)
                         for e in entries])
    dishes = dishes_by_id(served)
    allergies = alerts.allergies_by_student(seen)
    flags, matches = [], []
    for entry in entries:
        mine = allergies.get(entry["student_id"])
        if not mine:
            continue
        for dish_id in served:
            dish = dishes[dish_id]
            common = ordered_allergens(mine & set(dish.allergen_list))
            flags.extend({"student_id": entry["student_id"], "dish_id": dish_id, "allergen": a} for a in common)
            if common:
                matches.append((entry["student_id"], dish, date, common, meal))
    alerts.send(school_id, matches, "meal_log")
    return {"logged": len(entries), "flags": flags}


_ENTRY_COLUMNS = ["student", "date", "meal", "meal_log", "portion", "note", "updated_at"]


def _upsert_entries(rows: list[tuple]) -> None:
    """A class's entries in one ``INSERT … ON CONFLICT (student, date, meal) DO UPDATE`` (``service.bulk``)."""
    bulk.upsert(MealEntry, _ENTRY_COLUMNS, rows, key=["student", "date", "meal"],
                update=["meal_log", "portion", "note", "updated_at"])


# --- reading ------------------------------------------------------------------------------------
def _zero() -> dict:
    return {name: Decimal(0) for name in INTAKE_NUTRIENTS}


def _days(student: Student, start: dt.date, end: dt.date) -> list[dict]:
    entries = list(MealEntry.select(MealEntry, MealLog.dish_ids).join(MealLog)
                   .where((MealEntry.student == student.id) & (MealEntry.date >= start) & (MealEntry.date <= end))
                   .objects())
    menu = {row.date: row.published_meals() for row in MenuDay.select(MenuDay.date, MenuDay.published).where(
        (MenuDay.school == student.school_id) & (MenuDay.date >= start) & (MenuDay.date <= end)
        & MenuDay.published.is_null(False))}
    logged: dict[dt.date, dict[str, tuple[MealEntry, list[int]]]] = defaultdict(dict)
    ids: set[int] = set()
    for entry in entries:
        served = json.loads(entry.dish_ids or "[]")
        logged[entry.date][entry.meal] = (entry, served)
        ids.update(served)
    for meals in menu.values():
        for dish_ids in meals.values():
            ids.update(dish_ids)
    dishes = dishes_by_id(ids)
    allergies = alerts.allergies_by_student([student.id]).get(student.id, set())
    out = []
    for day in sorted(set(logged) | set(menu)):
        meals_out, intake = [], _zero()
        for meal in MEALS:
            if meal in logged[day]:
                entry, served = logged[day][meal]
                portion, note = entry.portion, entry.note
                fraction = PORTIONS[portion]
                for dish_id in served:
                    dish = dishes.get(dish_id)
                    if dish is not None:
                        for name in INTAKE_NUTRIENTS:
                            intake[name] += fraction * getattr(dish, name)
            elif menu.get(day, {}).get(meal):
                served, portion, note = menu[day][meal], None, None
            else:
                continue
            present = [dishes[d] for d in served if d in dishes]
            flags = [{"dish_id": d.id, "allergen": a} for d in present
                     for a in ordered_allergens(allergies & set(d.allergen_list))]
            meals_out.append({"meal": meal, "dishes": [dish_brief(d) for d in present], "portion": portion,
                              "note": note, "flags": flags})
        eaten = list(logged[day]) or [m["meal"] for m in meals_out]
        out.append({"date": day, "meals": meals_out, "logged": bool(logged[day]),
                    "intake": {k: q2(v) for k, v in intake.items()},
                    "recommended": recommended(student.birth_date, day, eaten)})
    return out


def _weeks(days: list[dict], start: dt.date, end: dt.date) -> list[dict]:
    """ISO weeks of the range (clipped to it) with the totals of their logged days."""
    out: dict[str, dict] = {}
    for day in days:
        year, week, _ = day["date"].isocalendar()
        key = f"{year}-W{week:02d}"
        monday = day["date"] - dt.timedelta(days=day["date"].weekday())
        item = out.setdefault(key, {"week": key, "from": max(start, monday),
                                    "to": min(end, monday + dt.timedelta(days=6)), "days_logged": 0,
                                    "intake": _zero(), "recommended": _zero(), "_missing": False})
        if not day["logged"]:
            continue
        item["days_logged"] += 1
        for name in INTAKE_NUTRIENTS:
            item["intake"][name] += day["intake"][name]
        if day["recommended"] is None:
            item["_missing"] = True
        else:
            for name in INTAKE_NUTRIENTS:
                item["recommended"][name] += day["recommended"][name]
    result = []
    for item in out.values():
        missing = item.pop("_missing") or not item["days_logged"]
        item["recommended"] = None if missing else item["recommended"]
        result.append(item)
    return result


def student_meals(user: User | int, student_id, start: dt.date | None = None, end: dt.date | None = None,
                  today: dt.date | None = None) -> dict:
    """``{days: [{date, meals, logged, intake, recommended}], weeks: [...]}`` for the caller's view of a child.

    Days listed: those with a published menu or a logged meal. A meal on the menu but not logged
    has ``portion: null``."""
    student = policy.student_reader(user, student_id)
    start, end = date_range(start, end, today or roster.school_today(student.school_id))
    days = _days(student, start, end)
    return {"student_id": student.id, "days": days, "weeks": _weeks(days, start, end)}


def meals_for_day(student_id: int, date: dt.date) -> list[dict]:
    """The child's meals of one day for the contact book's day page (the caller has authorised).

    ``[{meal, dishes: [{id, name, allergens}], portion, note, flags: [{dish_id, allergen}]}]``:
    logged meals with what the child ate, published-menu meals not logged yet with ``portion: None``.
    Ids are ints here; serialise them as strings (API.md). ``student_id`` may be the student's row
    itself (the day's page has read it: no second read)."""
    student = student_id if isinstance(student_id, Student) else Student.get_or_none(Student.id == int(student_id))
    if student is None:
        return []
    days = _days(student, date, date)
    return days[0]["meals"] if days else []
