"""The roster import never reads or writes outside the importing school (issue 7, finding 1).

An admin of school A imports bundles that name accounts and students of school B: nothing of B
changes, nothing of B is named in an error, B's accounts can at most be linked to A's students.
Each case runs through the CLI's function (``import_roster``) and through the HTTP upload.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest

from service.accounts import logic as accounts
from service.roster import logic as roster
from service.accounts.models import User
from service.roster.models import StaffRole, Student, StudentGuardian
from service.roster.oneroster import RosterImportError, import_roster

HEADERS = {
    "orgs.csv": ["sourcedId", "status", "name", "type"],
    "academicSessions.csv": ["sourcedId", "status", "title", "type", "startDate", "endDate", "parentSourcedId",
                             "schoolYear"],
    "classes.csv": ["sourcedId", "status", "title", "grades", "courseSourcedId", "schoolSourcedId",
                    "termSourcedIds"],
    "users.csv": ["sourcedId", "status", "enabledUser", "orgSourcedIds", "role", "givenName", "familyName",
                  "identifier", "email", "phone", "agentSourcedIds"],
    "enrollments.csv": ["sourcedId", "status", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"],
}


def bundle(users: list[dict], enrollments: list[dict] | None = None) -> dict[str, str]:
    """A small bundle for org ``org-a``: one year, one class ``c1``, the given users."""
    tables = {
        "orgs.csv": [{"sourcedId": "org-a", "status": "active", "name": "Trường A", "type": "school"}],
        "academicSessions.csv": [{"sourcedId": "y1", "status": "active", "title": "2026-2027", "type": "schoolYear",
                                  "startDate": "2026-09-01", "endDate": "2027-05-31", "schoolYear": "2027"}],
        "classes.csv": [{"sourcedId": "c1", "status": "active", "title": "10A1", "grades": "10",
                         "schoolSourcedId": "org-a", "termSourcedIds": "y1"}],
        "users.csv": [{"status": "active", "orgSourcedIds": "org-a", **u} for u in users],
        "enrollments.csv": enrollments if enrollments is not None else [
            {"sourcedId": f"e-{u['sourcedId']}", "status": "active", "classSourcedId": "c1",
             "schoolSourcedId": "org-a", "userSourcedId": u["sourcedId"], "role": "student"}
            for u in users if u["role"] == "student"],
    }
    out = {}
    for name, rows in tables.items():
        buf = io.StringIO()
        writer = csv.DictWriter(buf, HEADERS[name], lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        out[name] = buf.getvalue()
    return out


def student(sid="s1", **extra):
    return {"sourcedId": sid, "role": "student", "givenName": "An", "familyName": "Lê", **extra}


def guardian(sid, phone, agents="s1", **extra):
    return {"sourcedId": sid, "role": "guardian", "givenName": "Tấn", "familyName": "Kẻ", "phone": phone,
            "agentSourcedIds": agents, **extra}


class Importer:
    """Imports a bundle into school A by the CLI's function or by the admin upload (HTTP)."""

    def __init__(self, how, client, make, school, admin, tmp_path):
        self.how, self.client, self.make, self.school, self.admin = how, client, make, school, admin
        self.tmp_path, self.n = tmp_path, 0

    def __call__(self, files: dict[str, str]) -> tuple[bool, list[dict]]:
        """(imported?, problems)"""
        self.n += 1
        if self.how == "cli":
            folder = self.tmp_path / f"bundle{self.n}"
            folder.mkdir()
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8", newline="")
            try:
                import_roster(folder, school_ref=str(self.school.id))
            except RosterImportError as exc:
                return False, exc.errors
            return True, []
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for name, text in files.items():
                archive.writestr(name, text)
        headers = self.make.headers(self.admin)
        r = self.client.post(f"/api/v1/schools/{self.school.id}/roster-imports", headers=headers,
                             data={"file": (io.BytesIO(buf.getvalue()), "r.zip")}, content_type="multipart/form-data")
        assert r.status_code == 202, r.json
        body = self.client.get(f"/api/v1/roster-imports/{r.json['id']}", headers=headers).json
        assert body["status"] in ("done", "failed"), body
        return body["status"] == "done", body["errors"]


@pytest.fixture(params=["cli", "upload"])
def world(request, client, make, tmp_path):
    a = make.school("Trường A")
    a_admin = make.admin(a)
    b = make.school("Trường Bí Mật")
    b_admin = make.admin(b)
    b_family = make.family(b)
    return {"a": a, "a_admin": a_admin, "b": b, "b_admin": b_admin, "b_family": b_family,
            "run": Importer(request.param, client, make, a, a_admin, tmp_path)}


def snapshot(user_id: int) -> tuple:
    u = User.get_by_id(user_id)
    roles = sorted((r.school_id, r.role) for r in StaffRole.select().where(StaffRole.user == user_id))
    links = sorted((link.student_id, link.relationship)
                   for link in StudentGuardian.select().where(StudentGuardian.guardian == user_id))
    return (u.phone, u.name, u.email, u.sourced_id, u.is_active, u.password_hash), roles, links


def b_links_and_roles(user_id: int, b_id: int) -> tuple:
    roles = sorted(r.role for r in StaffRole.select().where((StaffRole.user == user_id) & (StaffRole.school == b_id)))
    links = sorted(link.student_id for link in StudentGuardian.select().join(Student).where(
        (StudentGuardian.guardian == user_id) & (Student.school == b_id)))
    return roles, links


class Outbox:
    def __init__(self):
        self.sent = []

    def send(self, phone, text):
        self.sent.append((phone, text))

    def code(self):
        return re.search(r"\b(\d{6})\b", self.sent[-1][1]).group(1)


def test_a_guardian_row_with_another_schools_admin_phone_does_not_take_the_account(world):
    victim, attacker, b = world["b_admin"], world["a_admin"], world["b"]
    before = snapshot(victim.id)
    before_b = b_links_and_roles(victim.id, b.id)
    ok, problems = world["run"](bundle([student(), guardian("x", victim.phone)]))
    assert ok, problems
    (fields, roles, links) = snapshot(victim.id)
    assert fields == before[0]  # phone, name, email, sourcedId, active flag, password: untouched
    assert roles == before[1]
    assert b_links_and_roles(victim.id, b.id) == before_b  # nothing gained in B
    a_student = Student.get(Student.sourced_id == "s1")
    assert a_student.school_id == world["a"].id
    assert [s for s, _ in links] == [a_student.id]  # linked to A's student, as a parent of two schools would be

    # the same sourcedId with the attacker's phone does not rewrite the victim's phone
    ok, problems = world["run"](bundle([student(), guardian("x", attacker.phone)]))
    assert ok, problems
    assert snapshot(victim.id)[0] == before[0]
    assert User.get_by_id(victim.id).phone == victim.phone

    # signing in by OTP with the attacker's phone gives the attacker's account, never the victim's
    sms = Outbox()
    accounts.request_otp(attacker.phone, sms)
    assert accounts.verify_otp(attacker.phone, sms.code()).id == attacker.id
    assert User.select().where(User.phone == attacker.phone).count() == 1
    assert not User.select().where((User.id == victim.id) & (User.phone == attacker.phone)).exists()


def test_enabled_user_false_does_not_lock_out_another_schools_account(world):
    victim = world["b_family"]["teacher"]
    before = snapshot(victim.id)
    before_b = b_links_and_roles(victim.id, world["b"].id)
    ok, problems = world["run"](bundle([student(), guardian("lock", victim.phone, enabledUser="false")]))
    assert ok, problems
    assert User.get_by_id(victim.id).is_active is True
    assert snapshot(victim.id)[0] == before[0]
    # as a staff row too
    ok, problems = world["run"](bundle([student(), {"sourcedId": "lock2", "role": "teacher", "givenName": "X",
                                                    "familyName": "Y", "phone": victim.phone,
                                                    "enabledUser": "false"}]))
    assert ok, problems
    assert snapshot(victim.id)[0] == before[0]
    assert b_links_and_roles(victim.id, world["b"].id) == before_b


def test_a_user_the_roster_disables_is_signed_out(world, client, make):
    """enabledUser=false on one of the importing school's own accounts ends its sessions at once."""
    ok, problems = world["run"](bundle([student(), guardian("g-off", make.phone())]))
    assert ok, problems
    user = User.get(User.sourced_id == "g-off")
    tokens = accounts.start_session(user)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 200
    ok, problems = world["run"](bundle([student(), guardian("g-off", user.phone, enabledUser="false")]))
    assert ok, problems
    assert User.get_by_id(user.id).is_active is False
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401, r.json


def _says_nothing_of(problems: list[dict], *secrets) -> None:
    text = json.dumps(problems, ensure_ascii=False)
    for secret in secrets:
        assert str(secret) not in text, (secret, text)


@pytest.mark.parametrize("by", ["sourcedId", "national id"])
def test_a_student_of_another_school_is_refused_and_not_named(world, by):
    b, fam = world["b"], world["b_family"]
    victim = fam["student"]
    roster.update_student(victim.id, {"national_id": "079200000123"})
    Student.update(sourced_id="b-secret-sid").where(Student.id == victim.id).execute()
    victim = Student.get_by_id(victim.id)
    row = student("b-secret-sid") if by == "sourcedId" else student("mine-1", identifier="079200000123")
    before = Student.select().where(Student.school == world["a"].id).count()
    ok, problems = world["run"](bundle([row]))
    assert not ok
    assert [(p["file"], p["column"]) for p in problems] == [
        ("users.csv", "sourcedId" if by == "sourcedId" else "identifier")]
    secrets = [b.name, victim.name, fam["klass"].name, fam["guardian"].phone, fam["guardian"].name]
    secrets += ["079200000123"] if by == "sourcedId" else ["b-secret-sid"]
    _says_nothing_of(problems, *secrets)
    assert not re.search(rf"\b{b.id}\b|\b{victim.id}\b", " ".join(p["message"] for p in problems))
    after = Student.get_by_id(victim.id)
    assert (after.school_id, after.school_class_id, after.name, after.national_id, after.sourced_id) == \
        (b.id, fam["klass"].id, victim.name, "079200000123", "b-secret-sid")
    assert Student.select().where(Student.school == world["a"].id).count() == before


def test_a_parent_with_children_in_two_schools_is_linked_not_modified(world):
    fam = world["b_family"]
    parent = fam["guardian"]
    before = snapshot(parent.id)
    files = bundle([student(), guardian("pa-1", parent.phone, givenName="Khác", email="khac@example.com")])
    ok, problems = world["run"](files)
    assert ok, problems
    fields, roles, links = snapshot(parent.id)
    assert fields == before[0] and roles == before[1]
    a_student = Student.get(Student.sourced_id == "s1")
    assert sorted(s for s, _ in links) == sorted([fam["student"].id, a_student.id])
    assert [c.id for c in roster.children_of(parent.id) if c.school_id == world["b"].id] == [fam["student"].id]
    # again: nothing changes
    ok, problems = world["run"](files)
    assert ok, problems
    assert snapshot(parent.id) == (fields, roles, links)


def test_another_schools_sourced_id_is_never_adopted(world):
    victim = world["b_admin"]
    User.update(sourced_id="b-admin-sid").where(User.id == victim.id).execute()
    before = snapshot(victim.id)
    ok, problems = world["run"](bundle([student(), guardian("b-admin-sid", world["a_admin"].phone)]))
    assert not ok
    assert [(p["file"], p["column"]) for p in problems] == [("users.csv", "sourcedId")]
    _says_nothing_of(problems, victim.phone, victim.name, world["b"].name)
    assert snapshot(victim.id) == before


def test_reading_another_schools_import_is_404(client, make, world):
    if world["run"].how != "upload":
        pytest.skip("HTTP only")
    ok, _ = world["run"](bundle([student()]))
    assert ok
    from service.roster.models import RosterImport

    run_id = RosterImport.select().order_by(RosterImport.id.desc()).first().id
    url = f"/api/v1/roster-imports/{run_id}"
    assert client.get(url, headers=make.headers(world["b_admin"])).status_code == 404
    # an admin of B who also teaches in A: still 404 (only A's admins read A's imports)
    roster.add_staff(world["a"].id, world["b_admin"].id, "teacher")
    assert client.get(url, headers=make.headers(world["b_admin"])).status_code == 404
    # no school's admin: 403 whatever the id, so the answer tells nothing
    guardian_headers = make.headers(world["b_family"]["guardian"])
    assert client.get(url, headers=guardian_headers).status_code == 403
    assert client.get("/api/v1/roster-imports/99999999", headers=guardian_headers).status_code == 403
    assert client.get(url, headers=make.headers(world["a_admin"])).status_code == 200
