"""Nutrition fixtures: a school with cafeteria staff, two classes and families; users sign in by token."""
from __future__ import annotations

import datetime as dt

import pytest

from service.roster import logic as roster


@pytest.fixture
def make(app):
    """The shared factories, but users without a password (argon2 costs ~0.3 s a user here)."""
    from tests.support import factories

    class Factory(factories.Factory):
        def user(self, name="Người dùng", password=None):
            return roster.ensure_user(self.phone(), name, password)

    return Factory(app)


@pytest.fixture
def world(make):
    school = make.school("Trường Mầm non Hoa Sen")
    cafeteria = make.staff(school, "cafeteria", "Cô nuôi Lan")
    admin = make.admin(school)
    teacher = make.teacher(school)
    klass = make.klass(school, homeroom=teacher, name="Lá 1")
    other_teacher = make.teacher(school)
    other_class = make.klass(school, homeroom=other_teacher, name="Lá 2")
    # the week after this one, Monday (the alerts go out "before the day": these days are ahead)
    today = roster.school_today(school.id)
    monday = today + dt.timedelta(days=7 - today.weekday())
    # four years old on that Monday: the 3-5 age group
    anh = roster.create_student(school.id, "Nguyễn Minh Anh", class_id=klass.id,
                                birth_date=monday.replace(year=monday.year - 4) - dt.timedelta(days=1))
    binh = make.student(klass, "Trần Bình")
    chi = make.student(other_class, "Lê Chi")
    mother = make.guardian(anh, name="Mẹ Minh Anh")
    binh_parent = make.guardian(binh, name="Bố Bình")
    chi_parent = make.guardian(chi, name="Mẹ Chi")
    other_school = make.school("Trường Tiểu học Kim Đồng")
    other_cafeteria = make.staff(other_school, "cafeteria")
    return dict(school=school, cafeteria=cafeteria, admin=admin, teacher=teacher, klass=klass,
                other_teacher=other_teacher, other_class=other_class, anh=anh, binh=binh, chi=chi,
                mother=mother, binh_parent=binh_parent, chi_parent=chi_parent, other_school=other_school,
                other_cafeteria=other_cafeteria, monday=monday)
