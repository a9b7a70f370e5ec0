"""Timetables (thời khóa biểu): a class's weekly periods for a term, set whole by an admin."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from service.roster import logic as roster

from service.roster import queries as roster_queries
from service.db import write_transaction
from service.errors import Conflict, NotFound, ValidationError

from .. import policy
from ..models import TimetablePeriod
from . import common

MAX_PERIOD = 20
TEACHER_ROLES = ("teacher", "admin")  # an admin may teach too


def _overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def _clean_periods(periods: list[dict], school_id: int) -> list[dict]:
    """Check every period (422 with the field paths of all problems); returns rows to store."""
    errors: dict[str, list[str]] = {}
    rows = []
    for i, p in enumerate(periods):
        where = f"periods.{i}"
        row = {"weekday": p.get("weekday"), "period": p.get("period"), "subject": (p.get("subject") or "").strip(),
               "teacher": p.get("teacher_id"), "room": (p.get("room") or "").strip() or None}
        if not isinstance(row["weekday"], int) or not 1 <= row["weekday"] <= 7:
            errors[f"{where}.weekday"] = ["A weekday 1 (Monday) to 7 (Sunday)."]
        if not isinstance(row["period"], int) or not 1 <= row["period"] <= MAX_PERIOD:
            errors[f"{where}.period"] = [f"A period number 1 to {MAX_PERIOD}."]
        if not row["subject"]:
            errors[f"{where}.subject"] = ["Required."]
        for name in ("start", "end"):
            try:
                row[f"{name}_min"] = common.minutes_of(p.get(name), f"{where}.{name}")
            except ValidationError:
                errors[f"{where}.{name}"] = ["A time HH:MM (00:00–23:59)."]
        if "start_min" in row and "end_min" in row and row["end_min"] <= row["start_min"]:
            errors[f"{where}.end"] = ["The period ends after it starts."]
        rows.append(row)
    seen: dict[tuple, int] = {}
    for i, row in enumerate(rows):
        if any(f"periods.{i}.{f}" in errors for f in ("weekday", "period", "start", "end")):
            continue
        key = (row["weekday"], row["period"])
        if key in seen:
            errors[f"periods.{i}.period"] = [f"Period {row['period']} is given twice for weekday {row['weekday']}."]
            continue
        for j, other in enumerate(rows[:i]):
            if (j in seen.values() and other["weekday"] == row["weekday"]
                    and _overlap(row["start_min"], row["end_min"], other["start_min"], other["end_min"])):
                errors[f"periods.{i}.start"] = [f"Overlaps period {other['period']} of the same day (periods.{j})."]
                break
        seen[key] = i
    teacher_ids = {r["teacher"] for r in rows if r["teacher"] is not None}
    staff = roster_queries.staff_member_ids(school_id, teacher_ids, TEACHER_ROLES)
    for i, row in enumerate(rows):
        if row["teacher"] is not None and row["teacher"] not in staff:
            errors[f"periods.{i}.teacher_id"] = ["Not a teacher of this school."]
    if errors:
        raise ValidationError("The request has invalid fields.", fields=common.nest(errors))
    return rows


def _term_of_class(klass, term_id: int):
    found = roster_queries.term_with_school(term_id)
    if found is None or found[1] != klass.school_id:
        raise ValidationError("The request has invalid fields.", fields={"term_id": ["No such term in this school."]})
    term = found[0]
    if klass.school_year_id and term.school_year_id != klass.school_year_id:
        raise ValidationError("The request has invalid fields.",
                              fields={"term_id": ["The term is not of the class's school year."]})
    return term


def _clashes(class_id: int, term_id: int, rows: list[dict]) -> list[dict]:
    """Periods of other classes in the term where one of these rows' teachers is busy at an overlapping time."""
    by_teacher = defaultdict(list)
    for i, row in enumerate(rows):
        if row["teacher"] is not None:
            by_teacher[row["teacher"]].append((i, row))
    if not by_teacher:
        return []
    others = (TimetablePeriod.select().where((TimetablePeriod.term == term_id)
                                             & TimetablePeriod.teacher.in_(list(by_teacher))
                                             & (TimetablePeriod.school_class != class_id)))
    found = []
    for other in others:
        for i, row in by_teacher[other.teacher_id]:
            if row["weekday"] == other.weekday and _overlap(row["start_min"], row["end_min"], other.start_min,
                                                             other.end_min):
                found.append({"index": i, "row": row, "other": other})
    return found


def _clash_error(clashes: list[dict]) -> Conflict:
    classes = roster_queries.classes_info({c["other"].school_class_id for c in clashes})
    names = roster.user_names({c["other"].teacher_id for c in clashes})
    fields: dict[str, list[str]] = {}
    messages = []
    for c in sorted(clashes, key=lambda c: (c["index"], c["other"].id)):
        other = c["other"]
        text = (f"{names.get(other.teacher_id, 'The teacher')} (teacher {other.teacher_id}) already teaches class "
                f"{classes[other.school_class_id]['name']} (class {other.school_class_id}) on "
                f"{common.WEEKDAYS_EN[other.weekday]} (weekday {other.weekday}), period {other.period}, "
                f"{common.hhmm(other.start_min)}–{common.hhmm(other.end_min)} this term.")
        fields.setdefault(f"periods.{c['index']}.teacher_id", []).append(text)
        messages.append(text)
    return Conflict("A teacher would be in two classes at once: " + messages[0]
                    + (f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""), fields=common.nest(fields))


def set_timetable(user, class_id: int, term_id: int, periods: list[dict]) -> dict:
    """Replace the class's timetable for the term (admin). Bad periods → 422; a teacher in two classes
    at overlapping times in the term → 409 naming the clash. Nothing is stored unless all is well."""
    klass = policy.class_for_timetable_write(user, class_id)
    term = _term_of_class(klass, term_id)
    rows = _clean_periods(periods, klass.school_id)
    with write_transaction():
        common.lock("timetable-term", term.id)  # two classes' timetables for the term: one at a time
        clashes = _clashes(klass.id, term.id, rows)
        if clashes:
            raise _clash_error(clashes)
        TimetablePeriod.delete().where((TimetablePeriod.school_class == klass.id)
                                       & (TimetablePeriod.term == term.id)).execute()
        if rows:
            TimetablePeriod.insert_many([
                {"school_class": klass.id, "term": term.id, "weekday": r["weekday"], "period": r["period"],
                 "start_min": r["start_min"], "end_min": r["end_min"], "subject": r["subject"],
                 "teacher": r["teacher"], "room": r["room"]} for r in rows]).execute()
    return timetable_view(klass, term)


def timetable_view(klass, term) -> dict:
    periods = list(TimetablePeriod.select().where((TimetablePeriod.school_class == klass.id)
                                                  & (TimetablePeriod.term == term.id))
                   .order_by(TimetablePeriod.weekday, TimetablePeriod.period))
    names = roster.user_names({p.teacher_id for p in periods if p.teacher_id})
    return {"class_id": klass.id, "term_id": term.id, "term": {"id": term.id, "name": term.name,
                                                               "starts_on": term.starts_on, "ends_on": term.ends_on},
            "periods": [{"weekday": p.weekday, "period": p.period, "start": common.hhmm(p.start_min),
                         "end": common.hhmm(p.end_min), "subject": p.subject, "teacher_id": p.teacher_id,
                         "teacher": teacher_ref(p.teacher_id, names), "room": p.room} for p in periods]}


def teacher_ref(teacher_id, names: dict) -> dict | None:
    if teacher_id is None:
        return None
    return {"id": teacher_id, "name": names.get(teacher_id, "")}


def get_timetable(user, class_id: int, term_id: int | None = None) -> dict:
    """The class's timetable for a term (default: the term running today in the school's timezone, else
    the next one, else the last one)."""
    klass = policy.class_for_timetable_read(user, class_id)
    if term_id is None:
        today = common.today_in(common.school_timezone(klass.school_id))
        terms = roster_queries.terms_between(klass.school_id, dt.date(1900, 1, 1), dt.date(3000, 12, 31))
        term = (next((t for t in terms if t.starts_on <= today <= t.ends_on), None)
                or next((t for t in terms if t.starts_on > today), None) or (terms[-1] if terms else None))
        if term is None:
            raise NotFound("The school has no terms.")
    else:
        term = _term_of_class(klass, term_id)
    return timetable_view(klass, term)
