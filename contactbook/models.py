"""Contact book tables: attendance (and its audit), gate devices and check-ins, leave requests,
per-school settings.

Other packages never read these tables: they call ``contactbook.logic`` functions. The grades
half of the package appends its models at the end of this file (and to ``MODELS``).
"""
from __future__ import annotations

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import School, SchoolClass, Student

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


MODELS = [ContactBookSetting, AttendanceRecord, AttendanceChange, GateDevice, CheckIn, LeaveRequest]
