"""Grades over HTTP: drafts never reach guardians, publishing tells them once, later changes are
audited; only a subject's teacher (or an admin) grades it; bad scores store nothing."""
from __future__ import annotations

import pytest

from contactbook.models import Grade, GradeChange

from .grades_support import API, grade_subject, headers, inbox, publish, put_grades, setup_school


@pytest.fixture
def s(app):
    return setup_school(app)


def grades_of(client, user, student, term=None, year=None):
    query = f"term_id={term.id}" if term else f"year_id={year.id}"
    return client.get(f"{API}/students/{student.id}/grades?{query}", headers=headers(user))


def test_drafts_never_reach_guardians_published_grades_do_once(client, s):
    a, b = s.students
    grade_subject(client, s.math, s.klass.id, s.term1.id, "Toán",
                  {a.id: ([8, 8, 8], 9, 8), b.id: ([7, "6.5", 9.5], "5.5", 10)})

    # a draft: the teacher sees it with its average; the guardian sees nothing and hears nothing
    staff_view = grades_of(client, s.math, a, term=s.term1).get_json()
    toan = staff_view["subjects"][0]
    assert toan == {"subject": "Toán", "assessment": "score", "regular": [8.0, 8.0, 8.0], "midterm": 9.0,
                    "final": 8.0, "average": 8.3}  # 66 / 8 = 8.25 → 8.3 (half up)
    guardian_view = grades_of(client, s.guardians[0], a, term=s.term1)
    assert guardian_view.status_code == 200
    assert guardian_view.get_json() == {"term_id": str(s.term1.id), "student_id": str(a.id), "subjects": [],
                                        "result": None}
    assert inbox(client, s.guardians[0]) == []

    book = client.get(f"{API}/classes/{s.klass.id}/grades?term_id={s.term1.id}&subject=Toán",
                      headers=headers(s.math)).get_json()
    assert book["published_at"] is None and book["regular_slots"] == 4 and book["assessment"] == "score"
    assert [(x["name"], x["average"]) for x in book["students"]] == [("Nguyễn Văn An", 8.3), ("Trần Thị Bình", 8.0)]

    resp = publish(client, s.math, s.klass.id, s.term1.id, "Toán")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["newly_published"] is True and resp.get_json()["guardians_notified"] == 2
    view = grades_of(client, s.guardians[0], a, term=s.term1).get_json()
    assert view["subjects"] == [toan]
    # (7 + 6.5 + 9.5 + 2·5.5 + 3·10) / 8 = 64 / 8 = 8.0
    assert grades_of(client, s.guardians[1], b, term=s.term1).get_json()["subjects"][0]["average"] == 8.0
    notices = inbox(client, s.guardians[0])
    assert len(notices) == 1 and "Toán" in notices[0]["title"] and notices[0]["data"]["type"] == "grades"

    # publishing again tells nobody again
    again = publish(client, s.math, s.klass.id, s.term1.id, "Toán").get_json()
    assert again["newly_published"] is False and again["guardians_notified"] == 0
    assert len(inbox(client, s.guardians[0])) == 1

    # a draft of another subject stays hidden from guardians while Toán shows
    grade_subject(client, s.lit, s.klass.id, s.term1.id, "Ngữ văn", {a.id: ([5, 5], 5, 5)})
    assert [x["subject"] for x in grades_of(client, s.guardians[0], a, term=s.term1).get_json()["subjects"]] == ["Toán"]
    assert {x["subject"] for x in grades_of(client, s.homeroom, a, term=s.term1).get_json()["subjects"]} == {
        "Toán", "Ngữ văn"}


def test_a_change_after_publishing_is_audited_and_the_family_told(client, s):
    a, b = s.students
    grade_subject(client, s.math, s.klass.id, s.term1.id, "Toán", {a.id: ([8, 8], 8, 8), b.id: ([6, 6], 6, 6)})
    # a correction before publishing is not audited
    assert put_grades(client, s.math, s.klass.id, s.term1.id, "Toán", "final", [(a.id, 7)]).status_code == 200
    assert GradeChange.select().count() == 0
    publish(client, s.math, s.klass.id, s.term1.id, "Toán")
    before = [len(inbox(client, g)) for g in s.guardians]

    resp = put_grades(client, s.admin, s.klass.id, s.term1.id, "Toán", "final", [(a.id, "9.5"), (b.id, 6)])
    assert resp.status_code == 200 and resp.get_json()["published"] is True
    changes = client.get(f"{API}/classes/{s.klass.id}/grades/changes?term_id={s.term1.id}&subject=Toán",
                         headers=headers(s.math)).get_json()["items"]
    assert len(changes) == 1  # b's score did not change
    assert {k: changes[0][k] for k in ("student_id", "kind", "old", "new", "changed_by")} == {
        "student_id": str(a.id), "kind": "final", "old": "7.0", "new": "9.5", "changed_by": str(s.admin.id)}
    assert changes[0]["changed_at"].endswith("Z")
    assert [len(inbox(client, g)) for g in s.guardians] == [before[0] + 1, before[1]]
    assert grades_of(client, s.guardians[0], a, term=s.term1).get_json()["subjects"][0]["final"] == 9.5
    # the guardians do not read the audit
    assert client.get(f"{API}/classes/{s.klass.id}/grades/changes?term_id={s.term1.id}&subject=Toán",
                      headers=headers(s.guardians[0])).status_code == 404


def test_only_the_subject_teacher_or_an_admin_grades(client, s):
    a = s.students[0]
    cases = [(s.lit, 403), (s.homeroom, 403), (s.cafeteria, 403), (s.other_teacher, 404), (s.other_admin, 404),
             (s.guardians[0], 404), (s.outsider_guardian, 404)]
    for user, status in cases:
        resp = put_grades(client, user, s.klass.id, s.term1.id, "Toán", "midterm", [(a.id, 9)])
        assert resp.status_code == status, (user.name, resp.get_json())
        assert resp.get_json()["error"]["code"] == ("forbidden" if status == 403 else "not_found")
        assert publish(client, user, s.klass.id, s.term1.id, "Toán").status_code == status
    # the math teacher of another class cannot grade this class's Toán; this one's cannot grade Ngữ văn
    assert put_grades(client, s.math, s.klass.id, s.term1.id, "Ngữ văn", "midterm", [(a.id, 9)]).status_code == 403
    assert Grade.select().count() == 0
    assert put_grades(client, s.math, s.klass.id, s.term1.id, "toán", "midterm", [(a.id, 9)]).status_code == 200
    assert put_grades(client, s.admin, s.klass.id, s.term1.id, "Tin học", "midterm", [(a.id, 9)]).status_code == 200
    assert sorted(g.subject for g in Grade.select()) == ["Tin học", "Toán"]  # the class's spelling is kept
    # guardians and other families do not read a class's grade book
    url = f"{API}/classes/{s.klass.id}/grades?term_id={s.term1.id}&subject=Toán"
    assert client.get(url, headers=headers(s.guardians[0])).status_code == 404
    assert client.get(url, headers=headers(s.lit)).status_code == 200


@pytest.mark.parametrize("scores, field", [
    ([8.5, 10.5], "scores.1.score"), ([8.5, -1], "scores.1.score"), ([8.25, 7], "scores.0.score"),
    (["7.05", 7], "scores.0.score"), ([True, 7], "scores.0.score"), (["tám", 7], "scores.0.score"),
    ([None, 7], "scores.0.score")])
def test_bad_scores_answer_422_and_store_nothing(client, s, scores, field):
    a, b = s.students
    resp = put_grades(client, s.math, s.klass.id, s.term1.id, "Toán", "regular", list(zip((a.id, b.id), scores)), slot=1)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "validation_error"
    assert field in resp.get_json()["error"]["fields"]
    assert Grade.select().count() == 0


def test_wrong_students_slots_and_terms_answer_422(client, s):
    a = s.students[0]
    bad = [
        (dict(scores=[(a.id, 8), (s.outsider_student.id, 8)], kind="regular", slot=1), "scores.1.student_id"),
        (dict(scores=[(a.id, 8), (a.id, 9)], kind="regular", slot=1), "scores.1.student_id"),
        (dict(scores=[(a.id, 8)], kind="regular", slot=5), "slot"),
        (dict(scores=[(a.id, 8)], kind="regular"), "slot"),
        (dict(scores=[(a.id, 8)], kind="midterm", slot=2), "slot"),
        (dict(scores=[(a.id, 8)], kind="weekly", slot=1), "kind"),
    ]
    for args, field in bad:
        resp = put_grades(client, s.math, s.klass.id, s.term1.id, "Toán", **args)
        assert resp.status_code == 422, args
        assert field in resp.get_json()["error"]["fields"], (args, resp.get_json())
    other_year = s.make.school()
    from service.roster import logic as roster
    import datetime as dt
    foreign_year = roster.create_school_year(other_year.id, "x", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
    foreign_term = roster.create_term(foreign_year.id, "HK I", dt.date(2026, 9, 1), dt.date(2027, 1, 1))
    resp = put_grades(client, s.math, s.klass.id, foreign_term.id, "Toán", "midterm", [(a.id, 8)])
    assert resp.status_code == 422 and "term_id" in resp.get_json()["error"]["fields"]
    assert Grade.select().count() == 0

    # 35 periods a year: two regular assessments a term, so slot 3 is refused
    resp = client.put(f"{API}/classes/{s.klass.id}/grade-subjects", json={"subject": "Toán", "yearly_periods": 35},
                      headers=headers(s.admin))
    assert resp.status_code == 200
    assert resp.get_json() == {"subject": "Toán", "assessment": "score", "yearly_periods": 35, "regular_slots": 2,
                               "regular_required": 2}
    assert put_grades(client, s.math, s.klass.id, s.term1.id, "Toán", "regular", [(a.id, 8)], slot=3).status_code == 422
    assert put_grades(client, s.math, s.klass.id, s.term1.id, "Toán", "regular", [(a.id, 8)], slot=2).status_code == 200
    assert client.put(f"{API}/classes/{s.klass.id}/grade-subjects", json={"subject": "Toán", "yearly_periods": 140},
                      headers=headers(s.math)).status_code == 403


def test_comment_subjects_take_d_or_cd(client, s):
    a = s.students[0]
    assert put_grades(client, s.admin, s.klass.id, s.term1.id, "Âm nhạc", "regular", [(a.id, 8)], slot=1).status_code == 422
    assert put_grades(client, s.admin, s.klass.id, s.term1.id, "Âm nhạc", "regular", [(a.id, "Đ")], slot=1).status_code == 200
    subjects = client.get(f"{API}/classes/{s.klass.id}/grade-subjects", headers=headers(s.homeroom)).get_json()["items"]
    assert {x["subject"]: x["assessment"] for x in subjects} == {"Toán": "score", "Ngữ văn": "score"}
    assert client.get(f"{API}/classes/{s.klass.id}/grade-subjects", headers=headers(s.guardians[0])).status_code == 404


SCORED = ("Toán", "Ngữ văn", "Tiếng Anh", "Lịch sử và Địa lí", "Khoa học tự nhiên", "Tin học")


def test_term_results_and_the_year_average_by_hand(client, s):
    """Hand-worked: term I Toán (8+8+8+2·9+3·8)/8 = 8.25 → 8.3, others 8.0 → Tốt (six ≥ 8.0);
    term II Toán 7.0, others 9.0 → Khá (five ≥ 8.0); year Toán (8.3 + 2·7.0)/3 = 7.43 → 7.4,
    others (8.0 + 18.0)/3 = 8.67 → 8.7 → Khá. Âm nhạc Đ in both terms."""
    a = s.students[0]
    plan = {s.term1: {"Toán": ([8, 8, 8], 9, 8), **{x: ([8, 8], 8, 8) for x in SCORED[1:]}, "Âm nhạc": (["Đ", "Đ"], "Đ", "Đ")},
            s.term2: {"Toán": ([7, 7], 7, 7), **{x: ([9, 9], 9, 9) for x in SCORED[1:]}, "Âm nhạc": (["Đ", "Đ"], "Đ", "Đ")}}
    for term, subjects in plan.items():
        for subject, values in subjects.items():
            grade_subject(client, s.admin, s.klass.id, term.id, subject, {a.id: values})

    staff = grades_of(client, s.homeroom, a, term=s.term1).get_json()
    assert staff["result"] == "Tốt"
    assert {x["subject"]: x["average"] for x in staff["subjects"]} == {"Toán": 8.3, "Âm nhạc": "Đ",
                                                                      **{x: 8.0 for x in SCORED[1:]}}
    # guardians: nothing until published, and no result until every subject is
    assert grades_of(client, s.guardians[0], a, term=s.term1).get_json()["result"] is None
    for term in plan:
        for subject in plan[term]:
            if subject != "Âm nhạc":
                assert publish(client, s.admin, s.klass.id, term.id, subject).status_code == 200
    partial = grades_of(client, s.guardians[0], a, term=s.term1).get_json()
    assert len(partial["subjects"]) == 6 and partial["result"] is None
    for term in plan:
        publish(client, s.admin, s.klass.id, term.id, "Âm nhạc")
    assert grades_of(client, s.guardians[0], a, term=s.term1).get_json()["result"] == "Tốt"
    assert grades_of(client, s.guardians[0], a, term=s.term2).get_json()["result"] == "Khá"

    year = grades_of(client, s.guardians[0], a, year=s.year).get_json()
    assert year["term_ids"] == [str(s.term1.id), str(s.term2.id)]
    by_subject = {x["subject"]: x for x in year["subjects"]}
    assert by_subject["Toán"] == {"subject": "Toán", "assessment": "score", "term1": 8.3, "term2": 7.0, "average": 7.4}
    assert {x: by_subject[x]["average"] for x in SCORED[1:]} == {x: 8.7 for x in SCORED[1:]}
    assert by_subject["Âm nhạc"]["average"] == "Đ"
    assert year["result"] == "Khá"


def test_other_families_get_404(client, s):
    a = s.students[0]
    for url in (f"/students/{a.id}/grades?term_id={s.term1.id}", f"/students/{a.id}/grades?year_id={s.year.id}",
                f"/students/{a.id}/report?term_id={s.term1.id}", f"/students/{a.id}/remarks"):
        for user in (s.outsider_guardian, s.guardians[1], s.other_teacher, s.other_admin):
            assert client.get(API + url, headers=headers(user)).status_code == 404, (url, user.name)
    assert client.get(f"{API}/students/{a.id}/grades?term_id={s.term1.id}", headers=headers(s.cafeteria)).status_code == 403
    both = client.get(f"{API}/students/{a.id}/grades?term_id={s.term1.id}&year_id={s.year.id}", headers=headers(s.admin))
    assert both.status_code == 422
    foreign = client.get(f"{API}/students/{a.id}/grades?term_id=999999", headers=headers(s.admin))
    assert foreign.status_code == 404


def test_access_follows_the_roster_live(client, s):
    a = s.students[0]
    grade_subject(client, s.math, s.klass.id, s.term1.id, "Toán", {a.id: ([8, 8], 8, 8)})
    publish(client, s.math, s.klass.id, s.term1.id, "Toán")
    url = f"{API}/students/{a.id}/grades?term_id={s.term1.id}"
    assert client.get(url, headers=headers(s.guardians[0])).status_code == 200
    from service.roster import logic as roster

    roster.unlink_guardian(a.id, s.guardians[0].id)
    assert client.get(url, headers=headers(s.guardians[0])).status_code == 404
    roster.remove_subject_teacher(s.klass.id, s.math.id, "Toán")
    assert put_grades(client, s.math, s.klass.id, s.term1.id, "Toán", "final", [(a.id, 9)]).status_code == 404
    assert Grade.get(Grade.kind == "final").score == 8
