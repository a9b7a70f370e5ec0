"""Messaging test helpers: a small class with two families, a subject teacher and outsiders."""
from __future__ import annotations

import uuid

import pytest

from service.roster import logic as roster

# The smallest files of each accepted type (checked by content, not by name).
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
VIETNAMESE = "Chào cô ạ! Cháu Minh hôm nay bị sốt 38,5°C nên xin nghỉ học. Cảm ơn cô 🙏😷 — Phụ huynh em Nguyễn Đức Thắng"


class World:
    """One school: class A (homeroom ``teacher``, subject ``subject_teacher``) with students
    ``s1`` (guardian ``g1``) and ``s2`` (guardian ``g2``); class B with ``s3`` (guardian ``g3``,
    teacher ``other_teacher``); ``cafeteria`` and ``admin`` staff."""

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
        self.cafeteria = self.staff("cafeteria", "Bếp trưởng")
        self.admin = self.staff("admin", "Hiệu trưởng")
        self._headers = {}

    # users without a password (tokens come from start_session): no argon2 cost in every test
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
def world(make):
    return World(make)


def cid() -> str:
    return uuid.uuid4().hex
