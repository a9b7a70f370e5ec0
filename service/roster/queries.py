"""Roster reads other packages use: announcement audiences, terms and staff for timetables.

Trusted internals, like ``logic``: callers have authorised (``service.roster.policy``); each is one
query (or a few) whatever the number of ids.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable

import peewee as pw

from ..accounts.models import User
from ..db import db
from ..prepared import Prepared, among
from .models import (STAFF_ROLES, ClassTeacher, School, SchoolClass, SchoolYear, StaffRole, Student, StudentGuardian,
                     Term)


# --- audiences (notifications: announcements) ------------------------------------------------
def _audience_students(school_id: int, grades: Iterable[int] | None, class_ids: Iterable[int] | None):
    """A query of the audience's student ids: the whole school, or its given grades and/or classes."""
    grades, class_ids = list(grades or []), list(class_ids or [])
    query = Student.select(Student.id).where(Student.school == school_id)
    if grades or class_ids:
        cond = None
        if grades:
            cond = Student.school_class.in_(SchoolClass.select(SchoolClass.id).where(
                (SchoolClass.school == school_id) & SchoolClass.grade.in_(grades)))
        if class_ids:
            c2 = Student.school_class.in_(class_ids)
            cond = c2 if cond is None else (cond | c2)
        query = query.where(cond)
    return query


def audience_guardian_ids(school_id: int, grades: Iterable[int] | None = None,
                          class_ids: Iterable[int] | None = None, guardian_ids: Iterable[int] | None = None,
                          limit: int | None = None) -> list[int]:
    """Distinct guardians (sorted) of an announcement audience of one school.

    ``grades``/``class_ids`` narrow the school to those students (their union); ``guardian_ids``
    adds guardians explicitly (only those with a child in the school count). Only
    ``guardian_ids`` given: exactly those. Nothing given: every guardian of the school.
    """
    grades, class_ids, explicit = list(grades or []), list(class_ids or []), list(guardian_ids or [])
    sets = []
    if grades or class_ids or not explicit:
        sets.append(StudentGuardian.select(StudentGuardian.guardian).where(
            StudentGuardian.student.in_(_audience_students(school_id, grades, class_ids))))
    if explicit:
        sets.append(StudentGuardian.select(StudentGuardian.guardian).join(Student).where(
            (Student.school == school_id) & StudentGuardian.guardian.in_(explicit)))
    ids: set[int] = set()
    for query in sets:
        q = query.distinct().order_by(StudentGuardian.guardian)
        if limit is not None:
            q = q.limit(limit)
        sql, params = q.sql()  # plain rows: peewee's conversion of 100,000 ids took 0.4 s of a planner's 0.5 s
        ids.update(row[0] for row in db.execute_sql(sql, params))
    out = sorted(ids)
    return out[:limit] if limit is not None else out


def audience_children_sql(param, postgres: bool, school_id: int, grades, class_ids, guardian_ids) -> str:
    """SQL of the children in the school of the guardians in the CTE ``a(user_id)`` (the fan-out's
    chunk): ``guardian_id, student_id, name, named, explicit``. ``named``: the child is in the
    audience (the whole school, or its grades/classes); ``explicit``: the guardian was named.
    ``param(value)`` returns a placeholder for a value (the caller's statement holds them)."""
    grades, class_ids, explicit = list(grades or []), list(class_ids or []), list(guardian_ids or [])
    everyone = not grades and not class_ids and not explicit

    def in_list(values):
        return "(" + ", ".join(param(v) for v in values) + ")"

    if everyone:
        named = "true" if postgres else "1"
    else:
        parts = ([f"c.grade IN {in_list(grades)}"] if grades else []) + (
            [f"s.school_class_id IN {in_list(class_ids)}"] if class_ids else [])
        named = " OR ".join(parts) or ("false" if postgres else "0")
    is_explicit = f"sg.guardian_id IN {in_list(explicit)}" if explicit else ("false" if postgres else "0")
    return (f"SELECT sg.guardian_id, s.id AS student_id, s.name, ({named}) AS named, ({is_explicit}) AS explicit "
            f"FROM student_guardian sg JOIN student s ON s.id = sg.student_id "
            f"LEFT JOIN school_class c ON c.id = s.school_class_id "
            f"WHERE s.school_id = {param(school_id)} AND sg.guardian_id IN (SELECT user_id FROM a)")


def children_in_school(guardian_ids: Iterable[int], school_id: int) -> dict[int, list[dict]]:
    """``{guardian_id: [{id, name, class_id, grade}]}`` of each guardian's children in a school."""
    out: dict[int, list[dict]] = defaultdict(list)
    ids = list(guardian_ids)
    for start in range(0, len(ids), 5000):
        query = (StudentGuardian.select(StudentGuardian.guardian, Student.id, Student.name, Student.school_class,
                                        SchoolClass.grade)
                 .join(Student).join(SchoolClass, pw.JOIN.LEFT_OUTER, on=(Student.school_class == SchoolClass.id))
                 .where((Student.school == school_id) & StudentGuardian.guardian.in_(ids[start:start + 5000]))
                 .order_by(StudentGuardian.guardian, Student.id))
        for row in query.namedtuples():
            out[row.guardian].append({"id": row.id, "name": row.name, "class_id": row.school_class,
                                      "grade": row.grade})
    return dict(out)


def classes_in_school(school_id: int, class_ids: Iterable[int]) -> set[int]:
    """The subset of ``class_ids`` that are classes of the school."""
    ids = list({int(c) for c in class_ids})
    if not ids:
        return set()
    return {c.id for c in SchoolClass.select(SchoolClass.id).where(
        (SchoolClass.school == school_id) & SchoolClass.id.in_(ids))}


# --- terms and staff for timetables (schedules) ------------------------------------------------
def term_with_school(term_id: int) -> tuple[Term, int] | None:
    """The term and its school's id (one query), or None."""
    row = (Term.select(Term, SchoolYear.school.alias("year_school_id")).join(SchoolYear)
           .where(Term.id == term_id).objects().first())
    return (row, row.year_school_id) if row else None


def terms_between(school_id: int, start: dt.date, end: dt.date) -> list[Term]:
    """The school's terms overlapping ``start``..``end`` (inclusive), earliest first."""
    return list(Term.select().join(SchoolYear).where((SchoolYear.school == school_id) & (Term.starts_on <= end)
                                                     & (Term.ends_on >= start)).order_by(Term.starts_on))


def terms_by_id(term_ids: Iterable[int]) -> dict[int, Term]:
    ids = list({int(t) for t in term_ids})
    return {t.id: t for t in Term.select().where(Term.id.in_(ids))} if ids else {}


def staff_member_ids(school_id: int, user_ids: Iterable[int], roles: Iterable[str] = STAFF_ROLES) -> set[int]:
    """Of ``user_ids``, those holding one of ``roles`` in the school (one query)."""
    ids = list({int(u) for u in user_ids})
    if not ids:
        return set()
    return {r.user_id for r in StaffRole.select(StaffRole.user).where(
        (StaffRole.school == school_id) & StaffRole.user.in_(ids) & StaffRole.role.in_(list(roles)))}


def staff_school_ids(user_id: int, roles: Iterable[str] = STAFF_ROLES) -> set[int]:
    return {r.school_id for r in StaffRole.select(StaffRole.school).where(
        (StaffRole.user == user_id) & StaffRole.role.in_(list(roles)))}


def schools_timezones(school_ids: Iterable[int]) -> dict[int, str]:
    ids = list({int(s) for s in school_ids})
    return {s.id: s.timezone for s in School.select(School.id, School.timezone).where(School.id.in_(ids))} if ids else {}


def classes_info(class_ids: Iterable[int]) -> dict[int, dict]:
    """``{class_id: {id, name, grade, school_id}}`` in one query."""
    ids = list({int(c) for c in class_ids})
    if not ids:
        return {}
    return {c.id: {"id": c.id, "name": c.name, "grade": c.grade, "school_id": c.school_id}
            for c in SchoolClass.select(SchoolClass.id, SchoolClass.name, SchoolClass.grade, SchoolClass.school)
            .where(SchoolClass.id.in_(ids))}


# --- class channels and /me (messaging, accounts: the hot paths, one query each) ----------------
def member_class_ids_query(user_id: int):
    """A query (``id`` column) of the classes whose channel the user belongs to: the classes they
    teach (homeroom or subject) and their children's classes. Usable as a subquery."""
    user_id = int(user_id)
    return (SchoolClass.select(SchoolClass.id).where(SchoolClass.homeroom_teacher == user_id)
            | ClassTeacher.select(ClassTeacher.school_class).where(ClassTeacher.teacher == user_id)
            | Student.select(Student.school_class).join(StudentGuardian, on=(StudentGuardian.student == Student.id))
            .where((StudentGuardian.guardian == user_id) & Student.school_class.is_null(False)))


def class_member_rows_query(classes):
    """The rows ``class_members_named`` orders: ``class_id, rank, pos, user_id, name`` with rank 0 the
    homeroom teacher, 1 a subject teacher (``pos`` the assignment's id), 2 a guardian of a student
    of the class (``pos`` the user id); a class's members are its users in (rank, pos, user_id)
    order of their first row, teachers those with a row of rank < 2. ``classes``: a parameter of a
    prepared query (a list) or a subquery of class ids."""
    homeroom = (SchoolClass.select(SchoolClass.id.alias("class_id"), pw.Value(0).alias("rank"),
                                   pw.Value(0).alias("pos"), User.id.alias("user_id"), User.name.alias("name"))
                .join(User, on=(User.id == SchoolClass.homeroom_teacher)).where(among(SchoolClass.id, classes)))
    subject = (ClassTeacher.select(ClassTeacher.school_class, pw.Value(1), ClassTeacher.id, User.id, User.name)
               .join(User, on=(User.id == ClassTeacher.teacher)).where(among(ClassTeacher.school_class, classes)))
    guardians = (StudentGuardian.select(Student.school_class, pw.Value(2), User.id, User.id, User.name).distinct()
                 .join(Student, on=(StudentGuardian.student == Student.id))
                 .join(User, on=(User.id == StudentGuardian.guardian)).where(among(Student.school_class, classes)))
    return homeroom + subject + guardians  # UNION ALL


_CLASS_MEMBERS_NAMED = Prepared("class_members_named", lambda p: class_member_rows_query(p.ids).tuples())


def class_members_named(class_ids: Iterable[int]) -> dict[int, list[tuple[int, str, str]]]:
    """``{class_id: [(user_id, "teacher"|"guardian", name)]}``: as ``logic.class_members`` (the
    homeroom teacher first, then subject teachers, then the guardians of its students who are not
    its teachers, by id), with the people's names, in one query whatever the number of classes."""
    ids = sorted({int(c) for c in class_ids})
    if not ids:
        return {}
    rows = sorted(_CLASS_MEMBERS_NAMED.raw(ids=ids))  # (class, rank, pos) orders each class
    teachers: dict[int, dict[int, str]] = {c: {} for c in ids}
    guardians_of: dict[int, dict[int, str]] = {c: {} for c in ids}
    for class_id, rank, _pos, user_id, name in rows:
        (teachers if rank < 2 else guardians_of)[class_id].setdefault(user_id, name)
    return {c: [(u, "teacher", n) for u, n in teachers[c].items()]
            + [(u, "guardian", n) for u, n in guardians_of[c].items() if u not in teachers[c]] for c in ids}


def me_view(user_id: int) -> tuple[list[dict], list[Student]]:
    """``(roles, children)`` of ``GET /me``, as ``logic.roles_of`` and ``logic.children_of`` give
    them, in three queries: the staff roles, the classes taught with their schools, the children."""
    user_id = int(user_id)
    staff = [(r.role, r.school_id) for r in StaffRole.select(StaffRole.role, StaffRole.school)
             .where(StaffRole.user == user_id)]
    taught = (SchoolClass.select(SchoolClass.id, SchoolClass.school).where(SchoolClass.homeroom_teacher == user_id)
              | SchoolClass.select(SchoolClass.id, SchoolClass.school)
              .join(ClassTeacher, on=(ClassTeacher.school_class == SchoolClass.id))
              .where(ClassTeacher.teacher == user_id))
    class_school = dict(taught.tuples()) if any(role == "teacher" for role, _ in staff) else {}
    children = list(Student.select().join(StudentGuardian, on=(StudentGuardian.student == Student.id))
                    .where(StudentGuardian.guardian == user_id).order_by(Student.id))
    roles = []
    for role, school_id in sorted(staff, key=lambda r: (r[1], STAFF_ROLES.index(r[0]))):
        ids = sorted(c for c, s in class_school.items() if s == school_id) if role == "teacher" else []
        roles.append({"role": role, "school_id": school_id, "class_ids": ids})
    guardian_schools: dict[int, list[int]] = {}
    for child in children:
        guardian_schools.setdefault(child.school_id, [])
        if child.school_class_id and child.school_class_id not in guardian_schools[child.school_id]:
            guardian_schools[child.school_id].append(child.school_class_id)
    roles += [{"role": "guardian", "school_id": s, "class_ids": c} for s, c in guardian_schools.items()]
    return roles, children
