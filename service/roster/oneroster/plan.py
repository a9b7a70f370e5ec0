"""Stage 3: what one school's import means in Lienlac terms."""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from ..models import School
from .read import Problems
from .validate import Enrollment, Klass, Org, Parsed, Person, Session, _grade, _year_of
from .vocab import GUARDIAN_ROLES, STAFF_ROLE_MAP, STUDENT_ROLES

# --- the plan for one school -----------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    org: Org
    years: list[Session]
    terms: list[tuple[Session, str]]
    classes: list[Klass]
    class_year: dict[str, str | None]
    class_grade: dict[str, int | None]
    homeroom: dict[str, str | None]  # class sid → teacher user sid (None: no active teacher enrollment)
    subject_teachers: dict[tuple[str, str], str]  # (class sid, user sid) → subject
    people: list[Person]  # users needing an account (staff, guardians, staff linked as guardians)
    staff_roles: set[tuple[str, str]]  # (user sid, role)
    students: list[Person]
    student_class: dict[str, str]  # student sid → class sid
    birth_dates: dict[str, dt.date]
    links: dict[tuple[str, str], str]  # (student sid, guardian sid) → relationship
    leave_class: dict[str, str | None]  # student sid → class sid to leave (None: any class)
    drop_staff: list[str]
    drop_guardians: list[str]
    drop_class_teachers: set[tuple[str, str]]
    #: delta rows naming classes or users imported before (not in this bundle), applied through the database
    delta_enrollments: list[Enrollment] = dataclasses.field(default_factory=list)
    delta_links: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)


def build_plan(p: Parsed, org: Org, problems: Problems | None = None) -> Plan:
    problems = problems or Problems()
    school = org.sid
    classes = [k for k in p.classes.values() if k.school_sid == school and k.status == "active"]
    class_set = {k.sid for k in classes}
    users = p.users
    delta_enrollments = [e for e in p.enrollments.values()
                         if (e.class_sid not in p.classes or e.user_sid not in users)
                         and (e.class_sid in class_set or e.school_sid == school)]
    for e in p.enrollments.values():
        if e.role in ("proctor", "administrator") and (e.class_sid in class_set or e.school_sid == school):
            problems.warn("enrollments.csv", e.line, "role",
                          f"Lienlac has no {e.role} in a class: this enrollment is not imported "
                          "(the user keeps their role at the school)")
    active_enrollments = [e for e in p.enrollments.values()
                          if e.class_sid in class_set and e.user_sid in users and e.status == "active"
                          and users[e.user_sid].status == "active" and e.role in ("student", "teacher", "aide")]

    # sessions: the ones this school's classes and courses name (and their parents); all if none are named
    named: set[str] = set()
    for k in classes:
        named.update(k.term_sids)
        course = p.courses.get(k.course_sid)
        if course and course.year_sid:
            named.add(course.year_sid)
    wanted: set[str] = set()
    for sid in named:
        while sid and sid in p.sessions and sid not in wanted:
            wanted.add(sid)
            sid = p.sessions[sid].parent
        year = _year_of(p, sid) if sid else None
        if year:
            wanted.add(year)
    if not named:
        wanted = set(p.sessions)
    for sid in list(wanted):
        year = _year_of(p, sid)
        if year:
            wanted.add(year)
    active = [s for s in p.sessions.values() if s.sid in wanted and s.status == "active"]
    for s in p.sessions.values():
        if s.type == "gradingPeriod" and s.status == "active":
            problems.warn("academicSessions.csv", s.line, "type",
                          "grading periods are not stored (grades are kept by term): skipped")
    # a school year made from schoolYear values gets a sourcedId of this school (sourcedIds are global)
    rename = {s.sid: f"{school}:{s.sid}"[:100] for s in active if s.synthetic}
    years = [dataclasses.replace(s, sid=rename[s.sid]) if s.sid in rename else s
             for s in active if s.type == "schoolYear"]
    terms = [(s, rename.get(y, y)) for s, y in ((s, _year_of(p, s.sid)) for s in active
                                                 if s.type in ("term", "semester")) if y]

    class_year: dict[str, str | None] = {}
    class_grade: dict[str, int | None] = {}
    for k in classes:
        year = None
        for t in k.term_sids:
            year = _year_of(p, t)
            if year:
                break
        course = p.courses.get(k.course_sid)
        if year is None and course and course.year_sid:
            year = _year_of(p, course.year_sid)
        class_year[k.sid] = rename.get(year, year)
        grade = _grade(k.grades)
        if grade is None and course and not k.grades:
            grade = _grade(course.grades) or None
        class_grade[k.sid] = grade or None

    # teachers of each class: the primary one (else the first) is the homeroom teacher
    teachers_of: dict[str, list[Enrollment]] = defaultdict(list)
    student_class: dict[str, str] = {}
    for e in active_enrollments:
        if e.role in ("teacher", "aide"):
            teachers_of[e.class_sid].append(e)
        elif e.role == "student":
            student_class.setdefault(e.user_sid, e.class_sid)
    homeroom: dict[str, str | None] = {}
    subject_teachers: dict[tuple[str, str], str] = {}
    by_class = {k.sid: k for k in classes}
    for sid in class_set:
        enrolled = teachers_of.get(sid, [])
        if not enrolled:
            homeroom[sid] = None
            continue
        teachers = [e for e in enrolled if e.role == "teacher"]  # an aide is never the homeroom teacher
        primary = next((e for e in teachers if e.primary), teachers[0]) if teachers else None
        homeroom[sid] = primary.user_sid if primary else None
        k = by_class[sid]
        course = p.courses.get(k.course_sid)
        if len(k.subjects) == 1:
            subject = k.subjects[0]
        elif course and course.title:
            subject = course.title
        else:
            subject = ", ".join(k.subjects)
        for e in enrolled:
            if primary is None or e.user_sid != primary.user_sid:
                subject_teachers.setdefault((sid, e.user_sid), subject[:100])

    enrolled_users = {e.user_sid for e in active_enrollments}
    in_school = lambda u: school in u.org_sids  # noqa: E731
    students = [u for u in users.values() if u.role in STUDENT_ROLES and u.status == "active"
                and (in_school(u) or u.sid in enrolled_users)]
    student_set = {u.sid for u in students}
    staff = [u for u in users.values() if u.role in STAFF_ROLE_MAP and u.status == "active"
             and (in_school(u) or u.sid in enrolled_users)]
    staff_roles = {(u.sid, STAFF_ROLE_MAP[u.role]) for u in staff}
    staff_roles |= {(e.user_sid, "teacher") for e in active_enrollments if e.role in ("teacher", "aide")}
    for u in users.values():
        if u.role == "administrator" and u.status == "active" and u not in staff \
                and not any(p.orgs[o].type == "school" for o in u.org_sids if o in p.orgs):
            problems.warn("users.csv", u.line, "orgSourcedIds",
                          "an administrator of the district (no school in orgSourcedIds): Lienlac gives roles "
                          "per school, so no role is imported; add them as an admin of each school they run")

    # guardian links, from either side
    links: dict[tuple[str, str], str] = {}
    sex = {d.sid: d.sex for d in p.demographics.values() if d.status == "active"}

    def relationship(g: Person) -> str:
        if g.role == "parent":
            return {"female": "mother", "male": "father"}.get(sex.get(g.sid, ""), "guardian")
        return "relative" if g.role == "relative" else "guardian"

    delta_links: dict[tuple[str, str], str] = {}

    def link(student_sid: str, guardian_sid: str) -> None:
        g = users.get(guardian_sid)
        if g is None:  # a guardian imported before, named by a delta's student row
            if student_sid in student_set:
                delta_links.setdefault((student_sid, guardian_sid), "guardian")
        elif student_sid not in users:  # a student imported before, named by a delta's guardian row
            if g.status == "active" and g.role in GUARDIAN_ROLES:
                delta_links.setdefault((student_sid, guardian_sid), relationship(g))
        elif student_sid in student_set and g.status == "active" and g.role not in STUDENT_ROLES:
            links.setdefault((student_sid, guardian_sid), relationship(g))

    for u in users.values():
        if u.status != "active":
            continue
        if u.role in STUDENT_ROLES:
            for a in u.agent_sids:
                link(u.sid, a)
        elif u.role in GUARDIAN_ROLES:
            for a in u.agent_sids:
                link(a, u.sid)
    linked = {g for _, g in links} | {g for _, g in delta_links if g in users}
    for u in users.values():
        if u.role == "relative" and u.status == "active" and u.sid not in linked and in_school(u):
            problems.warn("users.csv", u.line, "agentSourcedIds",
                          "a relative linked to no student (agentSourcedIds) is nobody's guardian here: "
                          "not imported")
    guardians = [u for u in users.values() if u.role in GUARDIAN_ROLES and u.status == "active"
                 and (in_school(u) and u.role != "relative" or u.sid in linked)]
    needed = {u.sid for u in staff} | {u.sid for u in guardians} | linked | {s for s, _ in staff_roles}
    needed = {p.alias_of.get(sid, sid) for sid in needed}  # a parent row sharing a staff row's phone
    people = [users[sid] for sid in sorted(needed, key=lambda s: users[s].line)]

    birth_dates = {d.sid: d.birth_date for d in p.demographics.values()
                   if d.birth_date and d.sid in student_set and d.status == "active"}

    # tobedeleted rows of this school
    leave_class: dict[str, str | None] = {}
    drop_class_teachers: set[tuple[str, str]] = set()
    school_enrollments = [e for e in p.enrollments.values() if e.class_sid in class_set and e.user_sid in users]
    enrolled_any = {e.user_sid for e in school_enrollments}
    agents_of_students = {a for s in students for a in s.agent_sids}
    drop_staff, drop_guardians = [], []
    for u in users.values():
        if u.status != "tobedeleted":
            continue
        concerned = (in_school(u) or u.sid in enrolled_any or u.sid in agents_of_students
                     or (u.role in GUARDIAN_ROLES and any(a in student_set or p.delta and a not in users
                                                          for a in u.agent_sids)))
        if not concerned:
            continue
        if u.role in STUDENT_ROLES:
            leave_class[u.sid] = None
        elif u.role in STAFF_ROLE_MAP:
            drop_staff.append(u.sid)
        else:
            drop_guardians.append(u.sid)
    for e in school_enrollments:
        if e.status != "tobedeleted":
            continue
        if e.role == "student" and e.user_sid not in student_class and e.user_sid not in leave_class:
            leave_class[e.user_sid] = e.class_sid
        elif e.role in ("teacher", "aide") and (e.class_sid, e.user_sid) not in subject_teachers:
            drop_class_teachers.add((e.class_sid, e.user_sid))

    return Plan(org, years, terms, classes, class_year, class_grade, homeroom, subject_teachers, people,
                staff_roles, students, student_class, birth_dates, links, leave_class, drop_staff,
                drop_guardians, drop_class_teachers, delta_enrollments, delta_links)


def _resolve_school(p: Parsed, school_ref: str | None, school_id: int | None,
                    problems: Problems) -> tuple[School | None, Org | None]:
    """The org to import and our School for it (None: created at write time)."""
    schools = [o for o in p.orgs.values() if o.type == "school"]
    if school_id is None and school_ref is not None:
        org = p.orgs.get(school_ref)
        if org is not None:
            if org.type != "school":
                problems.add("orgs.csv", org.line, "type", f"org {org.sid!r} is a {org.type}, not a school")
                return None, None
            if org.status != "active":
                problems.add("orgs.csv", org.line, "status", f"school {org.sid!r} is marked tobedeleted")
                return None, None
            return School.get_or_none(School.sourced_id == org.sid), org
        known = School.get_or_none(School.sourced_id == school_ref) if p.delta or not p.orgs else None
        if known is not None:
            return known, _org_of(known)
        if not school_ref.strip().isdigit():
            problems.add("orgs.csv", None, "sourcedId",
                         f"no org with sourcedId {school_ref!r} (schools in the file: "
                         f"{', '.join(o.sid for o in schools) or 'none'})")
            return None, None
        school_id = int(school_ref)
    school = School.get_or_none(School.id == school_id)
    if school is None:
        problems.add("orgs.csv", None, "sourcedId", f"no school with id {school_id} and no org with that sourcedId")
        return None, None
    if school.sourced_id:
        org = p.orgs.get(school.sourced_id)
        if org is None and (p.delta or not p.orgs):  # a delta without orgs.csv: the school as imported before
            return school, _org_of(school)
        if org is None:
            problems.add("orgs.csv", None, "sourcedId",
                         f"school {school.id} is org {school.sourced_id!r}, which is not in orgs.csv")
        elif org.status != "active":
            problems.add("orgs.csv", org.line, "status", f"school {org.sid!r} is marked tobedeleted")
            org = None
        return school, org
    candidates = [o for o in schools if o.status == "active"]
    if len(candidates) != 1:
        problems.add("orgs.csv", None, "type",
                     f"school {school.id} has no sourcedId yet and orgs.csv lists {len(candidates)} schools: "
                     "import with --school <sourcedId> once to choose")
        return school, None
    org = candidates[0]
    other = School.get_or_none(School.sourced_id == org.sid)
    if other is not None and other.id != school.id:
        problems.add("orgs.csv", org.line, "sourcedId", f"org {org.sid!r} is already imported as another school")
        return school, None
    return school, org




def _org_of(school: School) -> Org:
    """The school's org as imported before (a delta bundle need not repeat orgs.csv)."""
    return Org(school.sourced_id, None, "active", school.name, "school", school.code or "", "")
