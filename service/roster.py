"""Roster: schools, years, terms, classes, teachers, students, guardians, staff, invite codes.

These functions are the roster's public face: other packages call them and never touch the
tables. They take and return plain ids (and small dicts) so callers stay decoupled.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import defaultdict
from typing import Iterable

from .db import utcnow, write_transaction
from .errors import Conflict, NotFound, ValidationError
from .models import (STAFF_ROLES, ClassTeacher, InviteCode, School, SchoolClass, SchoolYear, StaffRole,
                     Student, StudentGuardian, Term, User)

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


def students_in_audience(school_id: int, grades: Iterable[int] | None = None,
                         class_ids: Iterable[int] | None = None) -> list[int]:
    """Students of a school, narrowed to grades and/or classes (union of the two when both given)."""
    query = Student.select(Student.id).where(Student.school == school_id)
    grades, class_ids = list(grades or []), list(class_ids or [])
    if grades or class_ids:
        cond = None
        if grades:
            cond = Student.school_class.in_(SchoolClass.select(SchoolClass.id).where(
                (SchoolClass.school == school_id) & SchoolClass.grade.in_(grades)))
        if class_ids:
            c2 = Student.school_class.in_(class_ids)
            cond = c2 if cond is None else (cond | c2)
        query = query.where(cond)
    return [s.id for s in query.order_by(Student.id)]


def classes_of_school(school_id: int) -> list[SchoolClass]:
    return list(SchoolClass.select().where(SchoolClass.school == school_id).order_by(SchoolClass.grade, SchoolClass.name))


def current_term(school_id: int, on: dt.date | None = None) -> Term | None:
    on = on or dt.date.today()
    return (Term.select().join(SchoolYear).where((SchoolYear.school == school_id) & (Term.starts_on <= on)
                                                 & (Term.ends_on >= on)).first())


# --- writing ------------------------------------------------------------------------------
def create_school(name: str, code: str | None = None, timezone: str = "Asia/Ho_Chi_Minh") -> School:
    return School.create(name=name, code=code, timezone=timezone)


def create_class(school_id: int, name: str, grade: int | None = None,
                 homeroom_teacher_id: int | None = None, school_year_id: int | None = None) -> SchoolClass:
    get_school(school_id)
    if homeroom_teacher_id is not None and not has_staff_role(homeroom_teacher_id, school_id, ["teacher"]):
        raise ValidationError("The homeroom teacher must be a teacher of this school.",
                              fields={"homeroom_teacher_id": ["Not a teacher of this school."]})
    return SchoolClass.create(school=school_id, name=name, grade=grade, homeroom_teacher=homeroom_teacher_id,
                              school_year=school_year_id)


def assign_subject_teacher(class_id: int, teacher_id: int, subject: str) -> ClassTeacher:
    klass = get_class(class_id)
    if not has_staff_role(teacher_id, klass.school_id, ["teacher"]):
        raise ValidationError("Not a teacher of this school.", fields={"teacher_id": ["Not a teacher of this school."]})
    row, _ = ClassTeacher.get_or_create(school_class=class_id, teacher=teacher_id, subject=subject)
    return row


def create_student(school_id: int, name: str, class_id: int | None = None, national_id: str | None = None,
                   birth_date: dt.date | None = None) -> Student:
    get_school(school_id)
    if class_id is not None and get_class(class_id).school_id != school_id:
        raise ValidationError("The class is not in this school.", fields={"class_id": ["Not in this school."]})
    if national_id and Student.select().where(Student.national_id == national_id).exists():
        raise Conflict("A student with this national id already exists.")
    return Student.create(school=school_id, name=name, school_class=class_id, national_id=national_id,
                          birth_date=birth_date)


def ensure_user(phone: str, name: str, password: str | None = None) -> User:
    from .accounts import hash_password, normalize_phone

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
