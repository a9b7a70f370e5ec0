"""A school with a term, one class with two students (two families) and its timetable, on both backends.

The term runs Monday 2026-09-07 to Thursday 2026-12-31: 17 Mondays and 17 Thursdays.
Class 1A: Monday and Thursday, period 1 07:00–07:45 Toán (the math teacher), period 2 07:50–08:35
Tiếng Việt (the homeroom teacher): 4 weekly periods, 68 lessons in the term.
"""
from __future__ import annotations

import datetime as dt
import types

import pytest

from schedules.logic import common
from service.roster import logic as roster

API = "/api/v1"
TERM_START, TERM_END = dt.date(2026, 9, 7), dt.date(2026, 12, 31)
TIMETABLE = [
    {"weekday": 1, "period": 1, "start": "07:00", "end": "07:45", "subject": "Toán", "room": "P101"},
    {"weekday": 1, "period": 2, "start": "07:50", "end": "08:35", "subject": "Tiếng Việt", "room": "P101"},
    {"weekday": 4, "period": 1, "start": "07:00", "end": "07:45", "subject": "Toán", "room": "P101"},
    {"weekday": 4, "period": 2, "start": "07:50", "end": "08:35", "subject": "Tiếng Việt", "room": "P101"},
]


@pytest.fixture
def clock(monkeypatch):
    """Set the schedules clock: ``clock(dt.datetime(...))`` (naive UTC)."""
    def set_now(when: dt.datetime):
        monkeypatch.setattr(common, "now", lambda: when)
    set_now(dt.datetime(2026, 11, 18, 2, 0))  # Wednesday 18 Nov 2026, 09:00 in Hồ Chí Minh City
    return set_now


@pytest.fixture
def make(make, monkeypatch):
    """The roster factories, with users made without a password (no argon2 hash: a loaded machine
    spends seconds on each); the tests sign in with ``make.headers``."""
    monkeypatch.setattr(make, "user", lambda name="Người dùng", password=None: roster.ensure_user(make.phone(), name))
    return make


@pytest.fixture
def world(app, make, clock):
    school = make.school()
    admin = make.admin(school)
    homeroom = make.teacher(school, "Cô Lan")
    math = make.teacher(school, "Thầy Minh")
    substitute = make.teacher(school, "Cô Hoa")
    klass = make.klass(school, homeroom=homeroom, name="1A", grade=1)
    roster.assign_subject_teacher(klass.id, math.id, "Toán")
    other_class = make.klass(school, name="1B", grade=1)
    grade2 = make.klass(school, name="2A", grade=2)
    alice, bao = make.student(klass, "Nguyễn An"), make.student(klass, "Trần Bảo")
    mother, father = make.guardian(alice, name="Mẹ An"), make.guardian(bao, name="Bố Bảo")
    stranger_child = make.student(grade2, "Lê Chi")
    stranger = make.guardian(stranger_child, name="Mẹ Chi")
    year = roster.create_school_year(school.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
    term = roster.create_term(year.id, "Học kỳ I", TERM_START, TERM_END)
    roster.update_class(klass.id, {"school_year_id": year.id})  # the class belongs to the term's year
    periods = [dict(p, teacher_id=str(math.id if p["subject"] == "Toán" else homeroom.id)) for p in TIMETABLE]
    return types.SimpleNamespace(**locals())


def put_timetable(client, make, world, klass=None, periods=None, user=None, term_id=None):
    klass = klass or world.klass
    return client.put(f"{API}/classes/{klass.id}/timetable",
                      json={"term_id": str(term_id or world.term.id),
                            "periods": world.periods if periods is None else periods},
                      headers=make.headers(user or world.admin))


@pytest.fixture
def timetabled(client, make, world):
    r = put_timetable(client, make, world)
    assert r.status_code == 200, r.get_json()
    return world


def field_errors(response, path: str):
    """The messages at a dotted path of a 4xx envelope's (nested) ``fields``, or None."""
    node = response.get_json()["error"].get("fields") or {}
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.fixture(autouse=True)
def _fresh_timezone_cache():
    common._tz_cache.clear()  # school ids repeat from test to test (and backend to backend)
    yield
    common._tz_cache.clear()
