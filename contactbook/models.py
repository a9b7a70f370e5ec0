"""Contact book tables: attendance, check-ins and leave requests (above), grades and remarks (below).

Roster rows (students, classes, terms, users) are referenced by foreign key; other packages
reach these tables only through ``contactbook.logic`` functions.
"""
from __future__ import annotations

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import SchoolClass, Student, Term


# --- grades (Circular 22/2021/TT-BGDĐT) and remarks ---------------------------------------------
GRADE_KINDS = ("regular", "midterm", "final")
ASSESSMENTS = ("score", "comment")


class GradeSubject(BaseModel):
    """How a subject is assessed in a class: its yearly periods (số tiết/năm học) set the number of
    regular assessments per term (≤ 35 → 2, 36–70 → 3, > 70 → 4); ``assessment`` overrides the
    Circular's list of comment-assessed subjects. Optional: without a row, up to 4 regular
    assessments are accepted and the subject's name decides the assessment."""

    id = pw.BigAutoField()
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE", backref="+")
    subject = pw.CharField(max_length=100)
    yearly_periods = pw.IntegerField(null=True)
    assessment = pw.CharField(max_length=10, null=True)  # score | comment | null (by name)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "grade_subject"
        indexes = ((("school_class", "subject"), True),)


class Grade(BaseModel):
    """One assessment of a student: a score 0–10 with one decimal, or ``Đ``/``CĐ`` (comment-assessed)."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, on_delete="CASCADE", backref="+")
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE", backref="+")
    term = pw.ForeignKeyField(Term, on_delete="CASCADE", backref="+")
    subject = pw.CharField(max_length=100)
    kind = pw.CharField(max_length=10)  # regular | midterm | final
    slot = pw.SmallIntegerField(default=1)  # 1, 2, … for regular assessments; 1 otherwise
    score = pw.DecimalField(max_digits=4, decimal_places=1, null=True)
    mark = pw.CharField(max_length=2, null=True)  # Đ | CĐ
    updated_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "grade"
        indexes = ((("student", "term", "subject", "kind", "slot"), True),
                   (("school_class", "term", "subject"), False))


class GradePublication(BaseModel):
    """Scores of a class, subject and term are a draft until this row exists."""

    id = pw.BigAutoField()
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE", backref="+")
    term = pw.ForeignKeyField(Term, on_delete="CASCADE", backref="+")
    subject = pw.CharField(max_length=100)
    published_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    published_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "grade_publication"
        indexes = ((("school_class", "term", "subject"), True),)


class GradeChange(BaseModel):
    """A change to a published score: who, when, from what to what (``old`` null: a new score)."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, on_delete="CASCADE", backref="+")
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE", backref="+")
    term = pw.ForeignKeyField(Term, on_delete="CASCADE", backref="+")
    subject = pw.CharField(max_length=100)
    kind = pw.CharField(max_length=10)
    slot = pw.SmallIntegerField(default=1)
    old = pw.CharField(max_length=4, null=True)
    new = pw.CharField(max_length=4)
    changed_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    changed_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "grade_change"
        indexes = ((("school_class", "term", "subject"), False),)


class Remark(BaseModel):
    """A teacher's remark (nhận xét) about a student, for a day."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, on_delete="CASCADE", backref="+")
    school_class = pw.ForeignKeyField(SchoolClass, null=True, on_delete="SET NULL", backref="+")
    author = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    body = pw.TextField()
    date = pw.DateField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "remark"
        indexes = ((("student", "date"), False),)


GRADE_MODELS = [GradeSubject, Grade, GradePublication, GradeChange, Remark]
# At merge with the attendance half: MODELS = [<attendance models>, *GRADE_MODELS]
MODELS = [*GRADE_MODELS]
