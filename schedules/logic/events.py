"""School events (holidays, exams, parent meetings, extracurricular activities) and sign-ups.

An event's audience is the whole school (no grades, no classes), or the union of some grades and
some classes. Its guardians are told when it is added (category ``schedule``). With ``signup``
a guardian signs their child up (per child); ``capacity`` caps the sign-ups (full → 409).
Signing up twice answers 200 with the existing sign-up; ``DELETE`` takes it back (204).
"""
from __future__ import annotations

import datetime as dt
import json

import peewee as pw

from notifications import notify
from service.roster import logic as roster
from service.roster import queries as roster_queries
from service.db import write_transaction
from service.errors import Conflict, NotFound, ValidationError

from .. import policy
from ..models import EventSignup, SchoolEvent
from ..policy import audience_of, in_audience
from . import common

KINDS = ("holiday", "exam", "meeting", "activity", "other")
MAX_RANGE_DAYS = 366


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError("The request has invalid fields.", fields=common.nest({field: [message]}))


def create_event(user, school_id: int, body: dict) -> dict:
    """Add an event (the school's admins); its audience's guardians are told after the commit."""
    school_id = policy.school_for_events(user, school_id)
    starts_at, ends_at = body["starts_at"], body["ends_at"]
    for name, when in (("starts_at", starts_at), ("ends_at", ends_at)):
        if not 1900 <= when.year <= 3000:
            raise _invalid(name, "A time between the years 1900 and 3000.")
    if ends_at <= starts_at:
        raise _invalid("ends_at", "The event ends after it starts.")
    audience = body.get("audience") or {}
    grades = sorted({int(g) for g in audience.get("grades") or []})
    class_ids = sorted({int(c) for c in audience.get("class_ids") or []})
    if any(not 1 <= g <= 12 for g in grades):
        raise _invalid("audience.grades", "Grades 1 to 12.")
    unknown = set(class_ids) - roster_queries.classes_in_school(school_id, class_ids)
    if unknown:
        raise _invalid("audience.class_ids", "Not classes of this school: " + ", ".join(map(str, sorted(unknown))))
    signup, capacity = bool(body.get("signup")), body.get("capacity")
    if capacity is not None and not signup:
        raise _invalid("capacity", "A capacity needs signup: true.")
    kind = body.get("kind") or "other"
    if kind not in KINDS:
        raise _invalid("kind", f"One of {', '.join(KINDS)}.")
    with write_transaction():
        event = SchoolEvent.create(school=school_id, title=body["title"].strip(), description=body.get("description"),
                                   kind=kind, location=body.get("location"), starts_at=starts_at, ends_at=ends_at,
                                   grades=json.dumps(grades), class_ids=json.dumps(class_ids), capacity=capacity,
                                   signup=signup, created_by=getattr(user, "id", user), created_at=common.now())
    _tell_added(event, grades, class_ids, actor_id=getattr(user, "id", user))
    return event_views([event])[0]


def _tell_added(event: SchoolEvent, grades, class_ids, actor_id: int) -> None:
    guardians = set(roster_queries.audience_guardian_ids(event.school_id, grades, class_ids)) - {actor_id}
    if not guardians:
        return
    tz = roster.school_timezone(event.school_id)
    start = event.starts_at.replace(tzinfo=dt.timezone.utc).astimezone(common.zone(tz))
    when = f"{start:%d/%m/%Y %H:%M}"
    texts = {"vi": (f"Sự kiện mới: {event.title}", f"{when}" + (f" tại {event.location}" if event.location else "")
                    + (". Đăng ký trong ứng dụng." if event.signup else ".")),
             "en": (f"New event: {event.title}", f"{when}" + (f" at {event.location}" if event.location else "")
                    + (". Sign up in the app." if event.signup else "."))}
    notify(guardians, "schedule", *texts["vi"], texts=texts, data={"type": "event", "id": event.id},
           collapse_key=f"event-{event.id}")


def _signup_counts(event_ids: list[int]) -> dict[int, int]:
    if not event_ids:
        return {}
    query = (EventSignup.select(EventSignup.event, pw.fn.COUNT(EventSignup.id).alias("n"))
             .where(EventSignup.event.in_(event_ids)).group_by(EventSignup.event))
    return {row.event_id: row.n for row in query}


def event_views(events: list[SchoolEvent], signed_up: set[int] | None = None) -> list[dict]:
    counts = _signup_counts([e.id for e in events if e.signup])
    out = []
    for e in events:
        taken = counts.get(e.id, 0)
        view = {"id": e.id, "school_id": e.school_id, "title": e.title, "description": e.description, "kind": e.kind,
                "location": e.location, "starts_at": e.starts_at, "ends_at": e.ends_at, "audience": audience_of(e),
                "signup": e.signup, "capacity": e.capacity, "signups": taken,
                "spots_left": (max(0, e.capacity - taken) if e.capacity is not None else None),
                "created_at": e.created_at}
        if signed_up is not None:
            view["signed_up"] = e.id in signed_up
        out.append(view)
    return out


def _utc_bounds(day_from: dt.date, day_to: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    start = common.utc_naive(dt.datetime.combine(day_from, dt.time(), tzinfo=common.zone(tz)))
    end = common.utc_naive(dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time(), tzinfo=common.zone(tz)))
    return start, end


def events_for_classes(school_id: int, classes: dict[int | None, int | None], start_utc: dt.datetime,
                       end_utc: dt.datetime) -> list[SchoolEvent]:
    """The school's events overlapping the range whose audience takes in one of ``{class_id: grade}``."""
    rows = (SchoolEvent.select().where((SchoolEvent.school == school_id) & (SchoolEvent.starts_at < end_utc)
                                       & (SchoolEvent.ends_at > start_utc))
            .order_by(SchoolEvent.starts_at, SchoolEvent.id))
    return [e for e in rows if any(in_audience(e, c, g) for c, g in classes.items())]


def student_calendar(user, student_id: int, day_from: dt.date | None, day_to: dt.date | None) -> dict:
    """``{student_id, from, to, items: [event + signed_up]}``: events of the student's audience (default:
    today and the next 30 days in the school's timezone; at most a year)."""
    student = policy.student_for_view(user, student_id)
    tz = roster.school_timezone(student.school_id)
    for name, day in (("from", day_from), ("to", day_to)):
        if day is not None and not 1900 <= day.year <= 3000:
            raise _invalid(name, "A date between the years 1900 and 3000.")
    day_from = day_from or common.today_in(tz)
    day_to = day_to or day_from + dt.timedelta(days=30)
    if day_to < day_from:
        raise _invalid("to", "On or after from.")
    if (day_to - day_from).days > MAX_RANGE_DAYS:
        raise _invalid("to", f"At most {MAX_RANGE_DAYS} days after from.")
    grade = _grade_of(student.school_class_id)
    start, end = _utc_bounds(day_from, day_to, tz)
    events = events_for_classes(student.school_id, {student.school_class_id: grade}, start, end)
    signed = {s.event_id for s in EventSignup.select(EventSignup.event).where(
        (EventSignup.student == student.id) & EventSignup.event.in_([e.id for e in events]))} if events else set()
    return {"student_id": student.id, "from": day_from, "to": day_to, "timezone": tz,
            "items": event_views(events, signed)}


def _grade_of(class_id: int | None) -> int | None:
    if class_id is None:
        return None
    return roster_queries.classes_info([class_id]).get(class_id, {}).get("grade")


def _event_for_student(user, event_id: int, student_id: int, guardian_only: bool = True):
    student = policy.student_for_signup(user, student_id)
    event = SchoolEvent.get_or_none(SchoolEvent.id == event_id)
    policy.event_visible_to_student(event, student, _grade_of(student.school_class_id))
    return event, student


def sign_up(user, event_id: int, student_id: int) -> tuple[dict, bool]:
    """A guardian signs their child up. Returns (sign-up, created); twice → the existing one."""
    event, student = _event_for_student(user, event_id, student_id)
    if not event.signup:
        raise Conflict("This event takes no sign-ups.")
    if event.starts_at <= common.now():
        raise Conflict("The event has started: sign-ups are closed.")
    with write_transaction():
        common.lock("event-signup", event.id)  # the capacity check and the insert, one at a time
        existing = EventSignup.get_or_none((EventSignup.event == event.id) & (EventSignup.student == student.id))
        if existing is not None:
            return signup_view(existing), False
        if event.capacity is not None and (
                EventSignup.select().where(EventSignup.event == event.id).count() >= event.capacity):
            raise Conflict("The event is full.")
        row = EventSignup.create(event=event.id, student=student.id, signed_up_by=getattr(user, "id", user),
                                 created_at=common.now())
    return signup_view(row), True


def cancel_signup(user, event_id: int, student_id: int) -> None:
    event, student = _event_for_student(user, event_id, student_id)
    deleted = EventSignup.delete().where((EventSignup.event == event.id)
                                         & (EventSignup.student == student.id)).execute()
    if not deleted:
        raise NotFound("This child is not signed up.")


def signup_view(row: EventSignup) -> dict:
    return {"id": row.id, "event_id": row.event_id, "student_id": row.student_id,
            "signed_up_by": row.signed_up_by_id, "created_at": row.created_at}
