"""Schedules tables: timetables (thời khóa biểu), their day-by-day changes, school events and sign-ups,
calendar feed tokens. Times of day are minutes after midnight in the school's timezone; instants
(event start and end) are naive UTC like every stored time."""
from __future__ import annotations

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import School, SchoolClass, Student, Term


class TimetablePeriod(BaseModel):
    """One weekly period of a class in a term: weekday 1 (Monday) … 7, period number, times, subject."""

    id = pw.BigAutoField()
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE")
    term = pw.ForeignKeyField(Term, on_delete="CASCADE")
    weekday = pw.SmallIntegerField()
    period = pw.SmallIntegerField()
    start_min = pw.SmallIntegerField()  # minutes after local midnight
    end_min = pw.SmallIntegerField()
    subject = pw.CharField(max_length=100)
    teacher = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    room = pw.CharField(max_length=50, null=True)

    class Meta:
        indexes = (
            (("school_class", "term", "weekday", "period"), True),
            (("term", "teacher", "weekday"), False),  # the clash check
        )


class TimetableChange(BaseModel):
    """A change to one period on one date: cancelled, a substitute teacher, or moved to another slot.

    One row per (class, date, period): posting another change for the slot replaces it.
    """

    id = pw.BigAutoField()
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE")
    date = pw.DateField()
    period = pw.SmallIntegerField()
    kind = pw.CharField(max_length=12)  # cancelled | substitute | moved
    # the period as scheduled when the change was made (a moved lesson keeps its subject and teacher)
    subject = pw.CharField(max_length=100)
    regular_teacher = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    room = pw.CharField(max_length=50, null=True)
    start_min = pw.SmallIntegerField()
    end_min = pw.SmallIntegerField()
    teacher = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")  # the substitute
    to_date = pw.DateField(null=True)
    to_period = pw.SmallIntegerField(null=True)
    to_start_min = pw.SmallIntegerField(null=True)
    to_end_min = pw.SmallIntegerField(null=True)
    note = pw.CharField(max_length=500, null=True)
    digest = pw.CharField(max_length=64)  # of the fields above: the same change posted again tells no one
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("school_class", "date", "period"), True),
            (("school_class", "to_date"), False),
        )


class SchoolEvent(BaseModel):
    """A school, grade or class event: holiday, exam, parent meeting, extracurricular activity."""

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, on_delete="CASCADE")
    title = pw.CharField(max_length=200)
    description = pw.TextField(null=True)
    kind = pw.CharField(max_length=20, default="other")
    location = pw.CharField(max_length=200, null=True)
    starts_at = pw.DateTimeField()
    ends_at = pw.DateTimeField()
    grades = pw.TextField(default="[]")  # JSON list; both empty: the whole school
    class_ids = pw.TextField(default="[]")  # JSON list
    capacity = pw.IntegerField(null=True)
    signup = pw.BooleanField(default=False)
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("school", "starts_at"), False),)


class EventSignup(BaseModel):
    id = pw.BigAutoField()
    event = pw.ForeignKeyField(SchoolEvent, on_delete="CASCADE")
    student = pw.ForeignKeyField(Student, on_delete="CASCADE")
    signed_up_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("event", "student"), True),)


class CalendarFeed(BaseModel):
    """A user's iCalendar feed token (only its SHA-256 is stored); one live token per user."""

    id = pw.BigAutoField()
    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    revoked_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "revoked_at"), False),)


MODELS = [TimetablePeriod, TimetableChange, SchoolEvent, EventSignup, CalendarFeed]
