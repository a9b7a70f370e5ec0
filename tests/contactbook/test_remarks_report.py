"""Remarks, the term report, and the terms a family reads."""
from __future__ import annotations

import datetime as dt

import pytest

from contactbook.logic.remarks import remarks_for_day
from contactbook.models import Remark

from .grades_support import API, grade_subject, headers, inbox, publish, setup_school


@pytest.fixture
def s(app):
    return setup_school(app)


def post_remark(client, user, student, body, date=None):
    payload = {"body": body}
    if date:
        payload["date"] = date
    return client.post(f"{API}/students/{student.id}/remarks", json=payload, headers=headers(user))


def test_teachers_write_remarks_guardians_read_them_and_are_told(client, s):
    a = s.students[0]
    resp = post_remark(client, s.math, a, "Em làm bài tập về nhà đầy đủ, cần cẩn thận hơn khi tính toán.", "2026-11-20")
    assert resp.status_code == 201, resp.get_json()
    remark = resp.get_json()
    assert remark["author_id"] == str(s.math.id) and remark["author_name"] == "Thầy Minh"
    assert remark["date"] == "2026-11-20" and remark["body"].startswith("Em làm bài")
    assert post_remark(client, s.homeroom, a, "Hôm nay em phát biểu tốt.", "2026-11-21").status_code == 201
    assert post_remark(client, s.admin, a, "Khen thưởng tháng 11.", "2026-12-01").status_code == 201

    notices = inbox(client, s.guardians[0])
    assert len(notices) == 3 and notices[0]["data"]["type"] == "remark"
    assert inbox(client, s.guardians[1]) == []

    page = client.get(f"{API}/students/{a.id}/remarks", headers=headers(s.guardians[0])).get_json()
    assert [r["date"] for r in page["items"]] == ["2026-12-01", "2026-11-21", "2026-11-20"]  # newest first
    page = client.get(f"{API}/students/{a.id}/remarks?from=2026-11-21&to=2026-11-30",
                      headers=headers(s.guardians[0])).get_json()
    assert [r["body"] for r in page["items"]] == ["Hôm nay em phát biểu tốt."]
    page = client.get(f"{API}/students/{a.id}/remarks?limit=2", headers=headers(s.lit)).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(f"{API}/students/{a.id}/remarks?limit=2&cursor={page['next_cursor']}",
                      headers=headers(s.lit)).get_json()
    assert [r["date"] for r in rest["items"]] == ["2026-11-20"] and rest["next_cursor"] is None

    day = remarks_for_day(a.id, dt.date(2026, 11, 21))
    assert [(r["body"], r["author_name"]) for r in day] == [("Hôm nay em phát biểu tốt.", "Cô Lan")]
    assert remarks_for_day(a.id, dt.date(2026, 11, 22)) == []


def test_who_may_write_and_read_remarks(client, s):
    a = s.students[0]
    for user, status in ((s.guardians[0], 403), (s.cafeteria, 403), (s.other_teacher, 404), (s.outsider_guardian, 404),
                         (s.other_admin, 404)):
        assert post_remark(client, user, a, "…").status_code == status, user.name
    assert client.get(f"{API}/students/{a.id}/remarks", headers=headers(s.cafeteria)).status_code == 403
    for body in ("", "   ", "x" * 4001):
        assert post_remark(client, s.homeroom, a, body).status_code == 422
    assert post_remark(client, s.homeroom, a, "ok", "2026-13-01").status_code == 422
    assert Remark.select().count() == 0
    assert post_remark(client, s.homeroom, a, "Không ngày").get_json()["date"]  # today in the school's zone


def test_term_report(client, s):
    a = s.students[0]
    grade_subject(client, s.math, s.klass.id, s.term1.id, "Toán", {a.id: ([9, 8], 7, 8)})  # (9+8+2·7+3·8)/7 = 55/7 = 7.86 → 7.9
    grade_subject(client, s.lit, s.klass.id, s.term1.id, "Ngữ văn", {a.id: ([6, 7], 5, 6)})  # (6+7+2·5+3·6)/7 = 41/7 = 5.86 → 5.9
    publish(client, s.math, s.klass.id, s.term1.id, "Toán")
    post_remark(client, s.homeroom, a, "Giữa kỳ I: tiến bộ.", "2026-11-10")
    post_remark(client, s.homeroom, a, "Học kỳ II: cố gắng.", "2027-02-10")

    staff = client.get(f"{API}/students/{a.id}/report?term_id={s.term1.id}", headers=headers(s.homeroom)).get_json()
    assert staff["term"]["name"] == "Học kỳ I" and staff["student_name"] == "Nguyễn Văn An"
    assert staff["subjects"] == [{"subject": "Ngữ văn", "assessment": "score", "average": 5.9},
                                 {"subject": "Toán", "assessment": "score", "average": 7.9}]
    assert staff["result"] == "Chưa đạt"  # two subjects: fewer than six at 5.0 or more
    assert [r["body"] for r in staff["remarks"]] == ["Giữa kỳ I: tiến bộ."]
    assert set(staff["attendance"]) == {"present", "late", "absent_excused", "absent_unexcused", "available"}

    family = client.get(f"{API}/students/{a.id}/report?term_id={s.term1.id}", headers=headers(s.guardians[0])).get_json()
    assert family["subjects"] == [{"subject": "Toán", "assessment": "score", "average": 7.9}]  # no draft
    assert family["result"] is None
    assert client.get(f"{API}/students/{a.id}/report", headers=headers(s.admin)).status_code == 422


def test_terms_and_years_name_the_terms_for_the_school_only(client, s):
    resp = client.get(f"{API}/terms/{s.term2.id}", headers=headers(s.guardians[0]))
    assert resp.status_code == 200
    assert resp.get_json() == {"id": str(s.term2.id), "school_year_id": str(s.year.id), "name": "Học kỳ II",
                               "starts_on": "2027-01-18", "ends_on": "2027-05-31"}
    assert client.get(f"{API}/terms/{s.term1.id}", headers=headers(s.cafeteria)).status_code == 200
    assert client.get(f"{API}/terms/{s.term1.id}", headers=headers(s.other_admin)).status_code == 404
    assert client.get(f"{API}/terms/999999", headers=headers(s.guardians[0])).status_code == 404
    years = client.get(f"{API}/schools/{s.school.id}/years", headers=headers(s.guardians[0])).get_json()["items"]
    assert [t["name"] for t in years[0]["terms"]] == ["Học kỳ I", "Học kỳ II"]
