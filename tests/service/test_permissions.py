"""service.permissions: who sees and acts on which student, class and school (through HTTP and directly)."""
from __future__ import annotations

import datetime as dt
import types

import pytest

from service import db as dbmod
from service import permissions
from service.accounts import logic as accounts
from service.roster import actions
from service.roster import logic as roster
from service.roster.models import SchoolClass, StudentGuardian
from service.errors import Forbidden, NotFound

from ..support.errors import assert_error


@pytest.fixture
def world(make, fast):
    """Two schools. S: classes X and Y, students A (in X) and B (in Y); T: class Z with student C."""
    w = types.SimpleNamespace()
    w.S = make.school("Trường S")
    w.admin = fast.staff(w.S, "admin")
    w.cafeteria = fast.staff(w.S, "cafeteria")
    w.teacher_x = fast.staff(w.S, "teacher")
    w.teacher_y = fast.staff(w.S, "teacher")
    w.subject_x = fast.staff(w.S, "teacher")
    w.X = make.klass(w.S, homeroom=w.teacher_x, name="6A1")
    w.Y = make.klass(w.S, homeroom=w.teacher_y, name="6A2")
    roster.assign_subject_teacher(w.X.id, w.subject_x.id, "Toán")
    w.A = make.student(w.X, "Nguyễn Văn An")
    w.B = make.student(w.Y, "Trần Thị Bình")
    roster.update_student(w.A.id, {"national_id": "001200000001"})
    w.guardian_a = fast.guardian(w.A)
    w.guardian_b = fast.guardian(w.B)
    w.T = make.school("Trường T")
    w.admin_t = fast.staff(w.T, "admin")
    w.cafeteria_t = fast.staff(w.T, "cafeteria")
    w.teacher_t = fast.staff(w.T, "teacher")
    w.Z = make.klass(w.T, homeroom=w.teacher_t)
    w.C = make.student(w.Z)
    w.guardian_c = fast.guardian(w.C)
    w.year_s = roster.create_school_year(w.S.id, "2026-2027", dt.date(2026, 9, 5), dt.date(2027, 5, 31))
    w.year_t = roster.create_school_year(w.T.id, "2026-2027", dt.date(2026, 9, 5), dt.date(2027, 5, 31))
    return w


def _status(client, fast, user, method, path, json=None):
    response = client.open(path, method=method, json=json, headers=fast.headers(user))
    if response.status_code >= 400:
        assert_error(response, response.status_code)
    return response.status_code


# --- acceptance, over HTTP ----------------------------------------------------------------------
def test_guardian_of_a_gets_404_for_b(client, fast, world):
    w = world
    assert _status(client, fast, w.guardian_a, "GET", f"/api/v1/students/{w.A.id}") == 200
    r = client.get(f"/api/v1/students/{w.B.id}", headers=fast.headers(w.guardian_a))
    assert_error(r, 404)
    assert _status(client, fast, w.guardian_a, "GET", f"/api/v1/students/{w.C.id}") == 404
    assert _status(client, fast, w.guardian_a, "GET", f"/api/v1/students/{w.B.id}/guardians") == 404
    assert _status(client, fast, w.guardian_a, "POST", f"/api/v1/students/{w.B.id}/invites", {}) == 404
    # the same answer as for a student that does not exist
    assert _status(client, fast, w.guardian_a, "GET", "/api/v1/students/987654") == 404


def test_teacher_of_x_gets_404_for_class_y(client, fast, world):
    w = world
    for teacher in (w.teacher_x, w.subject_x):
        assert _status(client, fast, teacher, "GET", f"/api/v1/classes/{w.X.id}") == 200
        r = client.get(f"/api/v1/classes/{w.X.id}/students", headers=fast.headers(teacher))
        assert r.status_code == 200 and [s["id"] for s in r.json["items"]] == [str(w.A.id)]
        assert _status(client, fast, teacher, "GET", f"/api/v1/classes/{w.Y.id}") == 404
        assert _status(client, fast, teacher, "GET", f"/api/v1/classes/{w.Y.id}/students") == 404
        assert _status(client, fast, teacher, "GET", f"/api/v1/students/{w.A.id}") == 200
        assert _status(client, fast, teacher, "GET", f"/api/v1/students/{w.B.id}") == 404
        assert _status(client, fast, teacher, "GET", f"/api/v1/classes/{w.Z.id}") == 404


def test_guardian_cannot_call_admin_endpoints(client, fast, world):
    w = world
    calls = [
        ("GET", f"/api/v1/schools/{w.S.id}/staff", None),
        ("POST", f"/api/v1/schools/{w.S.id}/staff", {"phone": "0912000001", "name": "X", "role": "admin"}),
        ("DELETE", f"/api/v1/schools/{w.S.id}/staff/{w.admin.id}", None),
        ("GET", f"/api/v1/schools/{w.S.id}/classes", None),
        ("POST", f"/api/v1/schools/{w.S.id}/classes", {"name": "6A9"}),
        ("GET", f"/api/v1/schools/{w.S.id}/students", None),
        ("POST", f"/api/v1/schools/{w.S.id}/students", {"name": "Lê Văn C"}),
        ("POST", f"/api/v1/schools/{w.S.id}/years", {"name": "2027", "starts_on": "2027-09-05",
                                                    "ends_on": "2028-05-31"}),
        ("POST", f"/api/v1/years/{w.year_s.id}/terms", {"name": "HK1", "starts_on": "2026-09-05",
                                                        "ends_on": "2027-01-15"}),
        ("GET", f"/api/v1/schools/{w.T.id}/staff", None),  # no admin role anywhere: 403 everywhere
        ("POST", "/api/v1/years/987654/terms", {"name": "HK1", "starts_on": "2026-09-05", "ends_on": "2027-01-15"}),
        # their own child's records: visible, but only the admin edits them
        ("PATCH", f"/api/v1/students/{w.A.id}", {"class_id": str(w.Y.id)}),
        ("POST", f"/api/v1/students/{w.A.id}/guardians", {"phone": "0912000002", "name": "Y"}),
        ("DELETE", f"/api/v1/students/{w.A.id}/guardians/{w.guardian_a.id}", None),
        ("POST", f"/api/v1/students/{w.A.id}/invites", {}),
        ("PATCH", f"/api/v1/classes/{w.X.id}", {"name": "hacked"}),
        ("POST", f"/api/v1/classes/{w.X.id}/teachers", {"teacher_id": str(w.teacher_y.id)}),
        ("GET", f"/api/v1/classes/{w.X.id}/students", None),
    ]
    for method, path, body in calls:
        assert _status(client, fast, w.guardian_a, method, path, body) == 403, (method, path)
    # a teacher holds no admin role either
    for method, path, body in calls[:10]:
        assert _status(client, fast, w.teacher_x, method, path, body) == 403, (method, path)
    # nothing changed
    assert roster.get_student(w.A.id).school_class_id == w.X.id
    assert roster.get_class(w.X.id).name == "6A1"
    assert roster.guardian_ids_of_student(w.A.id) == [w.guardian_a.id]
    assert accounts.find_user_by_phone("0912000001") is None
    assert roster.years_query(w.S.id).count() == 1


def test_staff_of_s_get_404_on_school_t(client, fast, world):
    w = world
    for user in (w.admin, w.cafeteria, w.teacher_x):
        for method, path, body in [
            ("GET", f"/api/v1/schools/{w.T.id}", None),
            ("GET", f"/api/v1/classes/{w.Z.id}", None),
            ("GET", f"/api/v1/classes/{w.Z.id}/students", None),
            ("GET", f"/api/v1/students/{w.C.id}", None),
            ("PATCH", f"/api/v1/students/{w.C.id}", {"name": "x"}),
            ("GET", f"/api/v1/students/{w.C.id}/guardians", None),
        ]:
            assert _status(client, fast, user, method, path, body) == 404, (user.name, method, path)
    # the admin of S, on T's admin endpoints
    for method, path, body in [
        ("GET", f"/api/v1/schools/{w.T.id}/staff", None),
        ("POST", f"/api/v1/schools/{w.T.id}/staff", {"phone": "0912000003", "name": "X", "role": "admin"}),
        ("GET", f"/api/v1/schools/{w.T.id}/classes", None),
        ("POST", f"/api/v1/schools/{w.T.id}/classes", {"name": "9Z"}),
        ("GET", f"/api/v1/schools/{w.T.id}/students", None),
        ("POST", f"/api/v1/schools/{w.T.id}/students", {"name": "x"}),
        ("GET", f"/api/v1/schools/{w.T.id}/years", None),
        ("POST", f"/api/v1/years/{w.year_t.id}/terms", {"name": "HK1", "starts_on": "2026-09-05",
                                                        "ends_on": "2027-01-15"}),
        ("PATCH", f"/api/v1/classes/{w.Z.id}", {"name": "x"}),
        ("POST", f"/api/v1/classes/{w.Z.id}/teachers", {"teacher_id": str(w.teacher_x.id)}),
        ("DELETE", f"/api/v1/classes/{w.Z.id}/teachers/{w.teacher_t.id}", None),
        ("POST", f"/api/v1/students/{w.C.id}/invites", {}),
        ("POST", f"/api/v1/students/{w.C.id}/guardians", {"phone": "0912000004", "name": "x"}),
        ("DELETE", f"/api/v1/students/{w.C.id}/guardians/{w.guardian_c.id}", None),
        ("DELETE", f"/api/v1/schools/{w.T.id}/staff/{w.admin_t.id}", None),
    ]:
        assert _status(client, fast, w.admin, method, path, body) == 404, (method, path)
    assert roster.get_class(w.Z.id).name != "x"
    assert roster.has_staff_role(w.admin_t.id, w.T.id, ["admin"])


def test_cafeteria_lists_class_students_but_does_not_edit(client, fast, world):
    w = world
    for klass, student in ((w.X, w.A), (w.Y, w.B)):
        r = client.get(f"/api/v1/classes/{klass.id}/students", headers=fast.headers(w.cafeteria))
        assert r.status_code == 200
        assert [s["id"] for s in r.json["items"]] == [str(student.id)]
    item = client.get(f"/api/v1/students/{w.A.id}", headers=fast.headers(w.cafeteria)).json
    assert item["name"] == "Nguyễn Văn An" and item["national_id"] is None  # not the cafeteria's business
    assert _status(client, fast, w.cafeteria, "GET", f"/api/v1/schools/{w.S.id}/classes") == 200
    for method, path, body in [
        ("PATCH", f"/api/v1/students/{w.A.id}", {"name": "x"}),
        ("PATCH", f"/api/v1/classes/{w.X.id}", {"name": "x"}),
        ("POST", f"/api/v1/classes/{w.X.id}/teachers", {"teacher_id": str(w.teacher_y.id)}),
        ("POST", f"/api/v1/students/{w.A.id}/guardians", {"phone": "0912000005", "name": "x"}),
        ("GET", f"/api/v1/students/{w.A.id}/guardians", None),
        ("POST", f"/api/v1/students/{w.A.id}/invites", {}),
        ("POST", f"/api/v1/schools/{w.S.id}/classes", {"name": "x"}),
        ("GET", f"/api/v1/schools/{w.S.id}/students", None),
    ]:
        assert _status(client, fast, w.cafeteria, method, path, body) == 403, (method, path)
    assert roster.get_student(w.A.id).name == "Nguyễn Văn An"


def test_teacher_sees_national_id_and_guardian_phones_of_own_class_only(client, fast, world):
    w = world
    r = client.get(f"/api/v1/students/{w.A.id}", headers=fast.headers(w.subject_x))
    assert r.json["national_id"] == "001200000001"
    assert r.json["guardian_ids"] == [str(w.guardian_a.id)]
    r = client.get(f"/api/v1/students/{w.A.id}/guardians", headers=fast.headers(w.subject_x))
    assert r.json["items"][0]["phone"] == w.guardian_a.phone


def test_guardian_never_sees_other_guardians_phone(client, fast, world):
    w = world
    other = fast.guardian(w.A, relationship="father", name="Phạm Văn Cha")
    r = client.get(f"/api/v1/students/{w.A.id}/guardians", headers=fast.headers(w.guardian_a))
    assert r.status_code == 200
    by_id = {g["user_id"]: g for g in r.json["items"]}
    assert by_id[str(other.id)]["name"] == "Phạm Văn Cha" and by_id[str(other.id)]["phone"] is None
    assert by_id[str(w.guardian_a.id)]["phone"] == w.guardian_a.phone
    assert other.phone not in r.get_data(as_text=True)
    # a guardian sees the child's class (its teachers) but not the class list of other families
    assert _status(client, fast, w.guardian_a, "GET", f"/api/v1/classes/{w.X.id}") == 200
    assert _status(client, fast, w.guardian_a, "GET", f"/api/v1/classes/{w.X.id}/students") == 403
    assert _status(client, fast, w.guardian_a, "GET", f"/api/v1/classes/{w.Y.id}") == 404


def test_huge_and_odd_ids_answer_404(client, fast, world):
    headers = fast.headers(world.admin)
    for path in ("/api/v1/students/99999999999999999999", "/api/v1/classes/9223372036854775808",
                 "/api/v1/schools/99999999999999999999", "/api/v1/students/0", "/api/v1/students/abc"):
        r = client.get(path, headers=headers)
        assert r.status_code == 404, (path, r.json)
    r = client.post("/api/v1/years/99999999999999999999/terms", headers=headers,
                    json={"name": "x", "starts_on": "2026-09-05", "ends_on": "2026-10-05"})
    assert r.status_code == 404


# --- the functions themselves -------------------------------------------------------------------
def test_school_for_answers(world):
    w = world
    assert permissions.school_for(w.admin, w.S.id) == w.S.id
    with pytest.raises(NotFound):
        permissions.school_for(w.admin, w.T.id)
    with pytest.raises(NotFound):
        permissions.school_for(w.admin, 987654)
    with pytest.raises(Forbidden):  # staff of S, but not its admin
        permissions.school_for(w.teacher_x, w.S.id)
    with pytest.raises(Forbidden):
        permissions.school_for(w.guardian_a, w.S.id)
    assert permissions.school_for(w.teacher_x, w.S.id, ("teacher",)) == w.S.id
    # admin of T and teacher of S: S is known to them, the role is missing → 403 (not 404)
    roster.add_staff(w.T.id, w.teacher_x.id, "admin")
    with pytest.raises(Forbidden):
        permissions.school_for(w.teacher_x, w.S.id)
    assert permissions.school_for(w.teacher_x, w.T.id) == w.T.id
    assert permissions.school_for(w.guardian_a, w.S.id, ("admin", "guardian")) == w.S.id
    with pytest.raises(NotFound):
        permissions.school_for(w.guardian_a, w.T.id, ("admin", "guardian"))
    assert permissions.year_for(w.admin, w.year_s.id).id == w.year_s.id
    with pytest.raises(NotFound):
        permissions.year_for(w.admin, w.year_t.id)
    with pytest.raises(NotFound):
        permissions.year_for(w.admin, 987654)
    with pytest.raises(Forbidden):
        permissions.year_for(w.guardian_a, 987654)


def test_class_and_student_roles(world):
    w = world
    assert permissions.class_for(w.teacher_x, w.X.id, roles=("homeroom",)).id == w.X.id
    with pytest.raises(Forbidden):
        permissions.class_for(w.subject_x, w.X.id, roles=("homeroom",))
    assert permissions.class_for(w.subject_x, w.X.id, roles=("teacher",)).id == w.X.id
    with pytest.raises(Forbidden):
        permissions.class_for(w.cafeteria, w.X.id, roles=("teacher",))
    assert permissions.class_for(w.admin, w.X.id, roles=("teacher", "admin")).id == w.X.id
    with pytest.raises(NotFound):  # guardians do not see classes unless the endpoint says so
        permissions.class_for(w.guardian_a, w.X.id)
    assert permissions.class_for(w.guardian_a, w.X.id, roles=("guardian",)).id == w.X.id
    with pytest.raises(NotFound):
        permissions.class_for(w.guardian_b, w.X.id, roles=("guardian",))

    assert permissions.student_for(w.guardian_a, w.A.id, roles=("guardian",)).name == "Nguyễn Văn An"
    with pytest.raises(Forbidden):
        permissions.student_for(w.teacher_x, w.A.id, roles=("guardian",))
    assert permissions.student_for(w.teacher_x, w.A.id, roles=("admin", "homeroom")).id == w.A.id
    with pytest.raises(Forbidden):
        permissions.student_for(w.subject_x, w.A.id, roles=("admin", "homeroom"))
    with pytest.raises(NotFound):
        permissions.student_for(w.teacher_y, w.A.id)
    _, access = permissions.student_access(w.admin, w.A.id)
    assert access == permissions.Access(staff=frozenset({"admin"}))
    _, access = permissions.student_access(w.teacher_x, w.A.id)
    assert access.teacher and access.homeroom and not access.guardian and access.staff == {"teacher"}

    assert permissions.can_see_student(w.cafeteria, w.B) and not permissions.can_see_student(w.cafeteria_t, w.B)
    assert permissions.can_see_class(w.subject_x, w.X) and not permissions.can_see_class(w.subject_x, w.Y)
    assert permissions.is_teacher_of_class(w.subject_x.id, w.X.id)
    assert not permissions.is_teacher_of_class(w.teacher_y.id, w.X.id)
    assert permissions.is_homeroom_teacher(w.teacher_x.id, w.X.id)
    assert permissions.is_guardian_of(w.guardian_a.id, w.A.id) and not permissions.is_guardian_of(w.guardian_a.id, w.B.id)
    assert permissions.visible_student_ids(w.guardian_a, [w.A.id, w.B.id, w.C.id]) == {w.A.id}
    assert permissions.visible_student_ids(w.subject_x, [w.A.id, w.B.id, w.C.id]) == {w.A.id}
    assert permissions.visible_student_ids(w.cafeteria, [w.A.id, w.B.id, w.C.id]) == {w.A.id, w.B.id}
    assert permissions.visible_student_ids(w.admin_t, [w.A.id, w.B.id, w.C.id, 987654]) == {w.C.id}


def test_a_role_taken_away_takes_the_access_with_it(world):
    w = world
    roster.remove_staff(w.S.id, w.subject_x.id, "teacher")
    with pytest.raises(NotFound):
        permissions.class_for(w.subject_x, w.X.id)
    roster.remove_staff(w.S.id, w.teacher_x.id)
    with pytest.raises(NotFound):
        permissions.student_for(w.teacher_x, w.A.id)
    assert roster.get_class(w.X.id).homeroom_teacher_id is None
    assert roster.teacher_class_ids(w.teacher_x.id) == []
    # a class move moves the teachers' view with it
    roster.update_student(w.B.id, {"class_id": w.X.id})
    with pytest.raises(NotFound):
        permissions.student_for(w.teacher_y, w.B.id)


class _QueryCounter:
    def __init__(self, monkeypatch):
        self.count = 0
        database = dbmod.db.obj
        original = database.execute_sql

        def counting(sql, params=None, *args, **kwargs):
            if not sql.startswith("PREPARE "):  # a prepared read's once-per-connection setup (service.prepared)
                self.count += 1
            return original(sql, params, *args, **kwargs)

        monkeypatch.setattr(database, "execute_sql", counting)


def test_each_check_is_one_query(world, monkeypatch):
    w = world
    counter = _QueryCounter(monkeypatch)
    for user, student in ((w.guardian_a, w.A), (w.subject_x, w.A), (w.cafeteria, w.B), (w.admin, w.B)):
        before = counter.count
        permissions.student_for(user, student.id)
        assert counter.count - before == 1
    for user, klass in ((w.subject_x, w.X), (w.cafeteria, w.Y), (w.admin, w.X), (w.guardian_a, w.X)):
        before = counter.count
        permissions.class_for(user, klass.id, roles=("teacher", "admin", "cafeteria", "guardian"))
        assert counter.count - before == 1
    before = counter.count
    permissions.school_for(w.admin, w.S.id)
    assert counter.count - before == 1
    before = counter.count
    with pytest.raises(NotFound):
        permissions.student_for(w.guardian_a, w.B.id)
    assert counter.count - before == 1
    before = counter.count
    permissions.visible_student_ids(w.subject_x, [w.A.id, w.B.id, w.C.id])
    assert counter.count - before == 1



def test_roster_actions_authorize_the_acting_user_without_http(world):
    """The roster's acting-user entry points decide access themselves (a job or the CLI acting for a
    person gets the same answers as a view): other school's admin 404, a teacher 403, nothing changes."""
    w = world
    classes = SchoolClass.select().count()
    with pytest.raises(NotFound):
        actions.create_class(w.admin_t, w.S.id, "9Z")
    with pytest.raises(Forbidden):
        actions.create_class(w.teacher_x, w.S.id, "9Z")
    assert SchoolClass.select().count() == classes
    with pytest.raises(NotFound):
        actions.unlink_guardian(w.admin_t, w.A.id, w.guardian_a.id)
    with pytest.raises(Forbidden):
        actions.unlink_guardian(w.guardian_a, w.A.id, w.guardian_a.id)
    assert StudentGuardian.select().where(StudentGuardian.student == w.A.id).count() == 1
    assert [g["phone"] for g in actions.guardians(w.guardian_a, w.A.id)] == [w.guardian_a.phone]
    assert actions.create_class(w.admin, w.S.id, "9Z").school_id == w.S.id
    actions.unlink_guardian(w.admin, w.A.id, w.guardian_a.id)
    with pytest.raises(NotFound):  # access follows the roster live
        actions.get_student(w.guardian_a, w.A.id)
