"""Teachers' remarks (nhận xét) about a student, daily or periodic.

Written by the teachers of the student's class (homeroom and subject) and the school's admins;
read by them and the student's guardians. A new remark notifies the student's guardians
(category ``grade``: it is feedback on the child's learning; they answer in the direct
conversation). ``remarks_for_day`` serves the day's page.
"""
from __future__ import annotations

import datetime as dt

import notifications
from service.roster import logic as roster
from service.db import utcnow, write_transaction
from service.errors import ValidationError
from service.accounts.models import User
from service.roster.models import Student
from service.pagination import paginate_by_id

from .. import policy
from ..models import Remark

MAX_BODY = 4000


def _views(rows) -> list[dict]:
    if rows and all(hasattr(r, "author_name") for r in rows):  # read with the rows (remarks_between)
        names = {r.author_id: r.author_name for r in rows if r.author_id}
    else:
        names = roster.user_names(r.author_id for r in rows if r.author_id)
    return [{"id": r.id, "student_id": r.student_id, "author_id": r.author_id, "author_name": names.get(r.author_id),
             "body": r.body, "date": r.date, "created_at": r.created_at} for r in rows]


def add_remark(user: User, student_id: int, body, date: dt.date | None = None) -> dict:
    """A remark about a student; ``date`` defaults to today in the school's timezone."""
    student = policy.remark_author_for(user, student_id)
    if not isinstance(body, str) or not body.strip():
        raise ValidationError("Write the remark.", fields={"body": ["Must not be empty."]})
    if len(body) > MAX_BODY:
        raise ValidationError("The remark is too long.", fields={"body": [f"At most {MAX_BODY} characters."]})
    date = date or roster.school_today(student.school_id)
    with write_transaction():
        remark = Remark.create(student=student.id, school_class=student.school_class_id, author=user.id,
                               body=body.strip(), date=date, created_at=utcnow())
    _notify_guardians(student, user, remark)  # after the commit
    return _views([remark])[0]


def _notify_guardians(student: Student, author: User, remark: Remark) -> None:
    guardians = roster.guardian_ids_of_student(student.id)
    if not guardians:
        return
    preview = remark.body if len(remark.body) <= 120 else remark.body[:119] + "…"
    texts = {"vi": (f"Nhận xét về {student.name}", f"{author.name}: {preview}"),
             "en": (f"A remark about {student.name}", f"{author.name}: {preview}")}
    notifications.notify(guardians, "grade", *texts["vi"], texts=texts,
                         data={"type": "remark", "id": remark.id, "student_id": str(student.id)})


def list_remarks(user: User, student_id: int, date_from: dt.date | None = None, date_to: dt.date | None = None,
                 limit: int = 50, cursor: str | None = None) -> dict:
    """A student's remarks, newest first, optionally between two dates (inclusive)."""
    student = policy.remark_reader_for(user, student_id)
    if date_from and date_to and date_from > date_to:
        raise ValidationError("from is after to.", fields={"from": ["Must not be after to."]})
    query = Remark.select().where(Remark.student == student.id)
    if date_from:
        query = query.where(Remark.date >= date_from)
    if date_to:
        query = query.where(Remark.date <= date_to)
    page = paginate_by_id(query, Remark.id, limit, cursor, newest_first=True)
    return {"items": _views(page["items"]), "next_cursor": page["next_cursor"]}


def remarks_between(student_id: int, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """Remarks of a student between two dates, oldest first (the caller has authorized)."""
    author_name = User.select(User.name).where(User.id == Remark.author)  # one query with the names
    rows = list(Remark.select(Remark, author_name.alias("author_name"))
                .where((Remark.student == student_id) & (Remark.date >= date_from) & (Remark.date <= date_to))
                .order_by(Remark.date, Remark.id))
    return _views(rows)


def remarks_for_day(student_id: int, date: dt.date) -> list[dict]:
    """The day's remarks for the day's page: ``[{id, student_id, author_id, author_name, body, date,
    created_at}]`` oldest first. No authorization here: the day's page has checked the caller."""
    return remarks_between(student_id, date, date)
