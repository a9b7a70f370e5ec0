"""Roster tables: schools, years, terms, classes, staff, students, guardians, invites, imports.

Other packages reach them through ``service.roster`` and ``service.permissions`` functions."""
from __future__ import annotations

import peewee as pw

from ..accounts.models import User
from ..db import BaseModel, utcnow

STAFF_ROLES = ("admin", "teacher", "cafeteria")


class School(BaseModel):
    id = pw.BigAutoField()
    name = pw.CharField(max_length=200)
    code = pw.CharField(max_length=50, null=True)
    timezone = pw.CharField(max_length=64, default="Asia/Ho_Chi_Minh")
    sourced_id = pw.CharField(max_length=100, unique=True, null=True)
    created_at = pw.DateTimeField(default=utcnow)


class SchoolYear(BaseModel):
    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, backref="years", on_delete="CASCADE")
    name = pw.CharField(max_length=100)
    starts_on = pw.DateField()
    ends_on = pw.DateField()
    sourced_id = pw.CharField(max_length=100, unique=True, null=True)


class Term(BaseModel):
    id = pw.BigAutoField()
    school_year = pw.ForeignKeyField(SchoolYear, backref="terms", on_delete="CASCADE")
    name = pw.CharField(max_length=100)
    starts_on = pw.DateField()
    ends_on = pw.DateField()
    sourced_id = pw.CharField(max_length=100, unique=True, null=True)


class StaffRole(BaseModel):
    id = pw.BigAutoField()
    user = pw.ForeignKeyField(User, backref="staff_roles", on_delete="CASCADE")
    school = pw.ForeignKeyField(School, backref="staff", on_delete="CASCADE")
    role = pw.CharField(max_length=20)  # admin | teacher | cafeteria

    class Meta:
        indexes = ((("user", "school", "role"), True),)


class SchoolClass(BaseModel):
    """A class (lớp), e.g. 10A1, with its homeroom teacher (giáo viên chủ nhiệm)."""

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, backref="classes", on_delete="CASCADE")
    school_year = pw.ForeignKeyField(SchoolYear, null=True, on_delete="SET NULL")
    name = pw.CharField(max_length=100)
    grade = pw.IntegerField(null=True)  # 1..12
    homeroom_teacher = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    sourced_id = pw.CharField(max_length=100, unique=True, null=True)
    created_at = pw.DateTimeField(default=utcnow)


class ClassTeacher(BaseModel):
    """A subject teacher of a class (the homeroom teacher is on the class itself)."""

    id = pw.BigAutoField()
    school_class = pw.ForeignKeyField(SchoolClass, backref="teachers", on_delete="CASCADE")
    teacher = pw.ForeignKeyField(User, backref="teaching", on_delete="CASCADE")
    subject = pw.CharField(max_length=100, default="")

    class Meta:
        indexes = ((("school_class", "teacher", "subject"), True),)


class Student(BaseModel):
    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, backref="students", on_delete="CASCADE")
    school_class = pw.ForeignKeyField(SchoolClass, backref="students", null=True, on_delete="SET NULL")
    name = pw.CharField(max_length=200)
    national_id = pw.CharField(max_length=32, unique=True, null=True)  # mã định danh học sinh
    birth_date = pw.DateField(null=True)
    sourced_id = pw.CharField(max_length=100, unique=True, null=True)
    created_at = pw.DateTimeField(default=utcnow)


class StudentGuardian(BaseModel):
    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, backref="guardian_links", on_delete="CASCADE")
    guardian = pw.ForeignKeyField(User, backref="children_links", on_delete="CASCADE")
    relationship = pw.CharField(max_length=30, default="guardian")  # mother, father, guardian, ...

    class Meta:
        indexes = ((("student", "guardian"), True),)


class InviteCode(BaseModel):
    """A code the school hands a family; a guardian claims the child with it."""

    id = pw.BigAutoField()
    code_hash = pw.CharField(max_length=64, unique=True)
    student = pw.ForeignKeyField(Student, on_delete="CASCADE")
    relationship = pw.CharField(max_length=30, default="guardian")
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)
    used_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")


class RosterImport(BaseModel):
    """A OneRoster upload and the background job importing it (``service.roster.oneroster``)."""

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, backref="roster_imports", on_delete="CASCADE")
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    status = pw.CharField(max_length=20, default="queued")  # queued | running | done | failed
    file_name = pw.CharField(max_length=200, default="")
    payload = pw.BlobField(null=True)  # the uploaded zip; dropped once the import has finished
    counts = pw.TextField(null=True)  # JSON: {kind: {created, updated, unchanged, removed}}
    errors = pw.TextField(null=True)  # JSON: [{file, line, column, message}]
    warnings = pw.TextField(null=True)  # JSON: [{file, line, column, message}] (what was not imported)
    dry_run = pw.BooleanField(default=False)  # the plan only: nothing is written
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)


MODELS = [School, SchoolYear, Term, StaffRole, SchoolClass, ClassTeacher, Student, StudentGuardian, InviteCode,
          RosterImport]
