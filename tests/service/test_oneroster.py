"""OneRoster 1.1 CSV import: the acceptance set, idempotence, bad rows, zip/folder, CLI and admin endpoint."""
from __future__ import annotations

import io
import logging
import re
import sqlite3
import subprocess
import time
import uuid

import pytest

from service.roster import logic as roster
from service.accounts.models import User
from service.roster.models import (ClassTeacher, School, SchoolClass, SchoolYear, StaffRole, Student,
                                   StudentGuardian, Term)
from service.roster.oneroster import RosterImportError, format_problem, import_roster

from ..support.errors import assert_error
from ..support.oneroster_gen import BAD_KINDS, SCHOOL_SID, dump_roster, rewrite_csv, write_roster
from ..support.servers import ROOT, lienlac, process_env

SMALL = dict(classes=3, students=30, guardians=45, teachers=4, admins=1)


def row_of(rs, file, sid):
    return next(r for r in rs.tables[file] if r["sourcedId"] == sid)


@pytest.fixture(scope="module")
def acceptance_set(tmp_path_factory):
    return write_roster(tmp_path_factory.mktemp("oneroster") / "acceptance")


def test_acceptance_set_imports_and_a_second_import_changes_nothing(app, acceptance_set, caplog, capsys):
    rs = acceptance_set
    started = time.monotonic()
    first = import_roster(rs.folder, school_ref=SCHOOL_SID)
    first_seconds = time.monotonic() - started
    c = first["counts"]
    assert {k: v["created"] for k, v in c.items()} == {
        "schools": 1, "school_years": 1, "terms": 2, "classes": 40, "staff": 62, "staff_roles": 62,
        "class_teachers": 40, "students": 1600, "guardians": 2400, "guardian_links": 2400}
    assert sum(v["updated"] + v["unchanged"] + v["removed"] for v in c.values()) == 0

    school = School.get(School.sourced_id == SCHOOL_SID)
    assert (school.name, school.code, first["school_id"]) == ("Trường THPT Kim Liên", "THPT-KL", school.id)
    assert School.select().count() == 1  # the district org is not a school
    assert SchoolClass.select().where(SchoolClass.school == school.id).count() == 40
    assert SchoolClass.select().where(SchoolClass.homeroom_teacher.is_null()).count() == 0
    assert Student.select().where((Student.school == school.id) & Student.school_class.is_null(False)).count() == 1600
    assert StudentGuardian.select().count() == 2400
    assert StaffRole.select().where((StaffRole.school == school.id) & (StaffRole.role == "teacher")).count() == 60
    assert StaffRole.select().where((StaffRole.school == school.id) & (StaffRole.role == "admin")).count() == 2
    assert Term.select().join(SchoolYear).where(SchoolYear.school == school.id).count() == 2

    # one class, one student, their parents: names in Vietnamese order, phones in E.164
    klass = SchoolClass.get(SchoolClass.sourced_id == "cls-10a1")
    homeroom = User.get_by_id(klass.homeroom_teacher_id)
    assert (klass.name, klass.grade, homeroom.sourced_id) == ("10A1", 10, "u-gv-001")
    assert klass.school_year_id == SchoolYear.get(SchoolYear.sourced_id == "as-2026").id
    subject = ClassTeacher.get(ClassTeacher.school_class == klass.id)
    assert (User.get_by_id(subject.teacher_id).sourced_id, subject.subject) == ("u-gv-041", "Tiếng Anh")
    src = row_of(rs, "users.csv", "u-hs-00001")
    student = Student.get(Student.sourced_id == "u-hs-00001")
    assert student.name == f"{src['familyName']} {src['middleName']} {src['givenName']}"
    assert student.national_id == src["identifier"] and student.school_class_id == klass.id
    assert student.birth_date.isoformat() == row_of(rs, "demographics.csv", "u-hs-00001")["birthDate"]
    links = {User.get_by_id(link.guardian_id).sourced_id: link.relationship
             for link in StudentGuardian.select().where(StudentGuardian.student == student.id)}
    assert links == {"u-ph-00001-m": "mother", "u-ph-00001-f": "father"}
    mother = User.get(User.sourced_id == "u-ph-00001-m")
    assert mother.phone == "+84" + row_of(rs, "users.csv", "u-ph-00001-m")["phone"][1:]
    assert roster.children_of(mother.id)[0].id == student.id

    # the same files again: no INSERT, UPDATE or DELETE at all, every table identical
    before = dump_roster()
    caplog.set_level(logging.DEBUG, logger="peewee")
    started = time.monotonic()
    second = import_roster(rs.folder, school_ref=SCHOOL_SID)
    second_seconds = time.monotonic() - started
    statements = [r.msg[0].lstrip().upper() for r in caplog.records if r.name == "peewee" and isinstance(r.msg, tuple)]
    caplog.set_level(logging.WARNING, logger="peewee")
    assert any(s.startswith("SELECT") for s in statements)  # the log does see the queries
    assert [s for s in statements if s.startswith(("INSERT", "UPDATE", "DELETE"))] == []
    assert {k: v["unchanged"] for k, v in second["counts"].items()} == {k: v["created"] for k, v in c.items()}
    assert all(v["created"] == v["updated"] == v["removed"] == 0 for v in second["counts"].values())
    assert dump_roster() == before
    assert first_seconds < 20 and second_seconds < 20, (first_seconds, second_seconds)
    with capsys.disabled():
        print(f"\n[oneroster acceptance set on {app.config['LIENLAC'].database_url.split(':')[0]}] "
              f"first import {first_seconds:.2f} s, re-import {second_seconds:.2f} s")


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_a_bad_row_imports_nothing_and_names_file_line_and_column(app, tmp_path, kind):
    rs = write_roster(tmp_path / "set", bad=kind, **SMALL)
    before = dump_roster()
    with pytest.raises(RosterImportError) as exc:
        import_roster(rs.folder, school_ref=SCHOOL_SID)
    where = [{k: p[k] for k in ("file", "line", "column")} for p in exc.value.errors]
    assert rs.expected in where, exc.value.errors
    assert all(set(p) == {"file", "line", "column", "message"} and p["message"] for p in exc.value.errors)
    assert exc.value.status == 422
    assert dump_roster() == before


def test_a_conflict_found_in_the_database_imports_nothing(app, make, tmp_path):
    rs = write_roster(tmp_path / "set", **SMALL)
    other = make.school("Trường khác")
    klass = make.klass(other)
    taken = Student.create(school=other.id, school_class=klass.id, name="Học sinh khác", national_id="001100000007",
                           sourced_id="someone-else")
    before = dump_roster()
    with pytest.raises(RosterImportError) as exc:
        import_roster(rs.folder, school_ref=SCHOOL_SID)
    line = next(i for i, u in enumerate(rs.tables["users.csv"], 2) if u.get("identifier") == taken.national_id)
    assert [(p["file"], p["line"], p["column"]) for p in exc.value.errors] == [("users.csv", line, "identifier")]
    assert "001100000007" in format_problem(exc.value.errors[0])
    assert dump_roster() == before


def test_zip_and_folder_import_the_same_roster_and_an_otp_account_is_adopted(app, tmp_path):
    rs = write_roster(tmp_path / "set", **SMALL)
    mother_row = row_of(rs, "users.csv", "u-ph-00003-m")
    otp_user = roster.ensure_user(mother_row["phone"], "")  # as a first OTP login creates it
    result = import_roster(rs.zip(tmp_path / "roster.zip"), school_ref=SCHOOL_SID)
    assert result["counts"]["students"]["created"] == 30
    assert result["counts"]["guardians"] == {"created": 44, "updated": 1, "unchanged": 0, "removed": 0}
    adopted = User.get_by_id(otp_user.id)
    assert adopted.sourced_id == "u-ph-00003-m"
    assert adopted.name == f"{mother_row['familyName']} {mother_row['middleName']} {mother_row['givenName']}"
    assert [s.sourced_id for s in roster.children_of(otp_user.id)] == ["u-hs-00003"]

    before = dump_roster()
    again = import_roster(rs.folder, school_ref=str(result["school_id"]))  # the folder, by our school id
    assert all(v["created"] == v["updated"] == v["removed"] == 0 for v in again["counts"].values())
    assert dump_roster() == before


def test_changes_and_tobedeleted_rows_are_applied(app, tmp_path):
    rs = write_roster(tmp_path / "set", **SMALL)
    import_roster(rs.folder, school_ref=SCHOOL_SID)
    t = rs.tables
    row_of(rs, "classes.csv", "cls-10a1")["title"] = "10A1 (chuyên Toán)"
    next(e for e in t["enrollments.csv"] if e["userSourcedId"] == "u-hs-00001")["classSourcedId"] = "cls-11a1"
    next(e for e in t["enrollments.csv"] if e["userSourcedId"] == "u-hs-00002")["status"] = "tobedeleted"
    row_of(rs, "users.csv", "u-ph-00005-f")["status"] = "tobedeleted"
    row_of(rs, "demographics.csv", "u-ph-00004-m")["sex"] = ""  # parent, sex unknown: stays "mother"
    for name in ("classes.csv", "enrollments.csv", "users.csv", "demographics.csv"):
        rewrite_csv(rs.folder / name, t[name])

    result = import_roster(rs.folder, school_ref=SCHOOL_SID)["counts"]
    assert result["classes"]["updated"] == 1 and result["students"]["updated"] == 1
    assert result["students"]["removed"] == 1 and result["guardian_links"]["removed"] == 1
    assert result["guardian_links"]["updated"] == 0 and result["guardians"]["created"] == 0
    assert SchoolClass.get(SchoolClass.sourced_id == "cls-10a1").name == "10A1 (chuyên Toán)"
    moved = Student.get(Student.sourced_id == "u-hs-00001")
    assert moved.school_class_id == SchoolClass.get(SchoolClass.sourced_id == "cls-11a1").id
    assert Student.get(Student.sourced_id == "u-hs-00002").school_class_id is None
    father = User.get(User.sourced_id == "u-ph-00005-f")
    assert roster.children_of(father.id) == []
    mother4 = User.get(User.sourced_id == "u-ph-00004-m")
    assert StudentGuardian.get(StudentGuardian.guardian == mother4.id).relationship == "mother"

    before = dump_roster()  # and the changed set is itself idempotent
    again = import_roster(rs.folder, school_ref=SCHOOL_SID)["counts"]
    assert all(v["created"] == v["updated"] == v["removed"] == 0 for v in again.values())
    assert dump_roster() == before


def test_cli_import_roster_prints_a_summary(tmp_path):
    rs = write_roster(tmp_path / "set", **SMALL)
    db_path = tmp_path / "cli.sqlite3"
    env = process_env(f"sqlite:///{db_path}", None, tmp_path, SOCKETIO_CHANNEL=f"t-{uuid.uuid4().hex}")
    proc = subprocess.run(lienlac("import-roster", str(rs.zip(tmp_path / "r.zip")), "--school", SCHOOL_SID),
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Trường THPT Kim Liên" in proc.stdout
    for kind, created in (("classes", 3), ("students", 30), ("guardians", 45), ("guardian_links", 45), ("staff", 5)):
        assert re.search(rf"^\s*{kind}\s+{created}\s+0\s+0\s+0\s*$", proc.stdout, re.M), proc.stdout
    assert "Imported in" in proc.stdout
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM student WHERE sourced_id IS NOT NULL").fetchone() == (30,)
        assert conn.execute("SELECT count(*) FROM student_guardian").fetchone() == (45,)


def _upload(client, school_id, headers, payload, name="roster.zip"):
    return client.post(f"/api/v1/schools/{school_id}/roster-imports", headers=headers,
                       data={"file": (io.BytesIO(payload), name)}, content_type="multipart/form-data")


def test_admin_upload_runs_as_a_job_and_reports_status(client, make, tmp_path):
    school = make.school("Trường THPT Kim Liên (tạo tay)")
    admin = make.admin(school)
    headers = make.headers(admin)
    rs = write_roster(tmp_path / "set", **SMALL)
    r = _upload(client, school.id, headers, rs.zip(tmp_path / "ok.zip").read_bytes())
    assert r.status_code == 202, r.json
    assert set(r.json) == {"id", "status"} and isinstance(r.json["id"], str)
    assert r.json["status"] == "done"  # jobs run inline in tests
    status = client.get(f"/api/v1/roster-imports/{r.json['id']}", headers=headers)
    assert status.status_code == 200, status.json
    body = status.json
    assert (body["status"], body["school_id"], body["errors"]) == ("done", str(school.id), [])
    assert body["counts"]["students"] == {"created": 30, "updated": 0, "unchanged": 0, "removed": 0}
    assert body["counts"]["schools"] == {"created": 0, "updated": 1, "unchanged": 0, "removed": 0}
    assert body["finished_at"].endswith("Z")
    assert School.get_by_id(school.id).sourced_id == SCHOOL_SID  # adopted, not a second school
    assert Student.select().where(Student.school == school.id).count() == 30

    # a file with a bad row: the job fails and names the row; nothing more is written
    before = dump_roster()
    bad = write_roster(tmp_path / "bad", bad="unknown_reference", **SMALL)
    r = _upload(client, school.id, headers, bad.zip(tmp_path / "bad.zip").read_bytes())
    assert r.status_code == 202 and r.json["status"] == "failed"
    body = client.get(f"/api/v1/roster-imports/{r.json['id']}", headers=headers).json
    assert body["status"] == "failed" and body["counts"] is None
    assert {k: body["errors"][0][k] for k in ("file", "line", "column")} == bad.expected
    assert dump_roster() == before

    # not a zip, or no file at all: 422 at once
    r = _upload(client, school.id, headers, b"sourcedId,name\n", name="orgs.csv")
    assert_error(r, 422)
    r = client.post(f"/api/v1/schools/{school.id}/roster-imports", headers=headers, data={},
                    content_type="multipart/form-data")
    assert r.status_code == 422

    # a guardian: 403; the admin of another school: 404
    guardian = make.family()["guardian"]
    assert _upload(client, school.id, make.headers(guardian), b"x").status_code == 403
    assert client.get(f"/api/v1/roster-imports/{body['id']}", headers=make.headers(guardian)).status_code == 403
    stranger = make.admin(make.school("Trường khác"))
    assert _upload(client, school.id, make.headers(stranger), b"x").status_code == 404
    assert client.get(f"/api/v1/roster-imports/{body['id']}", headers=make.headers(stranger)).status_code == 404
    assert client.get("/api/v1/roster-imports/999999", headers=headers).status_code == 404


def test_a_teacher_who_is_also_a_parent_gets_one_account(app, tmp_path):
    rs = write_roster(tmp_path / "set", **SMALL)
    users = rs.tables["users.csv"]
    teacher = row_of(rs, "users.csv", "u-gv-002")
    parent = row_of(rs, "users.csv", "u-ph-00007-m")
    parent["phone"] = "+84 " + teacher["phone"][1:]  # the same number, written another way
    users.remove(parent)
    users.insert(0, parent)  # the parent row comes first
    rewrite_csv(rs.folder / "users.csv", users)
    counts = import_roster(rs.folder, school_ref=SCHOOL_SID)["counts"]
    assert counts["guardians"]["created"] == 44 and counts["guardian_links"]["created"] == 45
    account = User.get(User.sourced_id == "u-gv-002")
    assert [s.sourced_id for s in roster.children_of(account.id)] == ["u-hs-00007"]
    assert roster.has_staff_role(account.id, School.get(School.sourced_id == SCHOOL_SID).id, ["teacher"])
    assert not User.select().where(User.sourced_id == "u-ph-00007-m").exists()

    # two parents with one phone is not a merge: the later one is imported without it, with a warning
    old_phone = User.get(User.sourced_id == "u-ph-00009-m").phone
    row_of(rs, "users.csv", "u-ph-00009-m")["phone"] = row_of(rs, "users.csv", "u-ph-00008-m")["phone"]
    rewrite_csv(rs.folder / "users.csv", users)
    result = import_roster(rs.folder, school_ref=SCHOOL_SID)
    line = next(i for i, u in enumerate(users, 2) if u["sourcedId"] == "u-ph-00009-m")
    assert [(w["file"], w["line"], w["column"]) for w in result["warnings"] if w["line"] == line] == [
        ("users.csv", line, "phone")]
    assert User.get(User.sourced_id == "u-ph-00009-m").phone == old_phone  # not taken away either


def test_lines_count_quoted_newlines_and_every_problem_is_reported(tmp_path):
    from service.roster.oneroster import Problems, parse, read_files

    rs = write_roster(tmp_path / "set", **SMALL)
    classes = rs.tables["classes.csv"]
    classes[0]["title"] = "10A1\n(lớp chọn)"  # a quoted field over two lines
    classes[1]["grades"] = "15"
    rewrite_csv(rs.folder / "classes.csv", classes)
    sessions = rs.tables["academicSessions.csv"]
    sessions[1]["startDate"] = "05/09/2026"
    rewrite_csv(rs.folder / "academicSessions.csv", sessions)
    problems = Problems()
    parse(read_files(rs.folder, problems), problems)
    assert [(p["file"], p["line"], p["column"]) for p in problems.items] == [("academicSessions.csv", 3, "startDate")]
    # grade 15 is no Vietnamese grade: imported without a grade, with a warning on the right line
    assert ("classes.csv", 4, "grades") in [(w["file"], w["line"], w["column"]) for w in problems.warnings]
