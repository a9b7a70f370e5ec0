"""Roster factories for tests: real rows through the roster's own functions."""
from __future__ import annotations

import itertools

from service.accounts import logic as accounts
from service.roster import logic as roster

_seq = itertools.count(1)


class Factory:
    def __init__(self, app):
        self.app = app

    def phone(self) -> str:
        return f"+8491{next(_seq):07d}"

    def user(self, name="Người dùng", password="mat-khau-123"):
        return roster.ensure_user(self.phone(), name, password)

    def school(self, name="Trường Tiểu học Kim Đồng"):
        return roster.create_school(name)

    def staff(self, school, role="teacher", name=None):
        user = self.user(name or f"{role} {next(_seq)}")
        roster.add_staff(school.id, user.id, role)
        return user

    def teacher(self, school, name=None):
        return self.staff(school, "teacher", name or f"Cô giáo {next(_seq)}")

    def admin(self, school):
        return self.staff(school, "admin", "Hiệu trưởng")

    def klass(self, school, homeroom=None, name=None, grade=1):
        homeroom = homeroom or self.teacher(school)
        return roster.create_class(school.id, name or f"{grade}A{next(_seq)}", grade=grade,
                                   homeroom_teacher_id=homeroom.id)

    def student(self, klass, name=None):
        return roster.create_student(klass.school_id, name or f"Học sinh {next(_seq)}", class_id=klass.id)

    def guardian(self, *students, relationship="mother", name=None):
        user = self.user(name or f"Phụ huynh {next(_seq)}")
        for student in students:
            roster.link_guardian(student.id, user.id, relationship)
        return user

    def family(self, school=None):
        """A school, a class with its homeroom teacher, a student and the student's guardian."""
        school = school or self.school()
        teacher = self.teacher(school)
        klass = self.klass(school, homeroom=teacher)
        student = self.student(klass)
        guardian = self.guardian(student)
        return {"school": school, "teacher": teacher, "klass": klass, "student": student, "guardian": guardian}

    def token(self, user) -> str:
        return accounts.start_session(user)["access_token"]

    def headers(self, user) -> dict:
        return {"Authorization": f"Bearer {self.token(user)}"}
