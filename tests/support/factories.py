"""The one user and roster factory for tests: real rows through the roster's own (trusted) functions.

``make`` (tests/conftest.py) is ``Factory(app)``: users get a password (they can sign in with it).
``Factory(app, password=None)`` makes password-less users, much faster (argon2 costs ~0.3 s a
user under load) for tests that only use tokens; ``make.fast()`` is that, also reusing one token
per user (the ``fast`` fixture). A ``phone=`` picks the user's number (the authorization matrix's
world uses its own range).
"""
from __future__ import annotations

import itertools

from service.accounts import logic as accounts
from service.roster import logic as roster

_seq = itertools.count(1)
DEFAULT_PASSWORD = "mat-khau-123"
_DEFAULT = object()


class Factory:
    def __init__(self, app, password: str | None = DEFAULT_PASSWORD, reuse_tokens: bool = False):
        self.app = app
        self.password = password
        self.reuse_tokens = reuse_tokens
        self._headers: dict[int, dict] = {}

    def fast(self) -> "Factory":
        """The same factory, for users without a password and one token per user."""
        return Factory(self.app, password=None, reuse_tokens=True)

    def phone(self) -> str:
        return f"+8491{next(_seq):07d}"

    def user(self, name="Người dùng", password=_DEFAULT, phone: str | None = None):
        password = self.password if password is _DEFAULT else password
        return roster.ensure_user(phone or self.phone(), name, password)

    def school(self, name="Trường Tiểu học Kim Đồng", code: str | None = None):
        return roster.create_school(name, code=code)

    def staff(self, school, role="teacher", name=None, user=None):
        """A new user (or ``user``) given ``role`` in ``school``."""
        user = user or self.user(name or f"{role} {next(_seq)}")
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

    def guardian(self, *students, relationship="mother", name=None, user=None):
        """A new user (or ``user``) linked as guardian of ``students``."""
        user = user or self.user(name or f"Phụ huynh {next(_seq)}")
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
        if not self.reuse_tokens:
            return {"Authorization": f"Bearer {self.token(user)}"}
        if user.id not in self._headers:
            self._headers[user.id] = {"Authorization": f"Bearer {self.token(user)}"}
        return self._headers[user.id]
