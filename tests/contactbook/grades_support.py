"""A school set up for grading: terms I and II, a class with its teachers, two families, outsiders."""
from __future__ import annotations

import datetime as dt
import types

from service.accounts import logic as accounts
from service.roster import logic as roster

from ..support import factories

API = "/api/v1"


class Factory(factories.Factory):
    """Users without a password (argon2 costs ~0.3 s a user; these tests sign in with tokens)."""

    def user(self, name="Người dùng", password=None):
        return roster.ensure_user(self.phone(), name, password)


def setup_school(app):
    make = Factory(app)
    school = make.school("Trường THCS Nguyễn Du")
    year = roster.create_school_year(school.id, "2026-2027", dt.date(2026, 9, 5), dt.date(2027, 5, 31))
    term1 = roster.create_term(year.id, "Học kỳ I", dt.date(2026, 9, 5), dt.date(2027, 1, 15))
    term2 = roster.create_term(year.id, "Học kỳ II", dt.date(2027, 1, 18), dt.date(2027, 5, 31))
    homeroom = make.teacher(school, "Cô Lan")
    klass = make.klass(school, homeroom=homeroom, name="6A1", grade=6)
    math = make.teacher(school, "Thầy Minh")
    lit = make.teacher(school, "Cô Hoa")
    roster.assign_subject_teacher(klass.id, math.id, "Toán")
    roster.assign_subject_teacher(klass.id, lit.id, "Ngữ văn")
    students = [make.student(klass, "Nguyễn Văn An"), make.student(klass, "Trần Thị Bình")]
    guardians = [make.guardian(students[0]), make.guardian(students[1])]
    other_class = make.klass(school, name="6A2", grade=6)
    outsider_student = make.student(other_class, "Lê Văn Cường")
    outsider_guardian = make.guardian(outsider_student)
    other_teacher = make.teacher(school, "Thầy Hùng")
    roster.assign_subject_teacher(other_class.id, other_teacher.id, "Toán")
    other_school = make.school("Trường khác")
    return types.SimpleNamespace(
        make=make, school=school, year=year, term1=term1, term2=term2, klass=klass, homeroom=homeroom, math=math,
        lit=lit, students=students, guardians=guardians, admin=make.admin(school),
        cafeteria=make.staff(school, "cafeteria"), other_class=other_class, outsider_student=outsider_student,
        outsider_guardian=outsider_guardian, other_teacher=other_teacher, other_admin=make.admin(other_school))


def headers(user) -> dict:
    return {"Authorization": f"Bearer {accounts.start_session(user)['access_token']}"}


def put_grades(client, user, class_id, term_id, subject, kind, scores, slot=None):
    body = {"term_id": str(term_id), "subject": subject, "kind": kind,
            "scores": [{"student_id": str(s), "score": v} for s, v in scores]}
    if slot is not None:
        body["slot"] = slot
    return client.put(f"{API}/classes/{class_id}/grades", json=body, headers=headers(user))


def grade_subject(client, user, class_id, term_id, subject, student_values):
    """Enter a whole subject: ``student_values = {student_id: (regular list, midterm, final)}``."""
    slots = max(len(r) for r, _, _ in student_values.values())
    for slot in range(1, slots + 1):
        scores = [(s, r[slot - 1]) for s, (r, _, _) in student_values.items() if len(r) >= slot]
        resp = put_grades(client, user, class_id, term_id, subject, "regular", scores, slot=slot)
        assert resp.status_code == 200, resp.get_json()
    for kind, index in (("midterm", 1), ("final", 2)):
        resp = put_grades(client, user, class_id, term_id, subject, kind,
                          [(s, v[index]) for s, v in student_values.items()])
        assert resp.status_code == 200, resp.get_json()


def publish(client, user, class_id, term_id, subject):
    return client.post(f"{API}/classes/{class_id}/grades/publish", json={"term_id": str(term_id), "subject": subject},
                       headers=headers(user))


def inbox(client, user, category="grade") -> list[dict]:
    items = client.get(f"{API}/notifications", headers=headers(user)).get_json()["items"]
    return [n for n in items if n["category"] == category]
