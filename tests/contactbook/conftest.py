"""Contact-book test helpers: a school with two classes and their families, a fixed clock."""
from __future__ import annotations

import datetime as dt

import pytest

from notifications.models import Notification
from service.roster import logic as roster

API = "/api/v1"
#: Wednesday 25 November 2026, 08:00 in Hà Nội (UTC+7): the tests' "now"
NOW = dt.datetime(2026, 11, 25, 1, 0)
TODAY = dt.date(2026, 11, 25)


def utc(day: dt.date, hhmm: str) -> str:
    """The ISO UTC time of a Hà Nội local time (UTC+7)."""
    hours, minutes = map(int, hhmm.split(":"))
    local = dt.datetime.combine(day, dt.time(hours, minutes))
    return (local - dt.timedelta(hours=7)).isoformat() + "Z"


class World:
    """School: class 3A (homeroom ``teacher``, subject ``subject_teacher``) with ``s1`` (guardian
    ``g1``) and ``s2`` (guardian ``g2``); class 3B (homeroom ``other_teacher``) with ``s3``
    (guardian ``g3``); ``admin`` and ``cafeteria``. Another school with its own admin and student."""

    def __init__(self, make):
        self.make = make
        self.school = make.school()
        self.teacher = self.staff("teacher", "Cô Lan")
        self.subject_teacher = self.staff("teacher", "Thầy Hùng")
        self.other_teacher = self.staff("teacher", "Cô Hoa")
        self.klass = make.klass(self.school, homeroom=self.teacher, name="3A")
        roster.assign_subject_teacher(self.klass.id, self.subject_teacher.id, "Toán")
        self.klass_b = make.klass(self.school, homeroom=self.other_teacher, name="3B")
        self.s1 = make.student(self.klass, "Nguyễn Minh An")
        self.s2 = make.student(self.klass, "Trần Bảo Ngọc")
        self.s3 = make.student(self.klass_b, "Lê Gia Huy")
        self.g1 = self.guardian(self.s1, "Chị Mai")
        self.g2 = self.guardian(self.s2, "Anh Tuấn")
        self.g3 = self.guardian(self.s3, "Chị Vy")
        self.admin = self.staff("admin", "Hiệu trưởng")
        self.cafeteria = self.staff("cafeteria", "Bếp trưởng")
        self.other_school = make.school("Trường Tiểu học Lê Lợi")
        self.other_admin = self.user("Hiệu trưởng khác")
        roster.add_staff(self.other_school.id, self.other_admin.id, "admin")
        other_teacher = self.user("Thầy Nam")
        roster.add_staff(self.other_school.id, other_teacher.id, "teacher")
        other_class = make.klass(self.other_school, homeroom=other_teacher, name="1A")
        self.stranger = make.student(other_class, "Phạm Văn Xa")
        self._headers = {}

    def user(self, name):
        return roster.ensure_user(self.make.phone(), name)

    def staff(self, role, name):
        user = self.user(name)
        roster.add_staff(self.school.id, user.id, role)
        return user

    def guardian(self, student, name):
        user = self.user(name)
        roster.link_guardian(student.id, user.id, "mother")
        return user

    def h(self, user) -> dict:
        if user.id not in self._headers:
            self._headers[user.id] = self.make.headers(user)
        return self._headers[user.id]


@pytest.fixture
def world(app, make):
    app.extensions["lienlac.clock"] = lambda: NOW
    return World(make)


def notices(user, category="attendance") -> list[Notification]:
    """The user's inbox rows of a category, oldest first."""
    return list(Notification.select().where((Notification.user == user.id) & (Notification.category == category))
                .order_by(Notification.id))


def post_day(client, world, user, records, day=TODAY, klass=None):
    """``records``: (student, status) or (student, status, note)."""
    body = {"date": day.isoformat(), "records": []}
    for student, status, *note in records:
        body["records"].append({"student_id": str(student.id), "status": status, **({"note": note[0]} if note else {})})
    return client.post(f"{API}/classes/{(klass or world.klass).id}/attendance", json=body, headers=world.h(user))


def new_device(client, world, name="Cổng chính", school=None, admin=None):
    r = client.post(f"{API}/schools/{(school or world.school).id}/gate-devices", json={"name": name},
                    headers=world.h(admin or world.admin))
    assert r.status_code == 201, r.json
    return r.json


def checkin(client, key, *events):
    """``events``: (event_id, student, "HH:MM", direction[, day])."""
    body = {"events": [{"event_id": e[0], "student_id": str(e[1].id), "at": utc(e[4] if len(e) > 4 else TODAY, e[2]),
                        "direction": e[3]} for e in events]}
    return client.post(f"{API}/checkins", json=body, headers={"X-Device-Key": key})
