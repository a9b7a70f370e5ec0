"""Roster: schools, years, terms, classes, teachers, students, guardians, staff, invite codes.

The roster's *trusted internals*: plain ids in, rows or small dicts out, no acting user and no
authorization. Callers are trusted to have decided access already (or to need none): other
packages' reads (``children_of``, ``class_members``; more in ``queries``), the
permission checks, jobs, the CLI (``create_school_with_admin``, ``phoneless_guardian_invites``),
the OneRoster importer (``ensure_user``, ``add_staff``, ``link_guardian``, ...), the demo seed and
tests. ``claim_invite(guardian_id, ...)`` acts for the guardian themself (the code is the proof).

Anything acting for a person over HTTP goes through ``service.roster.actions`` (acting user first,
authorized by ``service.roster.policy``); no view calls a write here directly.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import defaultdict
from typing import Iterable

import peewee as pw

from ..db import utcnow, write_transaction
from ..errors import Conflict, NotFound, ValidationError
from ..accounts import sessioncache
from ..accounts.models import User
from .models import (STAFF_ROLES, ClassTeacher, InviteCode, School, SchoolClass, SchoolYear, StaffRole, Student,
                     StudentGuardian, Term)

INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones
INVITE_LIFETIME = dt.timedelta(days=30)


# --- reading ------------------------------------------------------------------------------
def get_school(school_id: int) -> School:
    school = School.get_or_none(School.id == school_id)
    if school is None:
        raise NotFound("No such school.")
    return school


def get_class(class_id: int) -> SchoolClass:
    klass = SchoolClass.get_or_none(SchoolClass.id == class_id)
    if klass is None:
        raise NotFound("No such class.")
    return klass


def get_student(student_id: int) -> Student:
    student = Student.get_or_none(Student.id == student_id)
    if student is None:
        raise NotFound("No such student.")
    return student


def get_user(user_id: int) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def user_names(user_ids: Iterable[int]) -> dict[int, str]:
    ids = list({int(u) for u in user_ids})
    if not ids:
        return {}
    return {u.id: u.name for u in User.select(User.id, User.name).where(User.id.in_(ids))}


def school_timezone(school_id: int) -> str:
    return get_school(school_id).timezone


def children_of(guardian_id: int) -> list[Student]:
    return list(Student.select().join(StudentGuardian)
                .where(StudentGuardian.guardian == guardian_id).order_by(Student.id))


def guardian_ids_of_student(student_id: int) -> list[int]:
    return [row.guardian_id for row in StudentGuardian.select(StudentGuardian.guardian)
            .where(StudentGuardian.student == student_id)]


def guardians_by_student(student_ids: Iterable[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    ids = list(student_ids)
    for start in range(0, len(ids), 5000):
        for row in (StudentGuardian.select(StudentGuardian.student, StudentGuardian.guardian)
                    .where(StudentGuardian.student.in_(ids[start:start + 5000]))):
            out[row.student_id].append(row.guardian_id)
    return dict(out)


def students_by_id(student_ids: Iterable[int]) -> dict[int, dict]:
    """``{id: {id, name, school_id, class_id}}`` of the students that exist, in one query per 5,000."""
    ids = list({int(s) for s in student_ids})
    out: dict[int, dict] = {}
    for start in range(0, len(ids), 5000):
        for row in (Student.select(Student.id, Student.name, Student.school, Student.school_class)
                    .where(Student.id.in_(ids[start:start + 5000])).namedtuples()):
            out[row.id] = {"id": row.id, "name": row.name, "school_id": row.school, "class_id": row.school_class}
    return out


def class_student_ids(class_id: int) -> list[int]:
    return [s.id for s in Student.select(Student.id).where(Student.school_class == class_id).order_by(Student.id)]


def class_teacher_ids(class_id: int) -> list[int]:
    """The homeroom teacher first, then subject teachers."""
    klass = get_class(class_id)
    ids = [klass.homeroom_teacher_id] if klass.homeroom_teacher_id else []
    for row in ClassTeacher.select(ClassTeacher.teacher).where(ClassTeacher.school_class == class_id):
        if row.teacher_id not in ids:
            ids.append(row.teacher_id)
    return ids


def class_guardian_ids(class_id: int) -> list[int]:
    query = (StudentGuardian.select(StudentGuardian.guardian).distinct()
             .join(Student).where(Student.school_class == class_id))
    return sorted(row.guardian_id for row in query)


def class_members(class_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """``{class_id: [(user_id, "teacher"|"guardian")]}``: each class's teachers (homeroom first, then
    subject teachers) and the guardians of its students who are not its teachers; three queries
    whatever the number of classes."""
    ids = sorted({int(c) for c in class_ids})
    if not ids:
        return {}
    teachers: dict[int, list[int]] = {c: [] for c in ids}
    for klass in SchoolClass.select(SchoolClass.id, SchoolClass.homeroom_teacher).where(SchoolClass.id.in_(ids)):
        if klass.homeroom_teacher_id:
            teachers[klass.id].append(klass.homeroom_teacher_id)
    for row in (ClassTeacher.select(ClassTeacher.school_class, ClassTeacher.teacher)
                .where(ClassTeacher.school_class.in_(ids)).order_by(ClassTeacher.id)):
        if row.teacher_id not in teachers[row.school_class_id]:
            teachers[row.school_class_id].append(row.teacher_id)
    guardians: dict[int, set[int]] = defaultdict(set)
    for row in (StudentGuardian.select(Student.school_class, StudentGuardian.guardian).distinct()
                .join(Student).where(Student.school_class.in_(ids)).tuples()):
        guardians[row[0]].add(row[1])
    return {c: [(t, "teacher") for t in teachers[c]]
            + [(g, "guardian") for g in sorted(guardians[c]) if g not in teachers[c]] for c in ids}


def student_names(student_ids: Iterable[int]) -> dict[int, str]:
    ids = list({int(s) for s in student_ids})
    if not ids:
        return {}
    return {s.id: s.name for s in Student.select(Student.id, Student.name).where(Student.id.in_(ids))}


def teacher_class_ids(user_id: int) -> list[int]:
    homeroom = [c.id for c in SchoolClass.select(SchoolClass.id).where(SchoolClass.homeroom_teacher == user_id)]
    subject = [r.school_class_id for r in ClassTeacher.select(ClassTeacher.school_class)
               .where(ClassTeacher.teacher == user_id)]
    return sorted(set(homeroom) | set(subject))


def staff_roles(user_id: int) -> list[tuple[str, int]]:
    return [(r.role, r.school_id) for r in StaffRole.select().where(StaffRole.user == user_id)]


def has_staff_role(user_id: int, school_id: int, roles: Iterable[str] = STAFF_ROLES) -> bool:
    return StaffRole.select().where((StaffRole.user == user_id) & (StaffRole.school == school_id)
                                    & StaffRole.role.in_(list(roles))).exists()


def roles_of(user_id: int) -> list[dict]:
    """``[{role, school_id, class_ids}]`` for /me; guardians get one entry per school of a child."""
    out = []
    classes = teacher_class_ids(user_id)
    class_school = {c.id: c.school_id for c in SchoolClass.select(SchoolClass.id, SchoolClass.school)
                    .where(SchoolClass.id.in_(classes))} if classes else {}
    for role, school_id in sorted(staff_roles(user_id), key=lambda r: (r[1], STAFF_ROLES.index(r[0]))):
        ids = [c for c in classes if class_school.get(c) == school_id] if role == "teacher" else []
        out.append({"role": role, "school_id": school_id, "class_ids": ids})
    guardian_schools: dict[int, list[int]] = {}
    for child in children_of(user_id):
        guardian_schools.setdefault(child.school_id, [])
        if child.school_class_id and child.school_class_id not in guardian_schools[child.school_id]:
            guardian_schools[child.school_id].append(child.school_class_id)
    for school_id, class_ids in guardian_schools.items():
        out.append({"role": "guardian", "school_id": school_id, "class_ids": class_ids})
    return out


def school_today(school_id: int) -> dt.date:
    """Today's date in the school's timezone."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(school_timezone(school_id))).date()


def current_term(school_id: int, on: dt.date | None = None) -> Term | None:
    on = on or school_today(school_id)
    return (Term.select().join(SchoolYear).where((SchoolYear.school == school_id) & (Term.starts_on <= on)
                                                 & (Term.ends_on >= on)).first())


# --- writing ------------------------------------------------------------------------------
def create_school(name: str, code: str | None = None, timezone: str = "Asia/Ho_Chi_Minh") -> School:
    _check_timezone(timezone)
    return School.create(name=name, code=code, timezone=timezone)


def create_class(school_id: int, name: str, grade: int | None = None,
                 homeroom_teacher_id: int | None = None, school_year_id: int | None = None) -> SchoolClass:
    get_school(school_id)
    _check_class_refs(school_id, homeroom_teacher_id, school_year_id)
    return SchoolClass.create(school=school_id, name=name, grade=grade, homeroom_teacher=homeroom_teacher_id,
                              school_year=school_year_id)


def assign_subject_teacher(class_id: int, teacher_id: int, subject: str) -> ClassTeacher:
    klass = get_class(class_id)
    if not has_staff_role(teacher_id, klass.school_id, ["teacher"]):
        raise ValidationError("Not a teacher of this school.", fields={"teacher_id": ["Not a teacher of this school."]})
    row, _ = ClassTeacher.get_or_create(school_class=class_id, teacher=teacher_id, subject=subject)
    return row


def _national_id_conflict() -> Conflict:
    """One answer whether the id is used in this school or in another: nothing about the other
    student (or that there is one elsewhere) is told. National ids are unique system-wide."""
    return Conflict("This national id cannot be used; check it.",
                    fields={"national_id": ["Cannot be used; check it."]})


def create_student(school_id: int, name: str, class_id: int | None = None, national_id: str | None = None,
                   birth_date: dt.date | None = None) -> Student:
    national_id = (national_id or "").strip() or None
    try:
        with write_transaction():
            get_school(school_id)
            _check_student_class(school_id, class_id)
            if national_id and Student.select().where(Student.national_id == national_id).exists():
                raise _national_id_conflict()
            return Student.create(school=school_id, name=name, school_class=class_id, national_id=national_id,
                                  birth_date=birth_date)
    except pw.IntegrityError as exc:  # a concurrent insert of the same national id
        raise _national_id_conflict() from exc


def ensure_user(phone: str, name: str, password: str | None = None) -> User:
    from ..accounts.logic import hash_password, normalize_phone

    phone = normalize_phone(phone)
    user = User.get_or_none(User.phone == phone)
    if user is None:
        user = User.create(phone=phone, name=name, password_hash=hash_password(password) if password else None)
    else:
        changes = {}
        if name and not user.name:
            changes["name"] = name
        if password:
            changes["password_hash"] = hash_password(password)
        if changes:
            User.update(**changes).where(User.id == user.id).execute()
            sessioncache.invalidate(users=[user.id])
            user = User.get_by_id(user.id)
    return user


def add_staff(school_id: int, user_id: int, role: str) -> StaffRole:
    if role not in STAFF_ROLES:
        raise ValidationError("Unknown staff role.", fields={"role": [f"One of {', '.join(STAFF_ROLES)}."]})
    get_school(school_id)
    row, _ = StaffRole.get_or_create(user=user_id, school=school_id, role=role)
    return row


def link_guardian(student_id: int, guardian_id: int, relationship: str = "guardian") -> StudentGuardian:
    get_student(student_id)
    row, created = StudentGuardian.get_or_create(student=student_id, guardian=guardian_id,
                                                 defaults={"relationship": relationship})
    if not created and row.relationship != relationship:
        row.relationship = relationship
        row.save()
    return row


def _invite_digest(code: str) -> str:
    normalized = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalized.encode()).hexdigest()


def create_invite(student_id: int, created_by: int | None, relationship: str = "guardian",
                  now: dt.datetime | None = None) -> tuple[str, InviteCode]:
    """A new code for a family (shown once; only its hash is stored)."""
    get_student(student_id)
    now = now or utcnow()
    raw = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(10))
    code = f"{raw[:5]}-{raw[5:]}"
    row = InviteCode.create(code_hash=_invite_digest(code), student=student_id, relationship=relationship,
                            created_by=created_by, created_at=now, expires_at=now + INVITE_LIFETIME)
    return code, row


def claim_invite(guardian_id: int, code: str, now: dt.datetime | None = None) -> Student:
    now = now or utcnow()
    with write_transaction():
        invite = InviteCode.get_or_none(InviteCode.code_hash == _invite_digest(code or ""))
        if invite is None or invite.expires_at < now:
            raise NotFound("This invite code is not valid.")
        if invite.used_at is not None:
            if invite.used_by_id == guardian_id:
                return get_student(invite.student_id)
            raise Conflict("This invite code has already been used.")
        claimed = InviteCode.update(used_at=now, used_by=guardian_id).where(
            (InviteCode.id == invite.id) & InviteCode.used_at.is_null()).execute()
        if not claimed:
            raise Conflict("This invite code has already been used.")
        link_guardian(invite.student_id, guardian_id, invite.relationship)
    return get_student(invite.student_id)


# --- administration (the roster admin API, the CLI and imports) ------------------------------
_MAX_ID = 2**63


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError("Unknown timezone.", fields={"timezone": ["Unknown IANA timezone."]}) from exc


def _check_class_refs(school_id: int, homeroom_teacher_id: int | None, school_year_id: int | None) -> None:
    if homeroom_teacher_id is not None and not has_staff_role(homeroom_teacher_id, school_id, ["teacher"]):
        raise ValidationError("The homeroom teacher must be a teacher of this school.",
                              fields={"homeroom_teacher_id": ["Not a teacher of this school."]})
    if school_year_id is not None and not SchoolYear.select().where(
            (SchoolYear.id == school_year_id) & (SchoolYear.school == school_id)).exists():
        raise ValidationError("The school year is not one of this school's.",
                              fields={"school_year_id": ["Not a school year of this school."]})


def _check_student_class(school_id: int, class_id: int | None) -> None:
    if class_id is not None and not SchoolClass.select().where(
            (SchoolClass.id == class_id) & (SchoolClass.school == school_id)).exists():
        raise ValidationError("The class is not in this school.", fields={"class_id": ["Not a class of this school."]})


def _check_dates(starts_on: dt.date, ends_on: dt.date) -> None:
    if ends_on < starts_on:
        raise ValidationError("The end is before the start.", fields={"ends_on": ["Before starts_on."]})


def create_school_with_admin(name: str, admin_phone: str, admin_name: str, code: str | None = None,
                             timezone: str = "Asia/Ho_Chi_Minh") -> tuple[School, User]:
    """An operator task (``lienlac create-school``): a school and its first admin, who signs in by OTP."""
    with write_transaction():
        school = create_school(name, code=code, timezone=timezone)
        admin = ensure_user(admin_phone, admin_name)
        add_staff(school.id, admin.id, "admin")
    return school, admin


def get_year(year_id: int) -> SchoolYear:
    year = SchoolYear.get_or_none(SchoolYear.id == year_id) if 0 < int(year_id) < _MAX_ID else None
    if year is None:
        raise NotFound("No such school year.")
    return year


def create_school_year(school_id: int, name: str, starts_on: dt.date, ends_on: dt.date) -> SchoolYear:
    """A school year (năm học); years of one school do not overlap (409)."""
    _check_dates(starts_on, ends_on)
    with write_transaction():
        get_school(school_id)
        clash = (SchoolYear.select().where((SchoolYear.school == school_id) & (SchoolYear.starts_on <= ends_on)
                                           & (SchoolYear.ends_on >= starts_on)).first())
        if clash is not None:
            raise Conflict(f"Overlaps the school year {clash.name}.")
        return SchoolYear.create(school=school_id, name=name, starts_on=starts_on, ends_on=ends_on)


def create_term(year_id: int, name: str, starts_on: dt.date, ends_on: dt.date) -> Term:
    """A term (học kỳ) inside its school year (422 otherwise); terms of a year do not overlap (409)."""
    _check_dates(starts_on, ends_on)
    with write_transaction():
        year = get_year(year_id)
        if starts_on < year.starts_on or ends_on > year.ends_on:
            raise ValidationError("The term must lie inside its school year.",
                                  fields={"starts_on": [f"Between {year.starts_on} and {year.ends_on}."]})
        clash = (Term.select().where((Term.school_year == year.id) & (Term.starts_on <= ends_on)
                                     & (Term.ends_on >= starts_on)).first())
        if clash is not None:
            raise Conflict(f"Overlaps the term {clash.name}.")
        return Term.create(school_year=year.id, name=name, starts_on=starts_on, ends_on=ends_on)


def years_query(school_id: int):
    return SchoolYear.select().where(SchoolYear.school == school_id)


def terms_by_year(year_ids: Iterable[int]) -> dict[int, list[Term]]:
    out: dict[int, list[Term]] = defaultdict(list)
    ids = list(year_ids)
    if ids:
        for term in Term.select().where(Term.school_year.in_(ids)).order_by(Term.starts_on, Term.id):
            out[term.school_year_id].append(term)
    return dict(out)


def classes_query(school_id: int, grade: int | None = None, school_year_id: int | None = None):
    query = SchoolClass.select().where(SchoolClass.school == school_id)
    if grade is not None:
        query = query.where(SchoolClass.grade == grade)
    if school_year_id is not None:
        query = query.where(SchoolClass.school_year == school_year_id)
    return query


CLASS_FIELDS = {"name": "name", "grade": "grade", "homeroom_teacher_id": "homeroom_teacher",
                "school_year_id": "school_year"}


def update_class(class_id: int, changes: dict) -> SchoolClass:
    """Change ``name``, ``grade``, ``homeroom_teacher_id`` (a teacher of the school, or None), ``school_year_id``."""
    values = {CLASS_FIELDS[k]: v for k, v in changes.items() if k in CLASS_FIELDS}
    with write_transaction():
        klass = get_class(class_id)
        _check_class_refs(klass.school_id, changes.get("homeroom_teacher_id"), changes.get("school_year_id"))
        if values:
            SchoolClass.update(**values).where(SchoolClass.id == klass.id).execute()
    return get_class(class_id)


def remove_subject_teacher(class_id: int, teacher_id: int, subject: str | None = None) -> int:
    """Drop a subject teacher from a class (one subject, or all of theirs); 404 when there was none."""
    query = ClassTeacher.delete().where((ClassTeacher.school_class == class_id) & (ClassTeacher.teacher == teacher_id))
    if subject is not None:
        query = query.where(ClassTeacher.subject == subject)
    removed = query.execute()
    if not removed:
        raise NotFound("This teacher does not teach this class.")
    return removed


def teachers_by_class(class_ids: Iterable[int]) -> dict[int, list[dict]]:
    """``{class_id: [{teacher_id, name, subject}]}`` for subject teachers, in one query."""
    out: dict[int, list[dict]] = defaultdict(list)
    ids = list(class_ids)
    if ids:
        query = (ClassTeacher.select(ClassTeacher.school_class, ClassTeacher.teacher, ClassTeacher.subject, User.id, User.name)
                 .join(User, on=(ClassTeacher.teacher == User.id)).where(ClassTeacher.school_class.in_(ids))
                 .order_by(ClassTeacher.id))
        for row in query:
            out[row.school_class_id].append({"teacher_id": row.teacher_id, "name": row.teacher.name,
                                             "subject": row.subject})
    return dict(out)


def student_counts(class_ids: Iterable[int]) -> dict[int, int]:
    ids = list(class_ids)
    if not ids:
        return {}
    query = (Student.select(Student.school_class, pw.fn.COUNT(Student.id).alias("n"))
             .where(Student.school_class.in_(ids)).group_by(Student.school_class))
    return {row.school_class_id: row.n for row in query}


def add_staff_by_phone(school_id: int, phone: str, name: str, role: str) -> tuple[User, StaffRole]:
    """Find the person by phone number (or create them: they sign in by OTP) and give them a role."""
    try:
        with write_transaction():
            get_school(school_id)
            user = ensure_user(phone, name)
            row = add_staff(school_id, user.id, role)
    except pw.IntegrityError as exc:  # the same person added twice at once
        raise Conflict("Try again.") from exc
    return user, row


def remove_staff(school_id: int, user_id: int, role: str | None = None) -> list[str]:
    """Take a staff role (or all of them) away. A former teacher also leaves the school's classes.

    The school's last admin cannot be removed (409): someone must remain to run it.
    """
    with write_transaction():
        query = StaffRole.select().where((StaffRole.school == school_id) & (StaffRole.user == user_id))
        if role is not None:
            query = query.where(StaffRole.role == role)
        roles = [r.role for r in query]
        if not roles:
            raise NotFound("This person has no such role in this school.")
        if "admin" in roles and not StaffRole.select().where(
                (StaffRole.school == school_id) & (StaffRole.role == "admin") & (StaffRole.user != user_id)).exists():
            raise Conflict("The school's last admin cannot be removed.")
        StaffRole.delete().where((StaffRole.school == school_id) & (StaffRole.user == user_id)
                                 & StaffRole.role.in_(roles)).execute()
        if "teacher" in roles:
            classes = SchoolClass.select(SchoolClass.id).where(SchoolClass.school == school_id)
            ClassTeacher.delete().where((ClassTeacher.teacher == user_id)
                                        & ClassTeacher.school_class.in_(classes)).execute()
            SchoolClass.update(homeroom_teacher=None).where(
                (SchoolClass.school == school_id) & (SchoolClass.homeroom_teacher == user_id)).execute()
    return roles


def staff_query(school_id: int, role: str | None = None):
    """Staff roles of a school with their user (``row.user``), for paging by ``StaffRole.id``."""
    query = (StaffRole.select(StaffRole, User).join(User, on=(StaffRole.user == User.id))
             .where(StaffRole.school == school_id))
    if role is not None:
        query = query.where(StaffRole.role == role)
    return query


def students_query(school_id: int | None = None, class_id: int | None = None):
    query = Student.select()
    if school_id is not None:
        query = query.where(Student.school == school_id)
    if class_id is not None:
        query = query.where(Student.school_class == class_id)
    return query


STUDENT_FIELDS = {"name": "name", "class_id": "school_class", "national_id": "national_id",
                  "birth_date": "birth_date"}


def update_student(student_id: int, changes: dict) -> Student:
    """Change ``name``, ``class_id`` (a class of the same school, or None), ``national_id``, ``birth_date``."""
    changes = dict(changes)
    if "national_id" in changes:
        changes["national_id"] = (changes["national_id"] or "").strip() or None
    values = {STUDENT_FIELDS[k]: v for k, v in changes.items() if k in STUDENT_FIELDS}
    try:
        with write_transaction():
            student = get_student(student_id)
            if "class_id" in changes:
                _check_student_class(student.school_id, changes["class_id"])
            national_id = changes.get("national_id")
            if national_id and Student.select().where((Student.national_id == national_id)
                                                      & (Student.id != student.id)).exists():
                raise _national_id_conflict()
            if values:
                Student.update(**values).where(Student.id == student.id).execute()
    except pw.IntegrityError as exc:
        raise _national_id_conflict() from exc
    return get_student(student_id)


def add_guardian_by_phone(student_id: int, phone: str, name: str, relationship: str = "guardian") -> tuple[User, StudentGuardian]:
    """Link a guardian, found by phone number or created (they sign in by OTP)."""
    try:
        with write_transaction():
            get_student(student_id)
            user = ensure_user(phone, name)
            link = link_guardian(student_id, user.id, relationship)
    except pw.IntegrityError as exc:
        raise Conflict("Try again.") from exc
    return user, link


def set_guardian_phone(student_id: int, guardian_id: int, phone: str) -> User:
    """Give a guardian imported without a phone (an email-only OneRoster row) their phone number.

    They then sign in by OTP with it, and later roster imports that carry the phone match the same
    account. Only for an account whose every role and child is in this student's school, and that
    has no phone yet; the number must be free.
    """
    from ..accounts.logic import normalize_phone

    phone = normalize_phone(phone)
    try:
        with write_transaction():
            student = get_student(student_id)
            if not StudentGuardian.select().where((StudentGuardian.student == student_id)
                                                  & (StudentGuardian.guardian == guardian_id)).exists():
                raise NotFound("This person is not a guardian of this student.")
            user = get_user(guardian_id)
            school_id = student.school_id
            elsewhere = (StaffRole.select().where((StaffRole.user == guardian_id)
                                                  & (StaffRole.school != school_id)).exists()
                         or StudentGuardian.select().join(Student).where(
                             (StudentGuardian.guardian == guardian_id) & (Student.school != school_id)).exists())
            if user.phone is not None or elsewhere:
                raise Conflict("This guardian's phone number cannot be set here.",
                               fields={"phone": ["Only a guardian without a phone, of this school only."]})
            if User.select().where(User.phone == phone).exists():
                raise Conflict("This phone number is already in use.", fields={"phone": ["Already used."]})
            User.update(phone=phone).where((User.id == guardian_id) & User.phone.is_null()).execute()
            sessioncache.invalidate(users=[guardian_id])
    except pw.IntegrityError as exc:  # the same number given at once to another account
        raise Conflict("This phone number is already in use.", fields={"phone": ["Already used."]}) from exc
    return get_user(guardian_id)


def phoneless_guardian_invites(class_id: int, created_by: int | None,
                               now: dt.datetime | None = None) -> list[dict]:
    """A new invite code for each child of the class with a guardian who has no phone (imported from an
    email-only roster row): the list a homeroom teacher prints and hands out. Each call makes new codes."""
    rows = (StudentGuardian.select(StudentGuardian, Student, User)
            .join(Student, on=(StudentGuardian.student == Student.id))
            .switch(StudentGuardian).join(User, on=(StudentGuardian.guardian == User.id))
            .where((Student.school_class == class_id) & User.phone.is_null())
            .order_by(Student.name, Student.id, User.name, User.id))
    out = []
    with write_transaction():
        for link in rows:
            code, invite = create_invite(link.student_id, created_by, link.relationship, now)
            out.append({"student_id": link.student_id, "student_name": link.student.name,
                        "guardian_id": link.guardian_id, "guardian_name": link.guardian.name,
                        "guardian_email": link.guardian.email, "relationship": link.relationship,
                        "code": code, "expires_at": invite.expires_at})
    return out


def unlink_guardian(student_id: int, guardian_id: int) -> None:
    removed = StudentGuardian.delete().where((StudentGuardian.student == student_id)
                                             & (StudentGuardian.guardian == guardian_id)).execute()
    if not removed:
        raise NotFound("This person is not a guardian of this student.")


def guardian_links(student_ids: Iterable[int]) -> dict[int, list[dict]]:
    """``{student_id: [{user_id, name, phone, relationship}]}`` in one query."""
    out: dict[int, list[dict]] = defaultdict(list)
    ids = list(student_ids)
    for start in range(0, len(ids), 5000):
        query = (StudentGuardian.select(StudentGuardian, User).join(User, on=(StudentGuardian.guardian == User.id))
                 .where(StudentGuardian.student.in_(ids[start:start + 5000])).order_by(StudentGuardian.id))
        for link in query:
            out[link.student_id].append({"user_id": link.guardian_id, "name": link.guardian.name,
                                         "phone": link.guardian.phone, "relationship": link.relationship})
    return dict(out)
