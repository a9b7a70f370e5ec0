"""The iCalendar feed (RFC 5545, built with the ``icalendar`` library) a phone calendar subscribes to.

Each user has at most one live feed token; only its SHA-256 is stored. ``POST /me/calendar-feed``
issues a new one (the previous stops working), ``DELETE`` revokes it; a revoked or unknown token → 404.

What the feed holds, read from the roster at every fetch (access follows the roster live):

- a guardian: each child's class timetable, one weekly recurring VEVENT per period and term
  (``RRULE:FREQ=WEEKLY;UNTIL=`` the end of the term's last day, from the first such weekday of the
  term), cancelled periods as ``EXDATE``, substitutes and moved periods as ``RECURRENCE-ID``
  overrides; and the school events whose audience takes in a child (from 180 days back).
- a teacher (or admin who teaches): the periods they teach in the schools where they still hold a
  staff role (terms ended less than a year ago), their cancelled and substituted-away periods as
  ``EXDATE``, moved ones as overrides, the periods they substitute as single events; and the
  events of the classes they teach (or of their whole school).

Times carry the school's ``TZID`` and the calendar its ``VTIMEZONE`` (``add_missing_timezones``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import defaultdict

import icalendar

from service.roster import logic as roster

from service.roster import queries as roster_queries
from service.db import write_transaction
from service.errors import NotFound

from ..models import CalendarFeed, SchoolEvent, TimetableChange, TimetablePeriod
from . import common
from .events import events_for_classes

EVENTS_BACK = dt.timedelta(days=180)
TEACHER_TERMS_BACK = dt.timedelta(days=365)
PRODID = "-//Lienlac//So lien lac dien tu//VI"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed(user) -> str:
    """A new feed token for the user (the previous one is revoked). Returns the token (shown once)."""
    user_id = getattr(user, "id", user)
    token = secrets.token_urlsafe(32)
    with write_transaction():
        CalendarFeed.update(revoked_at=common.now()).where(
            (CalendarFeed.user == user_id) & CalendarFeed.revoked_at.is_null()).execute()
        CalendarFeed.create(user=user_id, token_hash=_hash(token), created_at=common.now())
    return token


def revoke_feed(user) -> None:
    user_id = getattr(user, "id", user)
    CalendarFeed.update(revoked_at=common.now()).where(
        (CalendarFeed.user == user_id) & CalendarFeed.revoked_at.is_null()).execute()


def feed_user(token: str):
    """The user of a live feed token, else 404."""
    if not token or len(token) > 100:
        raise NotFound("No such calendar.")
    row = CalendarFeed.get_or_none((CalendarFeed.token_hash == _hash(token)) & CalendarFeed.revoked_at.is_null())
    if row is None:
        raise NotFound("No such calendar.")
    try:
        user = roster.get_user(row.user_id)
    except NotFound:
        raise NotFound("No such calendar.") from None
    if not user.is_active:
        raise NotFound("No such calendar.")
    return user


# --- building -------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, name: str):
        self.cal = icalendar.Calendar()
        self.cal.add("prodid", PRODID)
        self.cal.add("version", "2.0")
        self.cal.add("calscale", "GREGORIAN")
        self.cal.add("method", "PUBLISH")
        self.cal.add("x-wr-calname", f"Lienlac – {name}")
        self.cal.add("refresh-interval", dt.timedelta(hours=1), parameters={"VALUE": "DURATION"})
        self.cal.add("x-published-ttl", "PT1H")
        self.stamp = common.now().replace(tzinfo=dt.timezone.utc)
        self.first_day: dt.date | None = None

    def _seen(self, day: dt.date) -> None:
        self.first_day = day if self.first_day is None else min(self.first_day, day)

    def event(self, uid: str, start: dt.datetime, end: dt.datetime, summary: str, **extra) -> icalendar.Event:
        ev = icalendar.Event()
        ev.add("uid", uid)
        ev.add("dtstamp", self.stamp)
        ev.add("dtstart", start)
        ev.add("dtend", end)
        ev.add("summary", summary)
        for key, value in extra.items():
            if value is not None and value != []:
                ev.add(key.replace("_", "-"), value)
        self.cal.add_component(ev)
        self._seen(start.date())
        return ev

    def series(self, period: TimetablePeriod, term, tz: str, summary: str, description: str,
               changes: list[TimetableChange], names: dict, skip_substituted: bool) -> None:
        """One weekly recurring event for a period of a term, its changes as exceptions."""
        first = term.starts_on + dt.timedelta(days=(period.weekday - term.starts_on.isoweekday()) % 7)
        if first > term.ends_on:
            return
        until = dt.datetime.combine(term.ends_on, dt.time(23, 59, 59), tzinfo=common.zone(tz)).astimezone(
            dt.timezone.utc)
        uid = f"timetable-{period.school_class_id}-{term.id}-{period.weekday}-{period.period}@lienlac"
        exdates, overrides = [], []
        for change in changes:
            if not (first <= change.date <= term.ends_on) or change.date.isoweekday() != period.weekday:
                continue
            original = common.local_dt(change.date, period.start_min, tz)
            if change.kind == "cancelled" or (change.kind == "substitute" and skip_substituted):
                exdates.append(original)
            else:
                overrides.append((change, original))
        self.event(uid, common.local_dt(first, period.start_min, tz), common.local_dt(first, period.end_min, tz),
                   summary, location=period.room, description=description,
                   rrule={"freq": "weekly", "until": until}, exdate=sorted(exdates) or None)
        for change, original in overrides:
            if change.kind == "substitute":
                start, end = original, common.local_dt(change.date, period.end_min, tz)
                label = f"Dạy thay: {names.get(change.teacher_id, '')}"
            else:
                start = common.local_dt(change.to_date, change.to_start_min, tz)
                end = common.local_dt(change.to_date, change.to_end_min, tz)
                label = f"Đổi sang tiết {change.to_period} ngày {change.to_date:%d/%m}"
            self.event(uid, start, end, f"{summary} ({label})", location=period.room,
                       description="\n".join(filter(None, [description, label, change.note])),
                       recurrence_id=original)

    def school_event(self, event: SchoolEvent, tz: str) -> None:
        zone = common.zone(tz)
        self.event(f"event-{event.id}@lienlac",
                   event.starts_at.replace(tzinfo=dt.timezone.utc).astimezone(zone),
                   event.ends_at.replace(tzinfo=dt.timezone.utc).astimezone(zone),
                   event.title, location=event.location, description=event.description,
                   categories=[event.kind])

    def render(self) -> bytes:
        first = (self.first_day or common.now().date()) - dt.timedelta(days=400)
        self.cal.add_missing_timezones(first_date=first, last_date=first + dt.timedelta(days=365 * 4))
        return self.cal.to_ical()


def _describe(period: TimetablePeriod, class_name: str, names: dict) -> str:
    teacher = names.get(period.teacher_id) if period.teacher_id else None
    return " · ".join(filter(None, [f"Lớp {class_name}", f"Tiết {period.period}", teacher and f"GV: {teacher}"]))


def _changes_by_class(class_ids) -> dict[int, list[TimetableChange]]:
    out = defaultdict(list)
    if class_ids:
        for c in TimetableChange.select().where(TimetableChange.school_class.in_(list(class_ids))):
            out[c.school_class_id].append(c)
    return out


def build_feed(token: str) -> bytes:
    """The calendar behind a live feed token (404 otherwise), as RFC 5545 bytes."""
    user = feed_user(token)
    builder = _Builder(user.name)
    children = roster.children_of(user.id)
    own_periods = list(TimetablePeriod.select().where(TimetablePeriod.teacher == user.id))
    class_ids = {c.school_class_id for c in children if c.school_class_id} | {p.school_class_id for p in own_periods}
    classes = roster_queries.classes_info(class_ids)
    timezones = roster_queries.schools_timezones({c["school_id"] for c in classes.values()})
    taught_schools = roster_queries.staff_school_ids(user.id, ("teacher", "admin"))
    guardian_classes = {c.school_class_id for c in children if c.school_class_id}
    teacher_periods = [p for p in own_periods if classes[p.school_class_id]["school_id"] in taught_schools]
    guardian_periods = list(TimetablePeriod.select().where(TimetablePeriod.school_class.in_(list(guardian_classes)))
                            ) if guardian_classes else []
    substituting = list(TimetableChange.select().where((TimetableChange.teacher == user.id)
                                                       & (TimetableChange.kind == "substitute")))
    sub_classes = roster_queries.classes_info({c.school_class_id for c in substituting} - set(classes))
    classes.update(sub_classes)
    timezones.update(roster_queries.schools_timezones({c["school_id"] for c in sub_classes.values()} - set(timezones)))
    terms = roster_queries.terms_by_id({p.term_id for p in guardian_periods + teacher_periods})
    changes = _changes_by_class({p.school_class_id for p in guardian_periods + teacher_periods})
    names = roster.user_names({p.teacher_id for p in guardian_periods + teacher_periods if p.teacher_id}
                              | {c.teacher_id for cs in changes.values() for c in cs if c.teacher_id})
    today = common.now().date()

    def slot_changes(period):
        return [c for c in changes.get(period.school_class_id, []) if c.period == period.period]

    for p in guardian_periods:
        klass, term = classes[p.school_class_id], terms[p.term_id]
        builder.series(p, term, timezones[klass["school_id"]], f"{p.subject} · {klass['name']}",
                       _describe(p, klass["name"], names), slot_changes(p), names, skip_substituted=False)
    for p in teacher_periods:
        klass, term = classes[p.school_class_id], terms[p.term_id]
        if p.school_class_id in guardian_classes or term.ends_on < today - TEACHER_TERMS_BACK:
            continue  # already in as a parent's view of the class
        builder.series(p, term, timezones[klass["school_id"]], f"{p.subject} · {klass['name']}",
                       _describe(p, klass["name"], names), slot_changes(p), names, skip_substituted=True)
    staff_schools = roster_queries.staff_school_ids(user.id) if substituting else set()
    for c in substituting:
        klass = classes.get(c.school_class_id)
        if klass is None or klass["school_id"] not in staff_schools:
            continue
        if c.school_class_id in guardian_classes:
            continue  # shown as an override of the class's series
        tz = timezones[klass["school_id"]]
        builder.event(f"substitute-{c.id}@lienlac", common.local_dt(c.date, c.start_min, tz),
                      common.local_dt(c.date, c.end_min, tz), f"{c.subject} · {klass['name']} (dạy thay)",
                      location=c.room, description=f"Lớp {klass['name']} · Tiết {c.period} · Dạy thay")
    # events: the children's audiences, and the classes a teacher teaches
    audiences: dict[int, dict] = defaultdict(dict)
    for child in children:
        grade = classes.get(child.school_class_id, {}).get("grade") if child.school_class_id else None
        audiences[child.school_id][child.school_class_id] = grade
    for p in teacher_periods:
        klass = classes[p.school_class_id]
        audiences[klass["school_id"]][p.school_class_id] = klass["grade"]
    for school_id in taught_schools:
        audiences[school_id].setdefault(None, None)  # whole-school events reach its teachers
    timezones.update(roster_queries.schools_timezones(set(audiences) - set(timezones)))
    start = common.now() - EVENTS_BACK
    seen = set()
    for school_id, members in audiences.items():
        for event in events_for_classes(school_id, members, start, dt.datetime.max):
            if event.id not in seen:
                seen.add(event.id)
                builder.school_event(event, timezones[school_id])
    return builder.render()
