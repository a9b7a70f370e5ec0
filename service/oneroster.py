"""OneRoster 1.1 CSV import: a school's years, terms, classes, staff, students and guardians.

A set is a folder or a zip holding ``orgs.csv``, ``academicSessions.csv``, ``classes.csv``,
``users.csv``, ``enrollments.csv`` and optionally ``courses.csv``, ``demographics.csv`` and
``manifest.csv``. One school (an org of type ``school``) is imported per run.

The import works in two phases:

1. *Check*: every file is read and every row validated (columns, dates, statuses, references,
   phone numbers, duplicate sourcedIds), then checked against the database (a class or term of
   another school, a phone or national id owned by someone else). Every problem is collected
   with its file, line and column; if there is any, ``RosterImportError`` is raised and nothing
   is written.
2. *Write*: in one transaction, rows are upserted by ``sourcedId`` using bulk reads (dicts keyed
   by sourcedId) and ``insert_many`` in chunks. A row is only UPDATEd when one of its values
   differs, so importing the same files again changes nothing.

Mapping (OneRoster → Lienlac):

- ``orgs`` (type school) → ``School``; created when missing (the CLI is how operators create
  schools), or adopted by id (``--school 12`` / the admin endpoint) when it has no sourcedId yet.
- ``academicSessions`` ``schoolYear`` → ``SchoolYear``; ``term``/``semester`` → ``Term`` under the
  school year found through ``parentSourcedId`` (walking up) or the ``schoolYear`` column.
  ``gradingPeriod`` sessions are not stored.
- ``classes`` → ``SchoolClass``: name from ``title``, grade from ``grades`` (else the course's),
  school year from ``termSourcedIds`` (else the course's ``schoolYearSourcedId``). The homeroom
  teacher is the active teacher enrollment with ``primary=true``, else the first one; the other
  teacher enrollments become ``ClassTeacher`` rows whose subject is the class's ``subjects`` when
  it names exactly one, else the course title, else the subjects as written.
- ``users``: ``student`` → ``Student`` (name "familyName middleName givenName", national id from
  ``identifier``, birth date from ``demographics``, class from the student's first active
  enrollment); ``teacher``/``aide``/``proctor`` → ``User`` + ``StaffRole`` teacher,
  ``administrator`` → ``User`` + ``StaffRole`` admin; ``parent``/``guardian``/``relative`` → ``User``
  (a valid phone is required) linked to students through ``agentSourcedIds`` on either side.
  Relationship: ``parent`` → ``mother``/``father`` when demographics gives the sex, else
  ``guardian``; ``guardian`` → ``guardian``; ``relative`` → ``relative``. A generic ``guardian``
  never overwrites a more specific relationship already stored (e.g. from an invite code).
- Users are found by sourcedId, else by phone: an account created by OTP login is adopted (its
  sourcedId set). An account that already carries another sourcedId (the same parent exported
  by another school's system) is shared: it is linked, its name filled only if empty.
  Within one file a phone may appear on one staff row and one parent row (a teacher who is a
  parent at the school): both are the same account. Any other repeated phone is an error.
- ``status=tobedeleted``: nothing is created for the row; an existing student leaves the class
  (user or enrollment), a staff member loses their roles and class assignments at this school,
  a guardian loses the links to this school's students. Classes, sessions and orgs marked
  tobedeleted are left in place (deleting them would erase contact-book history).
- Rows missing from a bulk file are not deleted. Passwords in ``users.csv`` are never imported.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import logging
import re
import time
import unicodedata
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from peewee import chunked

from . import jobs
from .accounts.logic import normalize_phone
from .db import db, is_postgres, utcnow, write_transaction
from .errors import ApiError, NotFound, ValidationError
from .accounts.models import User
from .roster.models import (ClassTeacher, RosterImport, School, SchoolClass, SchoolYear, StaffRole, Student,
                            StudentGuardian, Term)

log = logging.getLogger("lienlac.oneroster")

#: file name → (required file?, columns that must be in its header)
FILES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "manifest.csv": (False, ("propertyName", "value")),
    "orgs.csv": (True, ("sourcedId", "name", "type")),
    "academicSessions.csv": (True, ("sourcedId", "title", "type", "startDate", "endDate")),
    "courses.csv": (False, ("sourcedId", "title")),
    "classes.csv": (True, ("sourcedId", "title", "courseSourcedId", "schoolSourcedId")),
    "users.csv": (True, ("sourcedId", "orgSourcedIds", "role", "givenName", "familyName")),
    "enrollments.csv": (True, ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role")),
    "demographics.csv": (False, ("sourcedId",)),
}
ORG_TYPES = {"department", "school", "district", "local", "state", "national"}
SESSION_TYPES = {"schoolyear": "schoolYear", "term": "term", "semester": "semester",
                 "gradingperiod": "gradingPeriod"}
STUDENT_ROLES = {"student"}
STAFF_ROLE_MAP = {"teacher": "teacher", "aide": "teacher", "proctor": "teacher", "administrator": "admin"}
GUARDIAN_ROLES = {"parent", "guardian", "relative"}
USER_ROLES = STUDENT_ROLES | set(STAFF_ROLE_MAP) | GUARDIAN_ROLES
ENROLLMENT_ROLES = {"student", "teacher", "aide", "administrator", "proctor"}
SEXES = {"male", "female", "other", "unspecified"}
KINDS = ("schools", "school_years", "terms", "classes", "staff", "staff_roles", "class_teachers",
         "students", "guardians", "guardian_links")

MAX_PROBLEMS = 500
MAX_FILE_BYTES = 100 * 1024 * 1024
CHUNK = 500  # rows per INSERT / IN (...) list
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ADVISORY_LOCK = 7226002


# --- problems ------------------------------------------------------------------------------
class RosterImportError(ValidationError):
    """The files cannot be imported; ``errors`` lists every problem as {file, line, column, message}."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        first = errors[0] if errors else {}
        super().__init__(
            f"The roster has {len(errors)} problem{'s' if len(errors) != 1 else ''}; nothing was imported. "
            f"First: {format_problem(first)}",
            fields={"rows": errors[:100]},
        )


def format_problem(p: dict) -> str:
    where = ":".join(str(x) for x in (p.get("file"), p.get("line"), p.get("column")) if x not in (None, ""))
    return f"{where}: {p.get('message', '')}" if where else p.get("message", "")


class Problems:
    def __init__(self):
        self.items: list[dict] = []
        self.dropped = 0

    def add(self, file: str | None, line: int | None, column: str | None, message: str) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        self.items.append({"file": file, "line": line, "column": column, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            items = list(self.items)
            if self.dropped:
                items.append({"file": None, "line": None, "column": None,
                              "message": f"... and {self.dropped} more problems"})
            raise RosterImportError(items)


# --- progress ------------------------------------------------------------------------------
class NullProgress:
    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


class RichProgress(NullProgress):
    """A rich progress bar on stderr, one task per phase."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console or Console(stderr=True))
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def start(self, description: str, total: int) -> None:
        if self.task is not None:
            t = self.progress.tasks[-1]
            self.progress.update(self.task, completed=t.total)
        self.task = self.progress.add_task(description, total=max(total, 1))

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


# --- reading -------------------------------------------------------------------------------
@dataclasses.dataclass
class Table:
    name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line of the row's first character, {column: value})


def _canonical(name: str) -> str | None:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for known in FILES:
        if base.lower() == known.lower():
            return known
    return None


def read_files(source, problems: Problems) -> dict[str, bytes]:
    """The known CSV files of a folder, a zip file path, or zip bytes: {canonical name: bytes}."""
    found: dict[str, bytes] = {}
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        for path in sorted(Path(source).iterdir()):
            name = _canonical(path.name)
            if name and path.is_file():
                if name in found:
                    problems.add(name, None, None, f"two files are named {name} (case differs)")
                found[name] = path.read_bytes()
    else:
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            problems.add(None, None, None, f"not a folder or a zip file ({exc})")
            return found
        with archive:
            total = 0
            for info in archive.infolist():
                if info.is_dir() or info.filename.startswith("__MACOSX/") or \
                        info.filename.rsplit("/", 1)[-1].startswith("._"):
                    continue
                name = _canonical(info.filename)
                if not name:
                    continue
                if name in found:
                    problems.add(name, None, None, f"the zip holds {name} twice")
                    continue
                total += info.file_size
                if info.file_size > MAX_FILE_BYTES or total > 2 * MAX_FILE_BYTES:
                    problems.add(name, None, None, "the file is too large")
                    continue
                try:
                    found[name] = archive.read(info)
                except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                    problems.add(name, None, None, f"cannot be read from the zip ({exc})")
    for name, (required, _) in FILES.items():
        if required and name not in found:
            problems.add(name, None, None, "the file is missing")
    return found


def parse_table(name: str, data: bytes, problems: Problems) -> Table | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(name, data[:exc.start].count(b"\n") + 1, None, "the file is not UTF-8 text")
        return None
    text = unicodedata.normalize("NFC", text)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.add(name, 1, None, f"unreadable CSV ({exc})")
        return None
    if not header:
        problems.add(name, 1, None, "the file is empty (no header row)")
        return None
    header = [h.strip().lstrip("\ufeff") for h in header]
    ok = True
    for column in FILES[name][1]:
        if column not in header:
            problems.add(name, 1, column, f"required column {column} is missing from the header")
            ok = False
    if not ok:
        return None
    rows: list[tuple[int, dict[str, str]]] = []
    last = reader.line_num
    try:
        for cells in reader:
            line = last + 1
            last = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                problems.add(name, line, None, f"{len(cells)} values for {len(header)} columns")
                continue
            nul = next((h for h, cell in zip(header, cells) if "\x00" in cell), None)
            if nul is not None:  # PostgreSQL stores no NUL in text: a clear problem, not a failed job
                problems.add(name, line, nul, "contains the NUL character")
                continue
            rows.append((line, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}))
    except csv.Error as exc:
        problems.add(name, reader.line_num, None, f"unreadable CSV ({exc})")
    return Table(name, header, rows)


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


def parse(files: dict[str, bytes], problems: Problems, progress=None) -> Parsed:
    """Read and validate every row of every file, with cross-file references."""
    progress = progress or NullProgress()
    tables = {name: parse_table(name, data, problems) for name, data in files.items()}
    progress.start("Checking rows", sum(len(t.rows) for t in tables.values() if t))

    manifest = tables.get("manifest.csv")
    for row in _rows(manifest, problems, progress):
        if row.get("propertyName") == "oneroster.version" and row.get("value") not in ("1.1", "1.0"):
            row.error("value", f"OneRoster version {row.get('value')!r}: only 1.1 CSV files are supported")

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
            row.error("grades", f"grade {k.grades[0]!r} is not 1 to 12")
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
                row.error(phone_column, f"not a valid phone number: {raw!r}")
        if role in GUARDIAN_ROLES and status == "active" and not raw:
            row.error("phone", "a parent or guardian needs a phone number to sign in")
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
        demographics.append(Demographic(row.required("sourcedId", 100), row.line, row.status(),
                                        row.date("birthDate"), row.choice("sex", SEXES, required=False)))

    p = Parsed(_unique(orgs, "orgs.csv", problems), _unique(sessions, "academicSessions.csv", problems),
               _unique(courses, "courses.csv", problems), _unique(classes, "classes.csv", problems),
               _unique(users, "users.csv", problems), _unique(enrollments, "enrollments.csv", problems),
               _unique(demographics, "demographics.csv", problems), {})
    _check_references(p, problems)
    return p


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
    def ref(file, line, column, value, table, what):
        if value and value not in table:
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
        if s.type in ("term", "semester") and s.status == "active" and _year_of(p, s.sid) is None:
            problems.add("academicSessions.csv", s.line, "parentSourcedId",
                         "a term needs a parent schoolYear session (parentSourcedId or schoolYear)")
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
            else:
                problems.add("users.csv", u.line, u.phone_column,
                             f"phone {u.phone} is also on line {first.line} (sourcedId {first.sid!r})")
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
    return None


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


def build_plan(p: Parsed, org: Org) -> Plan:
    school = org.sid
    classes = [k for k in p.classes.values() if k.school_sid == school and k.status == "active"]
    class_set = {k.sid for k in classes}
    users = p.users
    active_enrollments = [e for e in p.enrollments.values()
                          if e.class_sid in class_set and e.status == "active"
                          and users[e.user_sid].status == "active"]

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
    years = [s for s in active if s.type == "schoolYear"]
    terms = [(s, _year_of(p, s.sid)) for s in active if s.type in ("term", "semester")]

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
        class_year[k.sid] = year
        grade = _grade(k.grades)
        if grade is None and course and not k.grades:
            grade = _grade(course.grades) or None
        class_grade[k.sid] = grade or None

    # teachers of each class: the primary one (else the first) is the homeroom teacher
    teachers_of: dict[str, list[Enrollment]] = defaultdict(list)
    student_class: dict[str, str] = {}
    for e in active_enrollments:
        if e.role == "teacher":
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
        primary = next((e for e in enrolled if e.primary), enrolled[0])
        homeroom[sid] = primary.user_sid
        k = by_class[sid]
        course = p.courses.get(k.course_sid)
        if len(k.subjects) == 1:
            subject = k.subjects[0]
        elif course and course.title:
            subject = course.title
        else:
            subject = ", ".join(k.subjects)
        for e in enrolled:
            if e.user_sid != primary.user_sid:
                subject_teachers.setdefault((sid, e.user_sid), subject[:100])

    enrolled_users = {e.user_sid for e in active_enrollments}
    in_school = lambda u: school in u.org_sids  # noqa: E731
    students = [u for u in users.values() if u.role in STUDENT_ROLES and u.status == "active"
                and (in_school(u) or u.sid in enrolled_users)]
    student_set = {u.sid for u in students}
    staff = [u for u in users.values() if u.role in STAFF_ROLE_MAP and u.status == "active"
             and (in_school(u) or u.sid in enrolled_users)]
    staff_roles = {(u.sid, STAFF_ROLE_MAP[u.role]) for u in staff}
    staff_roles |= {(e.user_sid, "teacher") for e in active_enrollments if e.role == "teacher"}

    # guardian links, from either side
    links: dict[tuple[str, str], str] = {}
    sex = {d.sid: d.sex for d in p.demographics.values() if d.status == "active"}

    def relationship(g: Person) -> str:
        if g.role == "parent":
            return {"female": "mother", "male": "father"}.get(sex.get(g.sid, ""), "guardian")
        return "relative" if g.role == "relative" else "guardian"

    def link(student_sid: str, guardian_sid: str) -> None:
        g = users[guardian_sid]
        if student_sid in student_set and g.status == "active" and g.role not in STUDENT_ROLES:
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
    linked = {g for _, g in links}
    guardians = [u for u in users.values() if u.role in GUARDIAN_ROLES and u.status == "active"
                 and (in_school(u) or u.sid in linked)]
    needed = {u.sid for u in staff} | {u.sid for u in guardians} | linked | {s for s, _ in staff_roles}
    needed = {p.alias_of.get(sid, sid) for sid in needed}  # a parent row sharing a staff row's phone
    people = [users[sid] for sid in sorted(needed, key=lambda s: users[s].line)]

    birth_dates = {d.sid: d.birth_date for d in p.demographics.values()
                   if d.birth_date and d.sid in student_set and d.status == "active"}

    # tobedeleted rows of this school
    leave_class: dict[str, str | None] = {}
    drop_class_teachers: set[tuple[str, str]] = set()
    school_enrollments = [e for e in p.enrollments.values() if e.class_sid in class_set]
    enrolled_any = {e.user_sid for e in school_enrollments}
    agents_of_students = {a for s in students for a in s.agent_sids}
    drop_staff, drop_guardians = [], []
    for u in users.values():
        if u.status != "tobedeleted":
            continue
        concerned = (in_school(u) or u.sid in enrolled_any or u.sid in agents_of_students
                     or (u.role in GUARDIAN_ROLES and any(a in student_set for a in u.agent_sids)))
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
        elif e.role == "teacher" and (e.class_sid, e.user_sid) not in subject_teachers:
            drop_class_teachers.add((e.class_sid, e.user_sid))

    return Plan(org, years, terms, classes, class_year, class_grade, homeroom, subject_teachers, people,
                staff_roles, students, student_class, birth_dates, links, leave_class, drop_staff,
                drop_guardians, drop_class_teachers)


# --- database ------------------------------------------------------------------------------
def _select_in(query_factory, field, values: Iterable) -> list:
    values = list(dict.fromkeys(v for v in values if v is not None))
    out = []
    for chunk in chunked(values, CHUNK):
        out.extend(query_factory().where(field.in_(chunk)))
    return out


def _diff(row, values: dict) -> dict:
    return {k: v for k, v in values.items() if row.__data__.get(k) != v}


def _insert(model, rows: list[dict], progress) -> None:
    for chunk in chunked(rows, CHUNK):
        model.insert_many(chunk).execute()
        progress.advance(len(chunk))


def _counts() -> dict[str, dict[str, int]]:
    return {kind: {"created": 0, "updated": 0, "unchanged": 0, "removed": 0} for kind in KINDS}


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
        problems.add("orgs.csv", org.line, "sourcedId", f"org {org.sid!r} is already school {other.id}")
        return school, None
    return school, org


class _Writer:
    def __init__(self, plan: Plan, parsed: Parsed, school: School | None, problems: Problems, progress):
        self.plan, self.p, self.school, self.problems, self.progress = plan, parsed, school, problems, progress
        self.counts = _counts()
        self.now = utcnow()

    # -- checks against the database (no writes) --
    def check(self) -> None:
        plan, school_id = self.plan, getattr(self.school, "id", None)
        self.progress.start("Checking the database", 5)
        self.years = {y.sourced_id: y for y in _select_in(SchoolYear.select, SchoolYear.sourced_id,
                                                              [s.sid for s in plan.years])}
        for s in plan.years:
            row = self.years.get(s.sid)
            if row is not None and row.school_id != school_id:
                self.problems.add("academicSessions.csv", s.line, "sourcedId",
                                  f"school year {s.sid!r} belongs to another school")
        self.terms = {t.sourced_id: t for t in _select_in(
            lambda: Term.select(Term, SchoolYear.id, SchoolYear.school).join(SchoolYear), Term.sourced_id,
            [s.sid for s, _ in plan.terms])}
        for s, _ in plan.terms:
            row = self.terms.get(s.sid)
            if row is not None and row.school_year.school_id != school_id:
                self.problems.add("academicSessions.csv", s.line, "sourcedId",
                                  f"term {s.sid!r} belongs to another school")
        self.progress.advance()
        self.classes = {c.sourced_id: c for c in _select_in(SchoolClass.select, SchoolClass.sourced_id,
                                                                [k.sid for k in plan.classes])}
        for k in plan.classes:
            row = self.classes.get(k.sid)
            if row is not None and row.school_id != school_id:
                self.problems.add("classes.csv", k.line, "sourcedId", f"class {k.sid!r} belongs to another school")
        self.progress.advance()
        self._check_users()
        self.progress.advance()
        self._check_students()
        self.progress.advance(2)

    def _check_users(self) -> None:
        people = self.plan.people
        by_sid = {u.sourced_id: u for u in _select_in(User.select, User.sourced_id, [r.sid for r in people])}
        by_phone = {u.phone: u for u in _select_in(User.select, User.phone, [r.phone for r in people])}
        self.user_match: dict[str, User] = {}
        claimed: dict[int, Person] = {}
        for r in people:
            user = by_sid.get(r.sid)
            column = "sourcedId"
            if user is None and r.phone:
                user, column = by_phone.get(r.phone), r.phone_column
            if user is None:
                continue
            if user.id in claimed:
                self.problems.add("users.csv", r.line, column,
                                  f"the same account as line {claimed[user.id].line} (phone or sourcedId)")
                continue
            if r.phone and user.phone != r.phone and r.phone in by_phone and by_phone[r.phone].id != user.id:
                self.problems.add("users.csv", r.line, r.phone_column,
                                  f"phone {r.phone} already belongs to another account")
                continue
            claimed[user.id] = r
            self.user_match[r.sid] = user

    def _check_students(self) -> None:
        students = self.plan.students
        by_sid = {s.sourced_id: s for s in _select_in(Student.select, Student.sourced_id, [r.sid for r in students])}
        by_nid = {s.national_id: s for s in _select_in(Student.select, Student.national_id,
                                                       [r.identifier for r in students if r.identifier])}
        self.student_match: dict[str, Student] = {}
        for r in students:
            row = by_sid.get(r.sid)
            other = by_nid.get(r.identifier) if r.identifier else None
            if row is None and other is not None:
                if other.sourced_id is not None:
                    self.problems.add("users.csv", r.line, "identifier",
                                      f"national id {r.identifier!r} belongs to another student ({other.sourced_id!r})")
                    continue
                row = other
            elif row is not None and other is not None and other.id != row.id:
                self.problems.add("users.csv", r.line, "identifier",
                                  f"national id {r.identifier!r} belongs to another student")
                continue
            if row is not None:
                self.student_match[r.sid] = row

    # -- writes --
    def write(self) -> dict:
        self._school()
        self._sessions()
        self._users()
        self._staff_roles()
        self._classes()
        self._class_teachers()
        self._students()
        self._links()
        self._removals()
        return self.counts

    def _count(self, kind: str, what: str, n: int = 1) -> None:
        self.counts[kind][what] += n

    def _school(self) -> None:
        org = self.plan.org
        values = {"name": org.name, "sourced_id": org.sid}
        if org.identifier:
            values["code"] = org.identifier[:50]
        if self.school is None:
            self.school = School.create(created_at=self.now, **values)
            self._count("schools", "created")
            return
        changes = _diff(self.school, values)
        if changes:
            School.update(**changes).where(School.id == self.school.id).execute()
            self._count("schools", "updated")
        else:
            self._count("schools", "unchanged")

    def _upsert(self, kind: str, model, desired: dict[str, dict], existing: dict[str, object]) -> dict[str, int]:
        """Upsert ``{sourced_id: values}``; returns ``{sourced_id: id}``."""
        self.progress.start(f"Writing {kind.replace('_', ' ')}", len(desired))
        new = []
        ids: dict[str, int] = {}
        for sid, values in desired.items():
            row = existing.get(sid)
            if row is None:
                new.append({**values, "sourced_id": sid})
                continue
            ids[sid] = row.id
            changes = _diff(row, {**values, "sourced_id": sid})
            if changes:
                model.update(**changes).where(model.id == row.id).execute()
                self._count(kind, "updated")
            else:
                self._count(kind, "unchanged")
            self.progress.advance()
        if new:
            _insert(model, new, self.progress)
            self._count(kind, "created", len(new))
            for row in _select_in(lambda: model.select(model.id, model.sourced_id), model.sourced_id,
                                  [r["sourced_id"] for r in new]):
                ids[row.sourced_id] = row.id
        return ids

    def _sessions(self) -> None:
        school_id = self.school.id
        self.year_ids = self._upsert("school_years", SchoolYear, {
            s.sid: {"school": school_id, "name": s.title, "starts_on": s.start, "ends_on": s.end}
            for s in self.plan.years}, self.years)
        self.term_ids = self._upsert("terms", Term, {
            s.sid: {"school_year": self.year_ids[year], "name": s.title, "starts_on": s.start, "ends_on": s.end}
            for s, year in self.plan.terms}, self.terms)

    def _users(self) -> None:
        self.progress.start("Writing users", len(self.plan.people))
        new, self.user_ids = [], {}
        kind_of = lambda r: "staff" if r.role in STAFF_ROLE_MAP else "guardians"  # noqa: E731
        for r in self.plan.people:
            user = self.user_match.get(r.sid)
            if user is None:
                new.append({"name": r.name, "phone": r.phone, "email": r.email or None, "sourced_id": r.sid,
                            "is_active": r.enabled is not False, "created_at": self.now})
                self._count(kind_of(r), "created")
                continue
            self.user_ids[r.sid] = user.id
            if user.sourced_id in (None, r.sid):  # ours (or adopted now): the roster is the source of truth
                values = {"name": r.name, "sourced_id": r.sid}
                if r.phone:
                    values["phone"] = r.phone
                if r.email:
                    values["email"] = r.email
                if r.enabled is not None:
                    values["is_active"] = r.enabled
            else:  # shared with another school's roster: fill in, never overwrite
                values = {"name": r.name} if not user.name else {}
            changes = _diff(user, values)
            if changes:
                User.update(**changes).where(User.id == user.id).execute()
                self._count(kind_of(r), "updated")
            else:
                self._count(kind_of(r), "unchanged")
            self.progress.advance()
        _insert(User, new, self.progress)
        for user in _select_in(lambda: User.select(User.id, User.sourced_id), User.sourced_id,
                               [r["sourced_id"] for r in new]):
            self.user_ids[user.sourced_id] = user.id
        for alias, owner in self.p.alias_of.items():
            if owner in self.user_ids:
                self.user_ids[alias] = self.user_ids[owner]

    def _staff_roles(self) -> None:
        school_id = self.school.id
        existing = {(r.user_id, r.role) for r in StaffRole.select(StaffRole.user, StaffRole.role)
                    .where(StaffRole.school == school_id)}
        desired = sorted({(self.user_ids[sid], role) for sid, role in self.plan.staff_roles})
        new = [{"user": u, "school": school_id, "role": role} for u, role in desired if (u, role) not in existing]
        self.progress.start("Writing staff roles", len(desired))
        _insert(StaffRole, new, self.progress)
        self._count("staff_roles", "created", len(new))
        self._count("staff_roles", "unchanged", len(desired) - len(new))

    def _classes(self) -> None:
        plan, desired = self.plan, {}
        for k in plan.classes:
            values = {"school": self.school.id, "name": k.title, "grade": plan.class_grade[k.sid],
                      "school_year": self.year_ids.get(plan.class_year[k.sid]) if plan.class_year[k.sid] else None}
            teacher = plan.homeroom.get(k.sid)
            if teacher is not None:
                values["homeroom_teacher"] = self.user_ids[teacher]
            elif k.sid not in self.classes:
                values["homeroom_teacher"] = None
            if k.sid not in self.classes:
                values["created_at"] = self.now
            desired[k.sid] = values
        self.class_ids = self._upsert("classes", SchoolClass, desired, self.classes)

    def _class_teachers(self) -> None:
        plan = self.plan
        class_ids = list(self.class_ids.values())
        existing: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
        for row in _select_in(lambda: ClassTeacher.select(), ClassTeacher.school_class, class_ids):
            existing[(row.school_class_id, row.teacher_id)][row.subject] = row.id
        self.existing_class_teachers = existing
        new, stale = [], []
        self.progress.start("Writing class teachers", len(plan.subject_teachers))
        for (class_sid, user_sid), subject in plan.subject_teachers.items():
            pair = (self.class_ids[class_sid], self.user_ids[user_sid])
            subjects = existing.get(pair, {})
            if subject in subjects:
                self._count("class_teachers", "unchanged")
            else:
                new.append({"school_class": pair[0], "teacher": pair[1], "subject": subject})
                self._count("class_teachers", "created")
            stale.extend(row_id for s, row_id in subjects.items() if s != subject)
        _insert(ClassTeacher, new, self.progress)
        if stale:
            ClassTeacher.delete().where(ClassTeacher.id.in_(stale)).execute()
            self._count("class_teachers", "removed", len(stale))

    def _students(self) -> None:
        plan, desired = self.plan, {}
        for r in plan.students:
            values = {"school": self.school.id, "name": r.name}
            class_sid = plan.student_class.get(r.sid)
            if class_sid is not None:
                values["school_class"] = self.class_ids[class_sid]
            elif r.sid not in self.student_match:
                values["school_class"] = None
            if r.identifier:
                values["national_id"] = r.identifier
            elif r.sid not in self.student_match:
                values["national_id"] = None
            if r.sid in plan.birth_dates:
                values["birth_date"] = plan.birth_dates[r.sid]
            elif r.sid not in self.student_match:
                values["birth_date"] = None
            if r.sid not in self.student_match:
                values["created_at"] = self.now
            desired[r.sid] = values
        self.student_ids = self._upsert("students", Student, desired, self.student_match)

    def _links(self) -> None:
        plan = self.plan
        existing = {(r.student_id, r.guardian_id): r for r in _select_in(
            lambda: StudentGuardian.select(), StudentGuardian.student, list(self.student_ids.values()))}
        new, seen = [], set()
        self.progress.start("Writing guardian links", len(plan.links))
        for (student_sid, guardian_sid), relationship in plan.links.items():
            key = (self.student_ids[student_sid], self.user_ids[guardian_sid])
            if key in seen:  # two rows (e.g. a teacher and their parent row) naming one account
                continue
            seen.add(key)
            row = existing.get(key)
            if row is None:
                new.append({"student": key[0], "guardian": key[1], "relationship": relationship})
                self._count("guardian_links", "created")
            elif row.relationship != relationship and relationship != "guardian":
                StudentGuardian.update(relationship=relationship).where(StudentGuardian.id == row.id).execute()
                self._count("guardian_links", "updated")
                self.progress.advance()
            else:
                self._count("guardian_links", "unchanged")
                self.progress.advance()
        _insert(StudentGuardian, new, self.progress)

    def _removals(self) -> None:
        plan, school_id = self.plan, self.school.id
        if not (plan.leave_class or plan.drop_staff or plan.drop_guardians or plan.drop_class_teachers):
            return
        self.progress.start("Applying tobedeleted", 4)
        class_by_sid = {c.sourced_id: c.id for c in SchoolClass.select(SchoolClass.id, SchoolClass.sourced_id)
                        .where((SchoolClass.school == school_id) & SchoolClass.sourced_id.is_null(False))}
        for sid, class_sid in plan.leave_class.items():
            query = Student.update(school_class=None).where(
                (Student.sourced_id == sid) & (Student.school == school_id) & Student.school_class.is_null(False))
            if class_sid is not None:
                if class_sid not in class_by_sid:
                    continue
                query = query.where(Student.school_class == class_by_sid[class_sid])
            self._count("students", "removed", query.execute())
        self.progress.advance()
        school_classes = SchoolClass.select(SchoolClass.id).where(SchoolClass.school == school_id)
        if plan.drop_staff:
            ids = [u.id for u in _select_in(lambda: User.select(User.id), User.sourced_id, plan.drop_staff)]
            if ids:
                self._count("staff_roles", "removed", StaffRole.delete().where(
                    StaffRole.user.in_(ids) & (StaffRole.school == school_id)).execute())
                self._count("class_teachers", "removed", ClassTeacher.delete().where(
                    ClassTeacher.teacher.in_(ids) & ClassTeacher.school_class.in_(school_classes)).execute())
                self._count("classes", "updated", SchoolClass.update(homeroom_teacher=None).where(
                    SchoolClass.homeroom_teacher.in_(ids) & (SchoolClass.school == school_id)).execute())
        self.progress.advance()
        if plan.drop_guardians:
            ids = [u.id for u in _select_in(lambda: User.select(User.id), User.sourced_id, plan.drop_guardians)]
            if ids:
                students = Student.select(Student.id).where(Student.school == school_id)
                self._count("guardian_links", "removed", StudentGuardian.delete().where(
                    StudentGuardian.guardian.in_(ids) & StudentGuardian.student.in_(students)).execute())
        self.progress.advance()
        user_by_sid = {u.sourced_id: u.id for u in _select_in(lambda: User.select(User.id, User.sourced_id),
                                                              User.sourced_id, [u for _, u in plan.drop_class_teachers])}
        for class_sid, user_sid in sorted(plan.drop_class_teachers):
            class_id, user_id = class_by_sid.get(class_sid), user_by_sid.get(user_sid)
            if class_id is None or user_id is None:
                continue
            self._count("class_teachers", "removed", ClassTeacher.delete().where(
                (ClassTeacher.school_class == class_id) & (ClassTeacher.teacher == user_id)).execute())
            if plan.homeroom.get(class_sid) is None:
                self._count("classes", "updated", SchoolClass.update(homeroom_teacher=None).where(
                    (SchoolClass.id == class_id) & (SchoolClass.homeroom_teacher == user_id)).execute())
        self.progress.advance()


# --- entry points --------------------------------------------------------------------------
def import_roster(source, *, school_ref: str | None = None, school_id: int | None = None,
                  progress=None) -> dict:
    """Import a OneRoster 1.1 CSV set (folder path, zip path or zip bytes) for one school.

    ``school_ref``: the school org's sourcedId, or our school id as a string (the CLI's --school);
    ``school_id``: our school id (the admin endpoint). Returns ``{"school_id", "school_name",
    "counts": {kind: {created, updated, unchanged, removed}}, "seconds"}``. Raises
    ``RosterImportError`` (nothing written) when anything is wrong.
    """
    if (school_ref is None) == (school_id is None):
        raise ValueError("give school_ref or school_id")
    progress = progress or NullProgress()
    started = time.monotonic()
    problems = Problems()
    progress.start("Reading files", 1)
    files = read_files(source, problems)
    progress.advance()
    problems.raise_if_any()
    parsed = parse(files, problems, progress)
    problems.raise_if_any()
    with write_transaction():
        if is_postgres():  # one import at a time: they upsert the same users
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
        school, org = _resolve_school(parsed, school_ref, school_id, problems)
        problems.raise_if_any()
        plan = build_plan(parsed, org)
        writer = _Writer(plan, parsed, school, problems, progress)
        writer.check()
        problems.raise_if_any()
        counts = writer.write()
    seconds = round(time.monotonic() - started, 3)
    log.info("roster imported", extra={"event": "oneroster.import", "ms": round(seconds * 1000)})
    return {"school_id": writer.school.id, "school_name": writer.school.name, "counts": counts, "seconds": seconds}


def import_path_cli(path, school) -> None:
    """``lienlac import-roster PATH --school S``: progress on stderr, a summary table on stdout."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    err = Console(stderr=True)
    try:
        with RichProgress(err) as progress:
            result = import_roster(path, school_ref=str(school), progress=progress)
    except RosterImportError as exc:
        err.print(f"[bold red]Nothing was imported[/]: {len(exc.errors)} problem(s) in {path}", highlight=False)
        for problem in exc.errors:
            err.print(format_problem(problem), markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    out = Console(highlight=False)
    table = RichTable("kind", "created", "updated", "unchanged", "removed", box=box.SIMPLE_HEAD,
                      title=f"{result['school_name']} (school id {result['school_id']})")
    for kind, c in result["counts"].items():
        table.add_row(kind, *(str(c[k]) for k in ("created", "updated", "unchanged", "removed")))
    out.print(table)
    out.print(f"Imported in {result['seconds']:.2f} s.")


# --- admin uploads as background jobs --------------------------------------------------------
def create_upload(school_id: int, user_id: int | None, file_name: str, payload: bytes) -> RosterImport:
    """Store an uploaded zip and enqueue its import; obviously wrong uploads answer 422 at once."""
    problems = Problems()
    read_files(payload, problems)
    problems.raise_if_any()
    run = RosterImport.create(school=school_id, created_by=user_id, status="queued",
                              file_name=(file_name or "")[:200], payload=payload)
    jobs.enqueue(run_roster_import, run.id, job_id=f"roster-import-{run.id}", queue="default",
                 retry=(2, [10, 60]), timeout=1800)
    return RosterImport.get_by_id(run.id)


def get_upload(import_id: int) -> RosterImport:
    run = RosterImport.get_or_none(RosterImport.id == import_id)
    if run is None:
        raise NotFound("No such roster import.")
    return run


def upload_view(run: RosterImport) -> dict:
    return {"id": run.id, "school_id": run.school_id, "status": run.status, "file_name": run.file_name,
            "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
            "counts": json.loads(run.counts) if run.counts else None,
            "errors": json.loads(run.errors) if run.errors else []}


@jobs.job
def run_roster_import(import_id: int) -> None:
    """Import one upload. Idempotent: a finished import is not run again; a crashed one reruns whole."""
    run = RosterImport.get_or_none(RosterImport.id == import_id)
    if run is None or run.payload is None or run.status == "done":
        return
    RosterImport.update(status="running", started_at=utcnow()).where(RosterImport.id == import_id).execute()
    try:
        result = import_roster(bytes(run.payload), school_id=run.school_id)
    except RosterImportError as exc:
        RosterImport.update(status="failed", errors=json.dumps(exc.errors, ensure_ascii=False), payload=None,
                            finished_at=utcnow()).where(RosterImport.id == import_id).execute()
        return
    except Exception:
        RosterImport.update(status="failed", finished_at=utcnow(), errors=json.dumps(
            [{"file": None, "line": None, "column": None, "message": "internal error; the import will be retried"}])
        ).where(RosterImport.id == import_id).execute()
        raise
    RosterImport.update(status="done", counts=json.dumps(result["counts"]), errors="[]", payload=None,
                        finished_at=utcnow()).where(RosterImport.id == import_id).execute()
