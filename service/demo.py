"""``lienlac seed-demo``: one school with classes, staff, students and guardians.

Passwords are generated per run; the JSON printed is the shape API.md fixes.
"""
from __future__ import annotations

import datetime as dt
import secrets
from zoneinfo import ZoneInfo

from .roster import logic as roster
from .db import write_transaction

TIMEZONE = "Asia/Ho_Chi_Minh"

FIRST = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Khánh", "Lan", "Linh",
         "Minh", "Nam", "Ngọc", "Phúc", "Quân", "Thảo", "Trang", "Tuấn", "Vy"]
LAST = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Đức", "Thu", "Gia", "Bảo"]


def _name(i: int) -> str:
    return f"{LAST[i % len(LAST)]} {MIDDLE[(i // 3) % len(MIDDLE)]} {FIRST[(i * 7) % len(FIRST)]}"


def _password() -> str:
    return secrets.token_urlsafe(12)


def _free_phone(prefix: str) -> str:
    """A Vietnamese mobile number not taken yet (demo data may be seeded more than once)."""
    from .accounts.models import User

    while True:
        phone = f"+84{prefix}{secrets.randbelow(10**7):07d}"
        if not User.select().where(User.phone == phone).exists():
            return phone


def seed_demo(classes: int = 3, students_per_class: int = 10) -> dict:
    """One more demo school (the database may hold others); returns the JSON ``lienlac seed-demo`` prints.

    The guardian's child is ``student_id``, in ``class_id``, whose homeroom teacher is ``teacher``
    (who also teaches Toán in the other classes). Every account's password is new on every run.
    """
    if classes < 1 or students_per_class < 1:
        raise ValueError("seed-demo needs at least one class and one student per class")
    today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    year_start = dt.date(today.year if today.month >= 8 else today.year - 1, 9, 5)
    year_end = dt.date(year_start.year + 1, 5, 31)
    accounts = {}
    with write_transaction():
        school = roster.create_school("Trường THCS Lê Quý Đôn (demo)", code=f"DEMO{secrets.randbelow(10**6):06d}",
                                      timezone=TIMEZONE)
        year = roster.create_school_year(school.id, f"{year_start.year}-{year_start.year + 1}", year_start, year_end)
        roster.create_term(year.id, "Học kỳ I", year_start, dt.date(year_start.year + 1, 1, 15))
        roster.create_term(year.id, "Học kỳ II", dt.date(year_start.year + 1, 1, 16), year_end)
        people = {"admin": ("Hiệu trưởng Trần Văn Hùng", "90"), "teacher": ("Cô Nguyễn Thị Lan", "91"),
                  "cafeteria": ("Bếp trưởng Lê Thị Hoa", "93"), "guardian": ("Phạm Văn Minh", "98")}
        users = {}
        for role, (name, prefix) in people.items():
            password = _password()
            user = roster.ensure_user(_free_phone(prefix), name, password)
            users[role] = user
            accounts[role] = {"phone": user.phone, "password": password, "user_id": str(user.id)}
            if role != "guardian":
                roster.add_staff(school.id, user.id, role)
        other_teacher = roster.ensure_user(_free_phone("94"), "Thầy Đỗ Minh Quân")
        roster.add_staff(school.id, other_teacher.id, "teacher")
        first_class = None
        n = 0
        for c in range(classes):
            homeroom = users["teacher"] if c == 0 else other_teacher
            klass = roster.create_class(school.id, f"6A{c + 1}", grade=6, homeroom_teacher_id=homeroom.id,
                                        school_year_id=year.id)
            roster.assign_subject_teacher(klass.id, other_teacher.id if c == 0 else users["teacher"].id, "Toán")
            first_class = first_class or klass
            for s in range(students_per_class):
                student = roster.create_student(school.id, _name(n), class_id=klass.id,
                                                birth_date=dt.date(year_start.year - 11, 1 + n % 12, 1 + n % 28))
                n += 1
                if c == 0 and s == 0:
                    roster.link_guardian(student.id, users["guardian"].id, "father")
                    demo_student = student
                else:
                    parent = roster.ensure_user(_free_phone("97"), _name(n + 1000))
                    roster.link_guardian(student.id, parent.id, "mother")
    return {"school_id": str(school.id), "accounts": accounts, "class_id": str(first_class.id),
            "student_id": str(demo_student.id)}
