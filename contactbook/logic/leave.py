"""Leave requests (xin nghỉ phép): a guardian asks for whole days with a reason; the homeroom
teacher (or an admin) decides; a guardian may cancel while it is pending.

- Overlapping a pending or approved request of the same child → 409 (checked under a per-student
  lock, so two concurrent requests cannot both pass).
- At most 31 days per request, starting no more than 30 days back (a sick child's note after
  the fact) and no more than a year ahead.
- Asking notifies the homeroom teacher of the child's class (category ``leave``); a decision
  notifies every guardian of the child; a cancel notifies the homeroom teacher.
- Approving writes ``absent_excused`` (source ``leave``, audited, the reason as note) on each
  school day of the request (``settings.school_days``) whose status is unset or
  ``absent_unexcused``; a day already ``present``/``late``/``absent_excused`` keeps it (the
  child came, or the day is excused already). A teacher's later post of that day wins, as any
  later post does; a gate ``in`` on that day does too (the child came after all).
"""
from __future__ import annotations

import datetime as dt

from notifications import notify
from service.roster import logic as roster
from service.db import write_transaction
from service.errors import Conflict, NotFound, ValidationError
from service.pagination import paginate_by_id

from .. import policy
from ..models import LeaveRequest
from . import attendance, common, settings, texts

STATUSES = ("pending", "approved", "rejected", "cancelled")
MAX_DAYS = 31
MAX_BACK = dt.timedelta(days=30)
MAX_AHEAD = dt.timedelta(days=366)
MAX_REASON = 1000
MAX_NOTE = 1000
_MAX_ID = 2**63


def view(req: LeaveRequest) -> dict:
    return {"id": req.id, "student_id": req.student_id, "from_date": req.from_date, "to_date": req.to_date,
            "reason": req.reason, "status": req.status, "created_by": req.created_by_id,
            "created_at": req.created_at, "decided_by": req.decided_by_id, "decided_at": req.decided_at,
            "decision_note": req.decision_note, "cancelled_at": req.cancelled_at}


def _get(request_id) -> LeaveRequest:
    try:
        ok = 0 < int(request_id) < _MAX_ID
    except (TypeError, ValueError):
        ok = False
    req = LeaveRequest.get_or_none(LeaveRequest.id == int(request_id)) if ok else None
    if req is None:
        raise NotFound("No such leave request.")
    return req


def _visible(user, request_id) -> LeaveRequest:
    """The request if the caller may see its student (else 404, whatever the id)."""
    req = _get(request_id)
    try:
        policy.student_access(user, req.student_id)
    except NotFound:
        raise NotFound("No such leave request.") from None
    return req


def create(user, student_id: int, from_date: dt.date, to_date: dt.date, reason: str,
           now: dt.datetime | None = None) -> dict:
    student = policy.guardian_of(user, student_id)
    ts = now or common.now()
    reason = (reason or "").strip()
    problems = {}
    if not reason or len(reason) > MAX_REASON:
        problems["reason"] = [f"1-{MAX_REASON} characters."]
    if from_date > to_date:
        problems["to_date"] = ["Before from_date."]
    elif (to_date - from_date).days >= MAX_DAYS:
        problems["to_date"] = [f"At most {MAX_DAYS} days per request."]
    today = common.today(roster.school_timezone(student.school_id), ts)
    if from_date < today - MAX_BACK:
        problems["from_date"] = [f"At most {MAX_BACK.days} days back."]
    if to_date > today + MAX_AHEAD:
        problems["to_date"] = ["More than a year ahead."]
    if problems:
        raise ValidationError("The leave request has invalid fields.", fields=problems)
    with write_transaction():
        common.lock("leave", student.id)
        clash = (LeaveRequest.select(LeaveRequest.id)
                 .where((LeaveRequest.student == student.id) & LeaveRequest.status.in_(["pending", "approved"])
                        & (LeaveRequest.from_date <= to_date) & (LeaveRequest.to_date >= from_date)).first())
        if clash is not None:
            raise Conflict("These days overlap a pending or approved leave request.",
                           fields={"conflicting_id": [str(clash.id)]})
        req = LeaveRequest.create(student=student.id, school=student.school_id, from_date=from_date,
                                  to_date=to_date, reason=reason, created_by=getattr(user, "id", user),
                                  created_at=ts)
    _tell_teacher(req, student, texts.leave_asked(student.name, from_date, to_date, reason))
    return view(req)


def _tell_teacher(req: LeaveRequest, student, words: dict) -> None:
    if student.school_class_id is None:
        return
    teacher = roster.get_class(student.school_class_id).homeroom_teacher_id
    if teacher:
        notify([teacher], "leave", *words["vi"], texts=words,
               data={"type": "leave_request", "id": req.id, "student_id": str(student.id)})


def for_student(user, student_id: int, limit: int = 50, cursor: str | None = None) -> dict:
    """A student's requests, newest first (guardians, the class's teachers, admins)."""
    student = policy.student_reader(user, student_id)
    page = paginate_by_id(LeaveRequest.select().where(LeaveRequest.student == student.id), LeaveRequest.id,
                          limit, cursor)
    return {"items": [view(r) for r in page["items"]], "next_cursor": page["next_cursor"]}


def for_class(user, class_id: int, status: str | None = None, limit: int = 50, cursor: str | None = None) -> dict:
    """Requests of the class's students (its students now), newest first; ``status`` filters."""
    klass = policy.class_reader(user, class_id)
    members = roster.class_student_ids(klass.id)
    if not members:
        return {"items": [], "next_cursor": None}
    query = LeaveRequest.select().where(LeaveRequest.student.in_(members))
    if status:
        query = query.where(LeaveRequest.status == status)
    page = paginate_by_id(query, LeaveRequest.id, limit, cursor)
    return {"items": [view(r) for r in page["items"]], "next_cursor": page["next_cursor"]}


def decide(user, request_id, approved: bool, note: str | None = None, now: dt.datetime | None = None) -> dict:
    """The homeroom teacher of the child's class or an admin: approve or reject a pending request."""
    req = _visible(user, request_id)
    student = policy.leave_decider(user, req.student_id)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError("The note is too long.", fields={"note": [f"At most {MAX_NOTE} characters."]})
    ts = now or common.now()
    user_id = getattr(user, "id", user)
    with write_transaction():
        common.lock("leave", req.student_id)
        common.lock("attendance", req.school_id)  # the same order everywhere: leave, then attendance
        status = "approved" if approved else "rejected"
        done = (LeaveRequest.update(status=status, decided_by=user_id, decided_at=ts, decision_note=note)
                .where((LeaveRequest.id == req.id) & (LeaveRequest.status == "pending")).execute())
        if not done:
            raise Conflict(f"This request is {LeaveRequest.get_by_id(req.id).status} already.")
        req = LeaveRequest.get_by_id(req.id)
        if approved:
            _mark_days(req, student, user_id, ts)
    words = texts.leave_decided(student.name, req.from_date, req.to_date, approved, note)
    guardians = roster.guardian_ids_of_student(student.id)
    if guardians:
        notify(guardians, "leave", *words["vi"], texts=words,
               data={"type": "leave_request", "id": req.id, "student_id": str(student.id), "status": req.status})
    return view(req)


def _mark_days(req: LeaveRequest, student, user_id: int, ts: dt.datetime) -> None:
    conf = settings.of_school(req.school_id)
    days = [req.from_date + dt.timedelta(days=i) for i in range((req.to_date - req.from_date).days + 1)]
    days = [d for d in days if settings.is_school_day(conf, d)]
    existing = attendance.existing_records([student.id], days)
    note = req.reason[:attendance.MAX_NOTE]
    rows, changes = [], []
    for day in days:
        old = existing.get((student.id, day))
        if old is not None and old.status != "absent_unexcused":
            continue
        rows.append({"student": student.id, "date": day, "school": req.school_id,
                     "school_class": student.school_class_id, "status": "absent_excused", "note": note,
                     "source": "leave", "check_in_at": None, "check_out_at": None, "updated_by": user_id,
                     "updated_at": ts})
        changes.append({"student": student.id, "date": day, "old_status": old.status if old else None,
                        "new_status": "absent_excused", "old_note": old.note if old else None, "new_note": note,
                        "source": "leave", "changed_by": user_id, "leave_request_id": req.id, "changed_at": ts})
    attendance.write_records(rows, update=["school_class", "status", "note", "source", "updated_by", "updated_at"])
    attendance.write_changes(changes)


def cancel(user, request_id, now: dt.datetime | None = None) -> dict:
    """A guardian of the child, while the request is pending (else 409)."""
    req = _visible(user, request_id)
    student = policy.guardian_of(user, req.student_id)
    ts = now or common.now()
    with write_transaction():
        done = (LeaveRequest.update(status="cancelled", cancelled_at=ts)
                .where((LeaveRequest.id == req.id) & (LeaveRequest.status == "pending")).execute())
        if not done:
            raise Conflict("Only a pending request can be cancelled; this one is "
                           f"{LeaveRequest.get_by_id(req.id).status}.")
    req = LeaveRequest.get_by_id(req.id)
    _tell_teacher(req, student, texts.leave_cancelled(student.name, req.from_date, req.to_date))
    return view(req)
