"""Stage 2: typed rows from every file, and the checks across files (references, duplicates)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable

from ...accounts.logic import normalize_phone
from ...errors import ApiError
from .progress import NullProgress
from .read import Problems, Table, parse_table
from .vocab import (_DATE, ENROLLMENT_ROLES, GUARDIAN_ROLES, MANIFEST_MODES, ORG_TYPES, SESSION_TYPES, SEXES,
                    STAFF_ROLE_MAP, STUDENT_ROLES, USER_ROLES)

#: the warning on a parent or guardian without a phone: how the school lets them sign in
NO_PHONE = ("no phone: imported and linked to the children, but cannot sign in yet. Print invite codes for "
            "these families (`lienlac roster-invites --school ID` or POST /classes/{id}/guardian-invites): the "
            "guardian signs in with any phone and claims the child (POST /guardians/claim); or an admin adds "
            "the phone (PATCH /students/{id}/guardians/{user_id}), which later imports match")

# --- parsed rows -----------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class Org:
    sid: str
    line: int
    status: str
    name: str
    type: str
    identifier: str
    parent: str


@dataclasses.dataclass(slots=True)
class Session:
    sid: str
    line: int
    status: str
    title: str
    type: str
    start: dt.date | None
    end: dt.date | None
    parent: str
    year: str
    synthetic: bool = False  # a school year made from the schoolYear column of its terms


@dataclasses.dataclass(slots=True)
class Course:
    sid: str
    line: int
    status: str
    title: str
    year_sid: str
    grades: list[str]
    org_sid: str


@dataclasses.dataclass(slots=True)
class Klass:
    sid: str
    line: int
    status: str
    title: str
    grades: list[str]
    course_sid: str
    school_sid: str
    term_sids: list[str]
    subjects: list[str]
    subjects_raw: str


@dataclasses.dataclass(slots=True)
class Person:
    sid: str
    line: int
    status: str
    enabled: bool | None
    org_sids: list[str]
    role: str
    name: str
    identifier: str
    email: str
    phone: str | None
    phone_column: str
    agent_sids: list[str]


@dataclasses.dataclass(slots=True)
class Enrollment:
    sid: str
    line: int
    status: str
    class_sid: str
    school_sid: str
    user_sid: str
    role: str
    primary: bool


@dataclasses.dataclass(slots=True)
class Demographic:
    sid: str
    line: int
    status: str
    birth_date: dt.date | None
    sex: str


class _Row:
    """Typed access to one CSV row; every bad value becomes a problem naming file, line and column."""

    __slots__ = ("file", "line", "data", "problems")

    def __init__(self, file: str, line: int, data: dict[str, str], problems: Problems):
        self.file, self.line, self.data, self.problems = file, line, data, problems

    def error(self, column: str | None, message: str) -> None:
        self.problems.add(self.file, self.line, column, message)

    def get(self, column: str, max_len: int | None = None) -> str:
        value = self.data.get(column, "") or ""
        if max_len is not None and len(value) > max_len:
            self.error(column, f"longer than {max_len} characters")
            return value[:max_len]
        return value

    def warn(self, column: str | None, message: str) -> None:
        self.problems.warn(self.file, self.line, column, message)

    def required(self, column: str, max_len: int | None = None) -> str:
        value = self.get(column, max_len)
        if not value:
            self.error(column, f"{column} is required")
        return value

    def status(self) -> str:
        value = self.get("status").lower()
        if value not in ("", "active", "tobedeleted"):
            self.error("status", f"status must be active or tobedeleted, not {self.get('status')!r}")
        value = "tobedeleted" if value == "tobedeleted" else "active"
        modified = self.get("dateLastModified")
        if modified:
            try:
                dt.datetime.fromisoformat(modified)
            except ValueError:
                self.error("dateLastModified", f"not an ISO 8601 date-time: {modified!r}")
        return value

    def date(self, column: str, required: bool = False) -> dt.date | None:
        value = self.get(column)
        if not value:
            if required:
                self.error(column, f"{column} is required")
            return None
        if not _DATE.match(value):
            self.error(column, f"not a date (YYYY-MM-DD): {value!r}")
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.error(column, f"no such date: {value!r}")
            return None

    def boolean(self, column: str) -> bool | None:
        value = self.get(column).lower()
        if value in ("", ):
            return None
        if value in ("true", "false"):
            return value == "true"
        self.error(column, f"must be true or false, not {self.get(column)!r}")
        return None

    def ids(self, column: str) -> list[str]:
        return [v.strip() for v in self.get(column).split(",") if v.strip()]

    def choice(self, column: str, allowed: Iterable[str], required: bool = True) -> str:
        raw = self.get(column)
        value = raw.lower()
        allowed_lower = {a.lower(): a for a in allowed}
        if not value:
            if required:
                self.error(column, f"{column} is required")
            return ""
        if value not in allowed_lower:
            self.error(column, f"{raw!r} is not one of {', '.join(sorted(allowed))}")
            return ""
        return allowed_lower[value]


def _rows(table: Table | None, problems: Problems, progress) -> Iterable[_Row]:
    if table is None:
        return
    for line, data in table.rows:
        yield _Row(table.name, line, data, problems)
    progress.advance(len(table.rows))


def _unique(items: list, file: str, problems: Problems) -> dict:
    out: dict = {}
    for item in items:
        if not item.sid:
            continue
        if item.sid in out:
            problems.add(file, item.line, "sourcedId",
                         f"duplicate sourcedId {item.sid!r} (first on line {out[item.sid].line})")
            continue
        out[item.sid] = item
    return out


def _person_name(row: _Row) -> str:
    parts = [row.get("familyName"), row.get("middleName"), row.get("givenName")]
    name = " ".join(" ".join(p.split()) for p in parts if p)
    if not name:
        row.error("givenName", "the user has no name (givenName and familyName are empty)")
    elif len(name) > 200:
        row.error("givenName", "the name is longer than 200 characters")
        name = name[:200]
    return name


@dataclasses.dataclass
class Parsed:
    orgs: dict[str, Org]
    sessions: dict[str, Session]
    courses: dict[str, Course]
    classes: dict[str, Klass]
    users: dict[str, Person]
    enrollments: dict[str, Enrollment]
    demographics: dict[str, Demographic]
    alias_of: dict[str, str]  # guardian row sourcedId → staff row sourcedId with the same phone
    delta: bool = False  # the manifest names a file in delta mode: references may name rows already imported
    #: references to rows not in this (delta) bundle, checked against the school's data when writing:
    #: (file, line, column, kind, sourcedId), kind one of org, session, course, class, user
    external: list = dataclasses.field(default_factory=list)


def parse(files: dict[str, bytes], problems: Problems, progress=None) -> Parsed:
    """Read and validate every row of every file, with cross-file references."""
    progress = progress or NullProgress()
    tables = {name: parse_table(name, data, problems) for name, data in files.items()}
    progress.start("Checking rows", sum(len(t.rows) for t in tables.values() if t))

    manifest = tables.get("manifest.csv")
    delta = False
    for row in _rows(manifest, problems, progress):
        prop, value = row.get("propertyName"), row.get("value")
        if prop == "oneroster.version" and value not in ("1.1", "1.0"):
            row.error("value", f"OneRoster version {value!r}: only 1.1 CSV files are supported")
        elif prop.startswith("file.") and value.lower() not in MANIFEST_MODES:
            row.error("value", f"{value!r} is not one of absent, bulk, delta")
        delta = delta or (prop.startswith("file.") and value.lower() == "delta")

    orgs = []
    for row in _rows(tables.get("orgs.csv"), problems, progress):
        orgs.append(Org(row.required("sourcedId", 100), row.line, row.status(), row.required("name", 200),
                        row.choice("type", ORG_TYPES), row.get("identifier"), row.get("parentSourcedId")))
    sessions = []
    for row in _rows(tables.get("academicSessions.csv"), problems, progress):
        s = Session(row.required("sourcedId", 100), row.line, row.status(), row.required("title", 100),
                    row.choice("type", SESSION_TYPES.values()), row.date("startDate", True),
                    row.date("endDate", True), row.get("parentSourcedId"), row.get("schoolYear"))
        if s.start and s.end and s.end < s.start:
            row.error("endDate", f"ends ({s.end}) before it starts ({s.start})")
        sessions.append(s)
    courses = []
    for row in _rows(tables.get("courses.csv"), problems, progress):
        courses.append(Course(row.required("sourcedId", 100), row.line, row.status(), row.required("title", 100),
                              row.get("schoolYearSourcedId"), row.ids("grades"), row.get("orgSourcedId")))
    classes = []
    for row in _rows(tables.get("classes.csv"), problems, progress):
        k = Klass(row.required("sourcedId", 100), row.line, row.status(), row.required("title", 100),
                  row.ids("grades"), row.get("courseSourcedId"), row.required("schoolSourcedId"),
                  row.ids("termSourcedIds"), row.ids("subjects"), row.get("subjects"))
        if _grade(k.grades) is False:
            row.warn("grades", f"grade {k.grades[0]!r} is not a Vietnamese grade (1 to 12): the class has no grade")
        elif k.grades and _grade(k.grades) is None:
            row.warn("grades", f"grade {k.grades[0]!r} is not a Vietnamese grade (1 to 12): the class has no grade")
        classes.append(k)
    users = []
    for row in _rows(tables.get("users.csv"), problems, progress):
        sid, status = row.required("sourcedId", 100), row.status()
        role = row.choice("role", USER_ROLES)
        phone, phone_column = None, "phone"
        raw = row.get("phone") or row.get("sms")
        if raw and not row.get("phone"):
            phone_column = "sms"
        if role and role not in STUDENT_ROLES and raw:
            try:
                phone = normalize_phone(raw)
            except ApiError:
                row.warn(phone_column, f"not a phone number Lienlac can text: {raw!r}; imported without a phone")
        if role in GUARDIAN_ROLES and status == "active" and phone is None:
            row.warn("phone", NO_PHONE)
        identifier = row.get("identifier", 32) if role in STUDENT_ROLES else row.get("identifier")
        users.append(Person(sid, row.line, status, row.boolean("enabledUser"), row.ids("orgSourcedIds"), role,
                            _person_name(row), identifier, row.get("email", 200), phone, phone_column,
                            row.ids("agentSourcedIds")))
    enrollments = []
    for row in _rows(tables.get("enrollments.csv"), problems, progress):
        enrollments.append(Enrollment(row.required("sourcedId", 100), row.line, row.status(),
                                      row.required("classSourcedId"), row.get("schoolSourcedId"),
                                      row.required("userSourcedId"), row.choice("role", ENROLLMENT_ROLES),
                                      bool(row.boolean("primary"))))
        row.date("beginDate")
        row.date("endDate")
    demographics = []
    for row in _rows(tables.get("demographics.csv"), problems, progress):
        sex = row.get("sex").lower()
        if sex and sex not in SEXES:
            row.warn("sex", f"{row.get('sex')!r} is not one of {', '.join(sorted(SEXES))}: ignored")
            sex = ""
        demographics.append(Demographic(row.required("sourcedId", 100), row.line, row.status(),
                                        row.date("birthDate"), sex))

    p = Parsed(_unique(orgs, "orgs.csv", problems), _unique(sessions, "academicSessions.csv", problems),
               _unique(courses, "courses.csv", problems), _unique(classes, "classes.csv", problems),
               _unique(users, "users.csv", problems), _unique(enrollments, "enrollments.csv", problems),
               _unique(demographics, "demographics.csv", problems), {}, delta)
    _year_sessions(p)
    _check_references(p, problems)
    return p


def _year_sessions(p: Parsed) -> None:
    """A school year for each ``schoolYear`` value whose sessions reach no schoolYear session: dated by
    its sessions' earliest start and latest end."""
    grouped: dict[str, list[Session]] = {}
    for s in p.sessions.values():
        if s.type != "schoolYear" and s.year and s.status == "active" and _year_of(p, s.sid) is None:
            grouped.setdefault(s.year, []).append(s)
    for value, members in grouped.items():
        starts = [s.start for s in members if s.start]
        ends = [s.end for s in members if s.end]
        if not starts or not ends:
            continue
        start, end = min(starts), max(ends)
        title = f"{start.year}-{end.year}" if start.year != end.year else value
        sid = f"schoolYear={value}"
        p.sessions[sid] = Session(sid, None, "active", title[:100], "schoolYear", start, end, "", value, True)


def _grade(values: list[str]):
    """The class's grade (1..12), None when not numeric (KG, PK, ...), False when out of range."""
    if not values:
        return None
    value = values[0]
    if not value.isdigit():
        return None
    number = int(value)
    return number if 1 <= number <= 12 else False


def _check_references(p: Parsed, problems: Problems) -> None:
    kinds = {"org": "org", "academic session": "session", "course": "course", "class": "class", "user": "user"}

    def ref(file, line, column, value, table, what):
        if value and value not in table:
            if p.delta:  # a delta names rows sent before: checked against the school's data when writing
                p.external.append((file, line, column, kinds[what], value))
            else:
                problems.add(file, line, column, f"unknown {what} {value!r}")
            return False
        return bool(value)

    for o in p.orgs.values():
        ref("orgs.csv", o.line, "parentSourcedId", o.parent, p.orgs, "org")
    for s in p.sessions.values():
        ref("academicSessions.csv", s.line, "parentSourcedId", s.parent, p.sessions, "academic session")
    for c in p.courses.values():
        ref("courses.csv", c.line, "schoolYearSourcedId", c.year_sid, p.sessions, "academic session")
        ref("courses.csv", c.line, "orgSourcedId", c.org_sid, p.orgs, "org")
    for k in p.classes.values():
        if ref("classes.csv", k.line, "schoolSourcedId", k.school_sid, p.orgs, "org") \
                and p.orgs[k.school_sid].type and p.orgs[k.school_sid].type != "school":
            problems.add("classes.csv", k.line, "schoolSourcedId", f"org {k.school_sid!r} is not a school")
        ref("classes.csv", k.line, "courseSourcedId", k.course_sid, p.courses, "course")
        for t in k.term_sids:
            ref("classes.csv", k.line, "termSourcedIds", t, p.sessions, "academic session")
    for u in p.users.values():
        for o in u.org_sids:
            ref("users.csv", u.line, "orgSourcedIds", o, p.orgs, "org")
        for a in u.agent_sids:
            if ref("users.csv", u.line, "agentSourcedIds", a, p.users, "user") and u.role and p.users[a].role:
                other = p.users[a].role
                if u.role in STUDENT_ROLES and other in STUDENT_ROLES:
                    problems.add("users.csv", u.line, "agentSourcedIds",
                                 f"agent {a!r} is a student, not a parent or guardian")
                if u.role in GUARDIAN_ROLES and other not in STUDENT_ROLES:
                    problems.add("users.csv", u.line, "agentSourcedIds", f"agent {a!r} is not a student")
    for e in p.enrollments.values():
        known_class = ref("enrollments.csv", e.line, "classSourcedId", e.class_sid, p.classes, "class")
        if ref("enrollments.csv", e.line, "schoolSourcedId", e.school_sid, p.orgs, "org") and known_class \
                and p.classes[e.class_sid].school_sid != e.school_sid:
            problems.add("enrollments.csv", e.line, "schoolSourcedId",
                         f"class {e.class_sid!r} is in school {p.classes[e.class_sid].school_sid!r}")
        if ref("enrollments.csv", e.line, "userSourcedId", e.user_sid, p.users, "user") and e.role:
            user_role = p.users[e.user_sid].role
            if user_role and (e.role == "student") != (user_role in STUDENT_ROLES):
                problems.add("enrollments.csv", e.line, "role",
                             f"enrolled as {e.role} but user {e.user_sid!r} is a {user_role}")
            elif user_role in GUARDIAN_ROLES:
                problems.add("enrollments.csv", e.line, "role", f"user {e.user_sid!r} is a {user_role}")
    for d in p.demographics.values():
        ref("demographics.csv", d.line, "sourcedId", d.sid, p.users, "user")

    # terms need a school year (by parent chain or by the schoolYear column)
    for s in p.sessions.values():
        if s.type in ("term", "semester") and s.status == "active" and _year_of(p, s.sid) is None \
                and not (p.delta and s.parent and s.parent not in p.sessions):
            problems.warn("academicSessions.csv", s.line, "schoolYear",
                          "no school year (neither a parent schoolYear session nor a schoolYear value): "
                          "the term is not imported")
        if s.parent and _has_cycle(p, s.sid):
            problems.add("academicSessions.csv", s.line, "parentSourcedId", "the parent chain loops")

    # one person, one phone; a national id names one student
    seen_phone: dict[str, Person] = {}
    aliased_phones: set[str] = set()
    seen_identifier: dict[str, Person] = {}
    for u in p.users.values():
        if u.status != "active":
            continue
        if u.phone:
            first = seen_phone.get(u.phone)
            pair = {first.role, u.role} if first is not None else set()
            if first is None:
                seen_phone[u.phone] = u
            elif u.phone not in aliased_phones and pair & set(STAFF_ROLE_MAP) and pair & GUARDIAN_ROLES:
                staff, guardian = (first, u) if first.role in STAFF_ROLE_MAP else (u, first)
                p.alias_of[guardian.sid] = staff.sid  # a teacher who is also a parent here: one account
                seen_phone[u.phone] = staff
                aliased_phones.add(u.phone)
            else:  # one phone signs in one account: the later person is imported without it
                problems.warn("users.csv", u.line, u.phone_column,
                              f"phone {u.phone} is also on line {first.line} (sourcedId {first.sid!r}); one phone "
                              "signs in one account, so this person is imported without a phone")
                u.phone = None
        if u.role in STUDENT_ROLES and u.identifier:
            first = seen_identifier.get(u.identifier)
            if first is None:
                seen_identifier[u.identifier] = u
            else:
                problems.add("users.csv", u.line, "identifier",
                             f"identifier {u.identifier!r} is also on line {first.line}")


def _has_cycle(p: Parsed, sid: str) -> bool:
    seen = set()
    while sid and sid in p.sessions:
        if sid in seen:
            return True
        seen.add(sid)
        sid = p.sessions[sid].parent
    return False


def _year_of(p: Parsed, sid: str) -> str | None:
    """The schoolYear session a session belongs to (itself for a school year)."""
    seen = set()
    current = sid
    while current and current in p.sessions and current not in seen:
        seen.add(current)
        s = p.sessions[current]
        if s.type == "schoolYear":
            return s.sid if s.status == "active" else None
        current = s.parent
    start = p.sessions.get(sid)
    if start is not None and start.year:
        for s in p.sessions.values():
            if s.type == "schoolYear" and s.status == "active" and (s.year == start.year or s.sid == start.year):
                return s.sid
        synthetic = f"schoolYear={start.year}"
        if synthetic in p.sessions:
            return synthetic
    return None


