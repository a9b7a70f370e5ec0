"""The roster administration API: schools, years and terms, staff, classes, students, guardians, invites."""
from __future__ import annotations

import datetime as dt

import pytest

from service.roster import logic as roster
from service.errors import ValidationError as ValidationError_
from service.accounts.models import User
from service.roster.models import ClassTeacher, SchoolClass, StudentGuardian, Term

from ..support.errors import assert_error

API = "/api/v1"


@pytest.fixture
def school(make, fast):
    s = make.school("Trường THCS Nguyễn Du")
    return s, fast.staff(s, "admin", "Hiệu trưởng")


def _ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def test_school_is_read_by_its_members_and_not_created_over_http(client, fast, school, make):
    s, admin = school
    body = _ok(client.get(f"{API}/schools/{s.id}", headers=fast.headers(admin)))
    assert body == {"id": str(s.id), "name": "Trường THCS Nguyễn Du", "code": None, "timezone": "Asia/Ho_Chi_Minh"}
    teacher = fast.staff(s, "teacher")
    klass = make.klass(s, homeroom=teacher)
    guardian = fast.guardian(make.student(klass))
    for user in (teacher, guardian):
        assert _ok(client.get(f"{API}/schools/{s.id}", headers=fast.headers(user)))["id"] == str(s.id)
    stranger = fast.user()
    assert_error(client.get(f"{API}/schools/{s.id}", headers=fast.headers(stranger)), 403)
    # creating schools is an operator task (CLI / import), not an API call
    r = client.post(f"{API}/schools", json={"name": "x"}, headers=fast.headers(admin))
    assert r.status_code in (404, 405) and "error" in r.get_json()


def test_years_and_terms(client, fast, school):
    s, admin = school
    h = fast.headers(admin)
    year = _ok(client.post(f"{API}/schools/{s.id}/years", headers=h,
                           json={"name": "2026-2027", "starts_on": "2026-09-05", "ends_on": "2027-05-31"}), 201)
    assert year == {"id": year["id"], "school_id": str(s.id), "name": "2026-2027", "starts_on": "2026-09-05",
                    "ends_on": "2027-05-31", "terms": []}
    assert_error(client.post(f"{API}/schools/{s.id}/years", headers=h,
                       json={"name": "chồng", "starts_on": "2027-05-01", "ends_on": "2028-05-31"}), 409)
    err = assert_error(client.post(f"{API}/schools/{s.id}/years", headers=h,
                             json={"name": "x", "starts_on": "2028-09-05", "ends_on": "2028-05-31"}), 422)
    assert "ends_on" in err["fields"]
    assert_error(client.post(f"{API}/schools/{s.id}/years", headers=h, json={"name": "x", "starts_on": "hôm qua",
                                                                       "ends_on": "2028-05-31"}), 422)
    terms = f"{API}/years/{year['id']}/terms"
    t1 = _ok(client.post(terms, headers=h, json={"name": "Học kỳ I", "starts_on": "2026-09-05",
                                                 "ends_on": "2027-01-15"}), 201)
    assert t1["school_year_id"] == year["id"] and t1["name"] == "Học kỳ I"
    assert_error(client.post(terms, headers=h, json={"name": "HK", "starts_on": "2027-01-10", "ends_on": "2027-02-01"}), 409)
    assert_error(client.post(terms, headers=h, json={"name": "HK", "starts_on": "2027-01-16", "ends_on": "2027-06-30"}), 422)
    _ok(client.post(terms, headers=h, json={"name": "Học kỳ II", "starts_on": "2027-01-16",
                                            "ends_on": "2027-05-31"}), 201)
    assert Term.select().count() == 2
    page = _ok(client.get(f"{API}/schools/{s.id}/years", headers=h))
    assert page["next_cursor"] is None
    assert [t["name"] for t in page["items"][0]["terms"]] == ["Học kỳ I", "Học kỳ II"]
    assert roster.current_term(s.id, on=dt.date(2027, 3, 1)).name == "Học kỳ II"


def test_staff_created_or_found_by_phone(client, fast, school):
    s, admin = school
    h = fast.headers(admin)
    first = _ok(client.post(f"{API}/schools/{s.id}/staff", headers=h,
                            json={"phone": "0912 345 678", "name": "Cô Nguyễn Thị Lan", "role": "teacher"}), 201)
    assert first == {"user_id": first["user_id"], "school_id": str(s.id), "name": "Cô Nguyễn Thị Lan",
                     "phone": "+84912345678", "role": "teacher"}
    again = _ok(client.post(f"{API}/schools/{s.id}/staff", headers=h,
                            json={"phone": "+84 912 345 678", "name": "Lan", "role": "cafeteria"}), 201)
    assert again["user_id"] == first["user_id"] and again["name"] == "Cô Nguyễn Thị Lan"
    assert_error(client.post(f"{API}/schools/{s.id}/staff", headers=h, json={"phone": "12", "name": "x", "role": "teacher"}),
           422)
    assert_error(client.post(f"{API}/schools/{s.id}/staff", headers=h,
                       json={"phone": "0912345679", "name": "x", "role": "principal"}), 422)
    assert User.select().where(User.phone == "+84912345679").count() == 0
    items = _ok(client.get(f"{API}/schools/{s.id}/staff", headers=h))["items"]
    assert sorted(i["role"] for i in items) == ["admin", "cafeteria", "teacher"]
    teachers = _ok(client.get(f"{API}/schools/{s.id}/staff?role=teacher", headers=h))["items"]
    assert [t["user_id"] for t in teachers] == [first["user_id"]]
    page = _ok(client.get(f"{API}/schools/{s.id}/staff?limit=2", headers=h))
    rest = _ok(client.get(f"{API}/schools/{s.id}/staff?limit=2&cursor={page['next_cursor']}", headers=h))
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    # the new teacher signs in (by OTP) and sees the role
    teacher = roster.get_user(int(first["user_id"]))
    me = _ok(client.get(f"{API}/me", headers=fast.headers(teacher)))
    assert {r["role"] for r in me["roles"]} == {"teacher", "cafeteria"}

    assert client.delete(f"{API}/schools/{s.id}/staff/{first['user_id']}?role=cafeteria", headers=h).status_code == 204
    assert_error(client.delete(f"{API}/schools/{s.id}/staff/{first['user_id']}?role=cafeteria", headers=h), 404)
    assert [r["role"] for r in _ok(client.get(f"{API}/me", headers=fast.headers(teacher)))["roles"]] == ["teacher"]
    # the last admin stays
    assert_error(client.delete(f"{API}/schools/{s.id}/staff/{admin.id}", headers=h), 409)
    assert roster.has_staff_role(admin.id, s.id, ["admin"])


def test_removing_a_teacher_clears_their_classes(client, fast, school, make):
    s, admin = school
    h = fast.headers(admin)
    teacher = fast.staff(s, "teacher")
    klass = make.klass(s, homeroom=teacher)
    other = make.klass(s)
    roster.assign_subject_teacher(other.id, teacher.id, "Toán")
    assert client.delete(f"{API}/schools/{s.id}/staff/{teacher.id}", headers=h).status_code == 204
    assert roster.get_class(klass.id).homeroom_teacher_id is None
    assert ClassTeacher.select().where(ClassTeacher.teacher == teacher.id).count() == 0
    me = _ok(client.get(f"{API}/me", headers=fast.headers(teacher)))
    assert me["roles"] == []
    assert_error(client.get(f"{API}/classes/{other.id}", headers=fast.headers(teacher)), 404)


def test_classes(client, fast, school, make):
    s, admin = school
    h = fast.headers(admin)
    lan = fast.staff(s, "teacher", "Cô Lan")
    quan = fast.staff(s, "teacher", "Thầy Quân")
    guardian = fast.user()
    year = roster.create_school_year(s.id, "2026-2027", dt.date(2026, 9, 5),
                                     dt.date(2027, 5, 31))
    created = _ok(client.post(f"{API}/schools/{s.id}/classes", headers=h,
                              json={"name": " 6A1 ", "grade": 6, "homeroom_teacher_id": str(lan.id),
                                    "school_year_id": str(year.id)}), 201)
    assert created == {"id": created["id"], "school_id": str(s.id), "school_year_id": str(year.id), "name": "6A1",
                       "grade": 6, "homeroom_teacher_id": str(lan.id), "homeroom_teacher_name": "Cô Lan",
                       "teachers": [], "student_count": 0}
    class_id = created["id"]
    before = SchoolClass.select().count()
    for bad in ({"name": "6A2", "homeroom_teacher_id": str(guardian.id)}, {"name": ""}, {"name": "6A2", "grade": 13},
                {"name": "6A2", "homeroom_teacher_id": "abc"}, {"name": "6A2", "surprise": 1},
                {"name": "6A2", "school_year_id": "987654"}):
        assert_error(client.post(f"{API}/schools/{s.id}/classes", headers=h, json=bad), 422)
    assert SchoolClass.select().count() == before
    # the homeroom teacher now sees the class in /me
    me = _ok(client.get(f"{API}/me", headers=fast.headers(lan)))
    assert me["roles"] == [{"role": "teacher", "school_id": str(s.id), "class_ids": [class_id]}]

    with_teacher = _ok(client.post(f"{API}/classes/{class_id}/teachers", headers=h,
                                   json={"teacher_id": str(quan.id), "subject": "Toán"}), 201)
    assert with_teacher["teachers"] == [{"teacher_id": str(quan.id), "name": "Thầy Quân", "subject": "Toán"}]
    _ok(client.post(f"{API}/classes/{class_id}/teachers", headers=h,
                    json={"teacher_id": str(quan.id), "subject": "Vật lý"}), 201)
    assert_error(client.post(f"{API}/classes/{class_id}/teachers", headers=h,
                       json={"teacher_id": str(guardian.id), "subject": "Toán"}), 422)
    assert _ok(client.get(f"{API}/classes/{class_id}", headers=fast.headers(quan)))["name"] == "6A1"

    patched = _ok(client.patch(f"{API}/classes/{class_id}", headers=h,
                               json={"name": "6A1 (chất lượng cao)", "homeroom_teacher_id": str(quan.id)}))
    assert patched["homeroom_teacher_id"] == str(quan.id) and patched["name"] == "6A1 (chất lượng cao)"
    assert patched["grade"] == 6 and patched["school_year_id"] == str(year.id)
    assert_error(client.get(f"{API}/classes/{class_id}", headers=fast.headers(lan)), 404)  # no longer her class
    assert_error(client.patch(f"{API}/classes/{class_id}", headers=h, json={"homeroom_teacher_id": str(guardian.id)}), 422)
    cleared = _ok(client.patch(f"{API}/classes/{class_id}", headers=h, json={"homeroom_teacher_id": None}))
    assert cleared["homeroom_teacher_id"] is None and cleared["homeroom_teacher_name"] is None

    assert client.delete(f"{API}/classes/{class_id}/teachers/{quan.id}?subject=Toán", headers=h).status_code == 204
    left = _ok(client.get(f"{API}/classes/{class_id}", headers=h))["teachers"]
    assert [t["subject"] for t in left] == ["Vật lý"]
    assert client.delete(f"{API}/classes/{class_id}/teachers/{quan.id}", headers=h).status_code == 204
    assert_error(client.delete(f"{API}/classes/{class_id}/teachers/{quan.id}", headers=h), 404)

    make.klass(s, name="7A1", grade=7)
    listed = _ok(client.get(f"{API}/schools/{s.id}/classes", headers=h))["items"]
    assert len(listed) == 2
    sixth = _ok(client.get(f"{API}/schools/{s.id}/classes?grade=6", headers=h))["items"]
    assert [c["id"] for c in sixth] == [class_id]
    by_year = _ok(client.get(f"{API}/schools/{s.id}/classes?school_year_id={year.id}", headers=h))["items"]
    assert [c["id"] for c in by_year] == [class_id]


def test_students_pagination_and_class_moves(client, fast, school, make):
    s, admin = school
    h = fast.headers(admin)
    teacher_a, teacher_b = fast.staff(s, "teacher"), fast.staff(s, "teacher")
    a = make.klass(s, homeroom=teacher_a, name="1A")
    b = make.klass(s, homeroom=teacher_b, name="1B")
    ids = []
    for i in range(5):
        item = _ok(client.post(f"{API}/schools/{s.id}/students", headers=h,
                               json={"name": f"Học sinh Đặng Thị Ánh {i}", "class_id": str(a.id),
                                     "birth_date": "2019-03-0" + str(i + 1)}), 201)
        ids.append(item["id"])
    assert item["class_id"] == str(a.id) and item["birth_date"] == "2019-03-05" and item["guardian_ids"] == []
    _ok(client.post(f"{API}/schools/{s.id}/students", headers=h, json={"name": "Không lớp"}), 201)
    seen, cursor = [], None
    while True:
        page = _ok(client.get(f"{API}/schools/{s.id}/students?class_id={a.id}&limit=2"
                              + (f"&cursor={cursor}" if cursor else ""), headers=h))
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    assert len(_ok(client.get(f"{API}/schools/{s.id}/students", headers=h))["items"]) == 6
    assert_error(client.get(f"{API}/schools/{s.id}/students?cursor=%%%", headers=h), 422)
    assert_error(client.get(f"{API}/schools/{s.id}/students?limit=500", headers=h), 422)

    # national ids are unique
    _ok(client.patch(f"{API}/students/{ids[0]}", headers=h, json={"national_id": "079219000001"}))
    assert_error(client.post(f"{API}/schools/{s.id}/students", headers=h,
                       json={"name": "Trùng", "national_id": "079219000001"}), 409)
    assert_error(client.patch(f"{API}/students/{ids[1]}", headers=h, json={"national_id": "079219000001"}), 409)
    # a class of another school is refused, and nothing changes
    other_class = make.klass(make.school("Trường khác"))
    assert_error(client.patch(f"{API}/students/{ids[1]}", headers=h, json={"class_id": str(other_class.id),
                                                                      "name": "Đổi tên"}), 422)
    assert roster.get_student(int(ids[1])).name == "Học sinh Đặng Thị Ánh 1"
    assert_error(client.post(f"{API}/schools/{s.id}/students", headers=h,
                       json={"name": "x", "class_id": str(other_class.id)}), 422)

    # move a student: the old class's teacher loses sight of them, the new one sees them
    moved = _ok(client.patch(f"{API}/students/{ids[0]}", headers=h, json={"class_id": str(b.id)}))
    assert moved["class_id"] == str(b.id) and moved["national_id"] == "079219000001"
    assert_error(client.get(f"{API}/students/{ids[0]}", headers=fast.headers(teacher_a)), 404)
    assert _ok(client.get(f"{API}/students/{ids[0]}", headers=fast.headers(teacher_b)))["id"] == ids[0]
    roster_b = _ok(client.get(f"{API}/classes/{b.id}/students", headers=fast.headers(teacher_b)))["items"]
    assert [i["id"] for i in roster_b] == [ids[0]]
    assert _ok(client.get(f"{API}/classes/{b.id}", headers=h))["student_count"] == 1
    unassigned = _ok(client.patch(f"{API}/students/{ids[0]}", headers=h, json={"class_id": None}))
    assert unassigned["class_id"] is None


def test_guardians_and_invites(client, fast, school, make):
    s, admin = school
    h = fast.headers(admin)
    homeroom, subject = fast.staff(s, "teacher"), fast.staff(s, "teacher")
    klass = make.klass(s, homeroom=homeroom)
    roster.assign_subject_teacher(klass.id, subject.id, "Tiếng Anh")
    student = make.student(klass, "Võ Gia Bảo")
    mother = _ok(client.post(f"{API}/students/{student.id}/guardians", headers=h,
                             json={"phone": "0987 654 321", "name": "Võ Thị Mẹ", "relationship": "mother"}), 201)
    assert mother == {"user_id": mother["user_id"], "name": "Võ Thị Mẹ", "phone": "+84987654321",
                      "relationship": "mother"}
    assert_error(client.post(f"{API}/students/{student.id}/guardians", headers=h, json={"phone": "x", "name": "y"}), 422)
    assert StudentGuardian.select().count() == 1
    mother_user = roster.get_user(int(mother["user_id"]))
    me = _ok(client.get(f"{API}/me", headers=fast.headers(mother_user)))
    assert [c["id"] for c in me["children"]] == [str(student.id)]

    # an invite code: admin or the homeroom teacher; shown once
    invite = _ok(client.post(f"{API}/students/{student.id}/invites", headers=fast.headers(homeroom),
                             json={"relationship": "father"}), 201)
    assert invite["student_id"] == str(student.id) and invite["expires_at"].endswith("Z")
    assert len(invite["code"]) == 11
    _ok(client.post(f"{API}/students/{student.id}/invites", headers=h), 201)
    assert_error(client.post(f"{API}/students/{student.id}/invites", headers=fast.headers(subject), json={}), 403)
    father = fast.user("Võ Văn Cha")
    claimed = _ok(client.post(f"{API}/guardians/claim", headers=fast.headers(father), json={"code": invite["code"]}))
    assert [c["id"] for c in claimed["children"]] == [str(student.id)]

    # staff see phones; each guardian sees only their own
    listed = _ok(client.get(f"{API}/students/{student.id}/guardians", headers=fast.headers(subject)))["items"]
    assert {(g["name"], g["phone"], g["relationship"]) for g in listed} == {
        ("Võ Thị Mẹ", "+84987654321", "mother"), ("Võ Văn Cha", father.phone, "father")}
    seen_by_father = _ok(client.get(f"{API}/students/{student.id}/guardians", headers=fast.headers(father)))["items"]
    assert {(g["name"], g["phone"]) for g in seen_by_father} == {("Võ Thị Mẹ", None), ("Võ Văn Cha", father.phone)}
    child = _ok(client.get(f"{API}/students/{student.id}", headers=fast.headers(father)))
    assert sorted(child["guardian_ids"]) == sorted([mother["user_id"], str(father.id)])

    assert client.delete(f"{API}/students/{student.id}/guardians/{father.id}", headers=h).status_code == 204
    assert_error(client.get(f"{API}/students/{student.id}", headers=fast.headers(father)), 404)
    assert_error(client.delete(f"{API}/students/{student.id}/guardians/{father.id}", headers=h), 404)


def test_everything_is_documented(app):
    spec = app.extensions["lienlac.api"].spec.to_dict()
    paths = spec["paths"]
    expected = {
        "/api/v1/schools/{school_id}": {"get"}, "/api/v1/schools/{school_id}/years": {"get", "post"},
        "/api/v1/years/{year_id}/terms": {"post"}, "/api/v1/schools/{school_id}/staff": {"get", "post"},
        "/api/v1/schools/{school_id}/staff/{user_id}": {"delete"},
        "/api/v1/schools/{school_id}/classes": {"get", "post"}, "/api/v1/classes/{class_id}": {"get", "patch"},
        "/api/v1/classes/{class_id}/teachers": {"post"}, "/api/v1/classes/{class_id}/teachers/{teacher_id}": {"delete"},
        "/api/v1/classes/{class_id}/students": {"get"}, "/api/v1/schools/{school_id}/students": {"get", "post"},
        "/api/v1/students/{student_id}": {"get", "patch"}, "/api/v1/students/{student_id}/guardians": {"get", "post"},
        "/api/v1/students/{student_id}/guardians/{user_id}": {"delete"},
        "/api/v1/students/{student_id}/invites": {"post"},
    }
    for path, methods in expected.items():
        for method in methods:
            operation = paths[path][method]
            assert operation.get("summary"), (path, method)
            assert "404" in operation["responses"], (path, method)
    assert "/api/v1/schools" not in paths


def test_operator_creates_a_school_with_its_first_admin(client, fast):
    school, admin = roster.create_school_with_admin("Trường THPT Chu Văn An", "0912 888 777", "Thầy Hiệu trưởng",
                                                    code="CVA")
    assert admin.phone == "+84912888777"
    body = _ok(client.get(f"{API}/schools/{school.id}/staff", headers=fast.headers(admin)))
    assert [(i["user_id"], i["role"]) for i in body["items"]] == [(str(admin.id), "admin")]
    with pytest.raises(ValidationError_):
        roster.create_school_with_admin("x", "0912 888 776", "y", timezone="Mars/Olympus")
    with pytest.raises(ValidationError_):
        roster.create_school_with_admin("x", "12", "y")
    assert not User.select().where(User.phone == "+84912888776").exists()
