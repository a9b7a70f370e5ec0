"""Contact book tables: attendance (and its audit), gate devices and check-ins, leave requests,
per-school settings.

Grades (Circular 22/2021) and remarks follow. Other packages never read these tables: they call
``contactbook.logic`` functions.
"""
from __future__ import annotations

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import School, SchoolClass, Student, Term

STATUSES = ("present", "late", "absent_excused", "absent_unexcused")
#: who set an attendance record last: a teacher's post, a gate check-in, an approved leave request
SOURCES = ("teacher", "gate", "leave")


class ContactBookSetting(BaseModel):
    """A school's contact-book settings; no row means the defaults (07:30, Monday to Friday)."""

    school = pw.ForeignKeyField(School, primary_key=True, backref="+", on_delete="CASCADE")
    start_time = pw.CharField(max_length=5, default="07:30")  # local school time: a later first `in` is late
    school_days = pw.CharField(max_length=20, default="1,2,3,4,5")  # ISO weekdays, Monday 1
    updated_by = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    updated_at = pw.DateTimeField(default=utcnow)


class AttendanceRecord(BaseModel):
    """One student's day (date in the school's timezone). ``source`` says who set the status last."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, backref="+", on_delete="CASCADE")
    date = pw.DateField()
    school = pw.ForeignKeyField(School, backref="+", on_delete="CASCADE")
    school_class = pw.ForeignKeyField(SchoolClass, null=True, backref="+", on_delete="SET NULL")
    status = pw.CharField(max_length=20)
    note = pw.CharField(max_length=500, default="")
    source = pw.CharField(max_length=10)
    check_in_at = pw.DateTimeField(null=True)  # the day's first gate `in` (UTC)
    check_out_at = pw.DateTimeField(null=True)  # the day's last gate `out` (UTC)
    updated_by = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("student", "date"), True), (("school_class", "date"), False))


class AttendanceChange(BaseModel):
    """The audit: every change of a day's status or note, who (null: a gate device) and when."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, backref="+", on_delete="CASCADE")
    date = pw.DateField()
    old_status = pw.CharField(max_length=20, null=True)  # null: the day had no record
    new_status = pw.CharField(max_length=20)
    old_note = pw.CharField(max_length=500, null=True)
    new_note = pw.CharField(max_length=500, default="")
    source = pw.CharField(max_length=10)
    changed_by = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    device_id = pw.BigIntegerField(null=True)  # gate changes: the device
    leave_request_id = pw.BigIntegerField(null=True)  # leave changes: the request
    changed_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("student", "date"), False),)


class GateDevice(BaseModel):
    """A school gate's card or face reader. Its API key is shown once; only its SHA-256 is kept."""

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, backref="+", on_delete="CASCADE")
    name = pw.CharField(max_length=100)
    key_hash = pw.CharField(max_length=64, unique=True)
    created_by = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    revoked_at = pw.DateTimeField(null=True)
    last_seen_at = pw.DateTimeField(null=True)


class CheckIn(BaseModel):
    """One gate event, stored once per (device, event_id)."""

    id = pw.BigAutoField()
    device = pw.ForeignKeyField(GateDevice, backref="+", on_delete="CASCADE")
    event_id = pw.CharField(max_length=100)
    student = pw.ForeignKeyField(Student, backref="+", on_delete="CASCADE")
    school = pw.ForeignKeyField(School, backref="+", on_delete="CASCADE")
    at = pw.DateTimeField()  # UTC
    date = pw.DateField()  # ``at``'s date in the school's timezone
    direction = pw.CharField(max_length=3)  # in | out
    batch = pw.CharField(max_length=32)  # the request that stored it (tells stored from duplicates)
    received_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("device", "event_id"), True), (("student", "date"), False))


class LeaveRequest(BaseModel):
    """A guardian's request (xin nghỉ phép) for whole days, decided by the homeroom teacher or an admin."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, backref="+", on_delete="CASCADE")
    school = pw.ForeignKeyField(School, backref="+", on_delete="CASCADE")
    from_date = pw.DateField()
    to_date = pw.DateField()
    reason = pw.TextField()
    status = pw.CharField(max_length=10, default="pending")  # pending | approved | rejected | cancelled
    created_by = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    decided_by = pw.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    decided_at = pw.DateTimeField(null=True)
    decision_note = pw.TextField(default="")
    cancelled_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("student", "status", "from_date"), False),)


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

MODELS = [ContactBookSetting, AttendanceRecord, AttendanceChange, GateDevice, CheckIn, LeaveRequest,
          *GRADE_MODELS]
