"""Hand-written OneRoster 1.1 bundles (tests/fixtures/oneroster/) through the CLI's function and the upload.

Each valid bundle imports, importing it again changes nothing, and what Lienlac cannot use is a
warning naming file, line and column (issue 8). A broken bundle is refused whole, every problem listed.
"""
from __future__ import annotations

import io
import re
import shutil
import sqlite3
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest

from service.accounts import logic as accounts
from service.roster import logic as roster
from service.accounts.models import User
from service.roster.models import (ClassTeacher, RosterImport, School, SchoolClass, SchoolYear, StaffRole, Student,
                                   StudentGuardian, Term)
from service.roster.oneroster import RosterImportError, import_path_cli, import_roster

from ..support.oneroster_gen import dump_roster
from ..support.servers import ROOT, lienlac, process_env

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "oneroster"
VALID = ["bom_crlf", "quoted", "email_only_parent", "schoolyear_only", "roles"]


def zipped(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"export/{path.name}")
    return buf.getvalue()


class Importer:
    """``__call__(folder, dry_run)`` → {"ok", "counts", "warnings", "errors"} by the CLI's function or HTTP."""

    def __init__(self, how, client, make):
        self.how, self.client, self.make = how, client, make
        if how == "upload":
            self.school = make.school("Trường tạo tay")
            self.admin = make.admin(self.school)

    def __call__(self, folder: Path, dry_run: bool = False) -> dict:
        if self.how == "cli":
            try:
                r = import_roster(folder, school_ref="org-a", dry_run=dry_run)
            except RosterImportError as exc:
                return {"ok": False, "errors": exc.errors, "counts": None, "warnings": []}
            return {"ok": True, "errors": [], "counts": r["counts"], "warnings": r["warnings"]}
        headers = self.make.headers(self.admin)
        data = {"file": (io.BytesIO(zipped(folder)), "export.zip")}
        query = "?dry_run=true" if dry_run else ""
        r = self.client.post(f"/api/v1/schools/{self.school.id}/roster-imports{query}", headers=headers, data=data,
                             content_type="multipart/form-data")
        assert r.status_code == 202, r.json
        body = self.client.get(f"/api/v1/roster-imports/{r.json['id']}", headers=headers).json
        assert body["dry_run"] is dry_run
        return {"ok": body["status"] == "done", "errors": body["errors"], "counts": body["counts"],
                "warnings": body["warnings"]}


@pytest.fixture(params=["cli", "upload"])
def imp(request, client, make):
    return Importer(request.param, client, make)


def places(items) -> set:
    return {(w["file"], w["line"], w["column"]) for w in items}


def nothing_changed(counts) -> bool:
    return all(c["created"] == c["updated"] == c["removed"] == 0 for c in counts.values())


def links_of(student_sid) -> dict:
    student = Student.get(Student.sourced_id == student_sid)
    return {User.get_by_id(x.guardian_id).sourced_id: x.relationship
            for x in StudentGuardian.select().where(StudentGuardian.student == student.id)}


def check_bom_crlf(result):
    raw = (FIXTURES / "bom_crlf" / "users.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw.count(b"\n")  # the fixture is what it says
    school = School.get(School.sourced_id == "org-a")  # no BOM left in the first header or value
    assert school.name == "Trường THCS Ánh Dương"
    student = Student.get(Student.sourced_id == "u-hs-1")
    assert (student.name, student.national_id, str(student.birth_date)) == \
        ("Nguyễn Văn Minh", "079215000001", "2015-03-02")
    assert links_of("u-hs-1") == {"u-ph-1": "mother"}
    klass = SchoolClass.get(SchoolClass.sourced_id == "c-6a1")
    assert (klass.grade, User.get_by_id(klass.homeroom_teacher_id).sourced_id) == (6, "u-gv-1")
    assert User.get(User.sourced_id == "u-ph-1").phone == "+84903000101"


def check_quoted(result):
    klass = SchoolClass.get(SchoolClass.sourced_id == "c-6a1")
    assert (klass.name, klass.grade) == ('6A1\n(lớp chọn, "Toán")', 6)
    assert Student.get(Student.sourced_id == "u-hs-1").name == 'Nguyễn Văn Minh "Bin"'
    assert links_of("u-hs-1") == {"u-ph-1": "mother", "u-ph-2": "father"}  # "u-ph-1,u-ph-2": two agents
    assert User.get(User.sourced_id == "u-gv-1").name == "Trần Thị Lan, Anh"
    assert User.get(User.sourced_id == "u-gv-1").phone == "+84903000002"
    assert User.get(User.sourced_id == "u-ph-2").phone == "+84903000103"


def check_email_only_parent(result):
    parent = User.get(User.sourced_id == "u-ph-1")
    assert (parent.phone, parent.email) == (None, "hoa.pham@example.com")
    assert links_of("u-hs-1") == {"u-ph-1": "guardian"}
    warning = next(w for w in result["warnings"] if (w["file"], w["line"], w["column"]) == ("users.csv", 4, "phone"))
    assert "invite code" in warning["message"] and "guardian-invites" in warning["message"]
    assert "PATCH /students/{id}/guardians/{user_id}" in warning["message"]


def check_schoolyear_only(result):
    school = School.get(School.sourced_id == "org-a")
    years = list(SchoolYear.select().where(SchoolYear.school == school.id))
    assert [(y.name, str(y.starts_on), str(y.ends_on)) for y in years] == [("2026-2027", "2026-09-05", "2027-05-31")]
    assert sorted(t.name for t in Term.select().where(Term.school_year == years[0].id)) == ["Học kỳ I", "Học kỳ II"]
    assert SchoolClass.get(SchoolClass.sourced_id == "c-6a1").school_year_id == years[0].id


def check_roles(result):
    school = School.get(School.sourced_id == "org-a")
    klass = SchoolClass.get(SchoolClass.sourced_id == "c-6a1")

    def roles(sid):
        return sorted(r.role for r in StaffRole.select().join(User).where(
            (User.sourced_id == sid) & (StaffRole.school == school.id)))

    def class_teachers():
        return sorted(User.get_by_id(t.teacher_id).sourced_id
                      for t in ClassTeacher.select().where(ClassTeacher.school_class == klass.id))

    assert User.get_by_id(klass.homeroom_teacher_id).sourced_id == "u-gv-1"  # an aide is never homeroom
    assert roles("u-tg-1") == ["teacher"] and class_teachers() == ["u-tg-1"]  # the aide teaches with them
    assert roles("u-gt-1") == ["teacher"]  # a proctor: staff of the school, in no class
    assert roles("u-bgh-1") == ["admin"]
    assert not User.select().where(User.sourced_id.in_(["u-pgd-1", "u-rl-2"])).exists()
    assert links_of("u-hs-1") == {"u-ph-1": "guardian", "u-rl-1": "relative"}  # a relative with agents: linked
    assert {("enrollments.csv", 4, "role"), ("users.csv", 6, "orgSourcedIds"), ("users.csv", 10, "agentSourcedIds"),
            ("lineItems.csv", None, None), ("courses.csv", 1, "nickname"),
            ("users.csv", 2, "username"), ("academicSessions.csv", 5, "type")} <= places(result["warnings"])


@pytest.mark.parametrize("bundle", VALID)
def test_a_valid_bundle_imports_and_again_changes_nothing(imp, bundle):
    first = imp(FIXTURES / bundle)
    assert first["ok"], first["errors"]
    assert first["counts"]["students"]["created"] == 1
    globals()[f"check_{bundle}"](first)
    assert all(set(w) == {"file", "line", "column", "message"} and w["file"] and w["message"]
               for w in first["warnings"])
    before = dump_roster()
    again = imp(FIXTURES / bundle)
    assert again["ok"] and nothing_changed(again["counts"]), again["counts"]
    assert places(again["warnings"]) == places(first["warnings"])
    assert dump_roster() == before


def test_a_delta_removes_the_enrollments_and_links_it_names(imp):
    assert imp(FIXTURES / "delta" / "base")["ok"]
    klass = SchoolClass.get(SchoolClass.sourced_id == "c-6a1")
    assert [User.get_by_id(t.teacher_id).sourced_id for t in ClassTeacher.select()] == ["u-gv-2"]
    users_before = User.select().count()
    delta = imp(FIXTURES / "delta" / "delta")
    assert delta["ok"], delta["errors"]
    assert delta["counts"]["students"]["removed"] == 1 and delta["counts"]["guardian_links"]["removed"] == 1
    assert delta["counts"]["class_teachers"]["removed"] == 1
    assert Student.get(Student.sourced_id == "u-hs-2").school_class_id is None  # out of the class, kept
    assert Student.get(Student.sourced_id == "u-hs-1").school_class_id == klass.id
    assert links_of("u-hs-1") == {"u-ph-1": "guardian"}  # no demographics: "parent" is a guardian
    assert ClassTeacher.select().count() == 0
    assert User.select().count() == users_before  # users and their history stay
    assert User.get(User.sourced_id == "u-gv-2").id
    before = dump_roster()
    again = imp(FIXTURES / "delta" / "delta")
    assert again["ok"] and nothing_changed(again["counts"]), again["counts"]
    assert dump_roster() == before


def test_a_delta_naming_what_this_school_never_imported_is_refused(imp, tmp_path):
    assert imp(FIXTURES / "delta" / "base")["ok"]
    folder = tmp_path / "delta"
    shutil.copytree(FIXTURES / "delta" / "delta", folder)
    text = (folder / "enrollments.csv").read_text(encoding="utf-8").replace("u-hs-2", "u-hs-404")
    (folder / "enrollments.csv").write_text(text, encoding="utf-8")
    before = dump_roster()
    result = imp(folder)
    assert not result["ok"]
    assert places(result["errors"]) == {("enrollments.csv", 2, "userSourcedId")}
    assert dump_roster() == before


def test_a_broken_bundle_is_refused_whole_with_every_problem(imp):
    before = dump_roster()
    result = imp(FIXTURES / "broken")
    assert not result["ok"]
    assert places(result["errors"]) == {
        ("users.csv", 4, "sourcedId"),  # duplicate sourcedId
        ("users.csv", 3, "agentSourcedIds"),  # unknown user
        ("users.csv", 5, "orgSourcedIds"),  # unknown org
        ("enrollments.csv", 3, "classSourcedId"),  # unknown class
        ("enrollments.csv", 4, "userSourcedId"),  # unknown user
    }
    assert dump_roster() == before


@pytest.mark.parametrize("bundle", ["bom_crlf", "roles"])
def test_a_dry_run_shows_the_plan_and_writes_nothing(imp, bundle):
    before = dump_roster()
    plan = imp(FIXTURES / bundle, dry_run=True)
    assert plan["ok"], plan["errors"]
    assert plan["counts"]["students"] == {"created": 1, "updated": 0, "unchanged": 0, "removed": 0}
    assert plan["counts"]["guardian_links"]["created"] >= 1
    assert plan["warnings"]
    assert dump_roster() == before
    real = imp(FIXTURES / bundle)
    assert {k: v["created"] for k, v in real["counts"].items() if k != "schools"} == \
        {k: v["created"] for k, v in plan["counts"].items() if k != "schools"}
    assert places(real["warnings"]) == places(plan["warnings"])
    # a dry run of what is already there: all unchanged, still nothing written
    before = dump_roster()
    again = imp(FIXTURES / bundle, dry_run=True)
    assert nothing_changed(again["counts"]) and dump_roster() == before


def test_the_cli_prints_warnings_with_file_line_and_column(app, capsys):
    import_path_cli(FIXTURES / "roles", "org-a")
    out = capsys.readouterr().out
    assert re.search(r"^\s*students\s+1\s+0\s+0\s+0\s*$", out, re.M), out
    assert "enrollments.csv:4:role: Lienlac has no proctor in a class" in out
    assert "lineItems.csv: Lienlac does not use this OneRoster file" in out
    assert "Imported in" in out


def test_cli_dry_run_flag_writes_nothing(tmp_path):
    db_path = tmp_path / "cli.sqlite3"
    env = process_env(f"sqlite:///{db_path}", None, tmp_path, SOCKETIO_CHANNEL=f"t-{uuid.uuid4().hex}")
    proc = subprocess.run(lienlac("import-roster", str(FIXTURES / "bom_crlf"), "--school", "org-a", "--dry-run"),
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run" in proc.stdout and "Dry run: nothing was written." in proc.stdout
    assert re.search(r"^\s*students\s+1\s+0\s+0\s+0\s*$", proc.stdout, re.M), proc.stdout
    assert "classes.csv:2:classType" in proc.stdout
    with sqlite3.connect(db_path) as conn:
        for table in ("school", "student", "user", "student_guardian"):
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,), table


def test_a_guardian_without_phone_gets_invite_codes_or_a_phone_that_later_imports_match(client, make, tmp_path):
    imp = Importer("upload", client, make)
    assert imp(FIXTURES / "email_only_parent")["ok"]
    parent = User.get(User.sourced_id == "u-ph-1")
    student = Student.get(Student.sourced_id == "u-hs-1")
    klass = SchoolClass.get(SchoolClass.sourced_id == "c-6a1")
    homeroom = User.get_by_id(klass.homeroom_teacher_id)

    # the homeroom teacher prints invite codes: one per child and phone-less guardian
    r = client.post(f"/api/v1/classes/{klass.id}/guardian-invites", headers=make.headers(homeroom))
    assert r.status_code == 201, r.json
    [item] = r.json["items"]
    assert (item["student_id"], item["guardian_id"], item["guardian_name"], item["relationship"]) == \
        (str(student.id), str(parent.id), "Phạm Thị Hoa", "guardian")
    stranger = make.admin(make.school("Trường khác"))
    assert client.post(f"/api/v1/classes/{klass.id}/guardian-invites",
                       headers=make.headers(stranger)).status_code == 404
    family_member = make.user("Phạm Thị Hoa")
    r = client.post("/api/v1/guardians/claim", headers=make.headers(family_member), json={"code": item["code"]})
    assert r.status_code == 200, r.json
    assert [s.id for s in roster.children_of(family_member.id)] == [student.id]

    # or the admin adds the phone: that account signs in with it, and a later import with it matches it
    url = f"/api/v1/students/{student.id}/guardians/{parent.id}"
    assert client.patch(url, headers=make.headers(stranger), json={"phone": "0903000199"}).status_code == 404
    assert client.patch(url, headers=make.headers(homeroom), json={"phone": "0903000199"}).status_code == 403
    taken = client.patch(url, headers=make.headers(imp.admin), json={"phone": homeroom.phone})
    assert taken.status_code == 409
    r = client.patch(url, headers=make.headers(imp.admin), json={"phone": "0903000199"})
    assert r.status_code == 200, r.json
    assert (r.json["user_id"], r.json["phone"]) == (str(parent.id), "+84903000199")
    folder = tmp_path / "with_phone"
    shutil.copytree(FIXTURES / "email_only_parent", folder)
    users = (folder / "users.csv").read_text(encoding="utf-8")
    (folder / "users.csv").write_text(users.replace("hoa.pham@example.com,,,", "hoa.pham@example.com,,0903000199,"),
                                      encoding="utf-8")
    users_before = User.select().count()
    again = imp(folder)
    assert again["ok"], again["errors"]
    assert again["counts"]["guardians"] == {"created": 0, "updated": 0, "unchanged": 1, "removed": 0}
    assert User.select().count() == users_before
    assert User.get(User.sourced_id == "u-ph-1").id == parent.id
    assert ("users.csv", 4, "phone") not in places(again["warnings"])

    class Outbox:
        def send(self, phone, text):
            self.code = re.search(r"\b(\d{6})\b", text).group(1)

    sms = Outbox()
    accounts.request_otp("0903000199", sms)
    assert accounts.verify_otp("0903000199", sms.code).id == parent.id
    assert RosterImport.select().count() == 2
