"""Bad input gets a clear 4xx with the API.md error envelope and changes nothing; never a 500.

Found by fuzzing the service endpoints (schemathesis) and by hand; each test failed before its fix.
"""
from __future__ import annotations

import base64
import io
import json

import pytest

from service.roster import logic as roster
from service.accounts.models import User
from service.roster.models import ClassTeacher, SchoolClass, Student, StudentGuardian

from ..support.errors import assert_error
from ..support.oneroster_gen import rewrite_csv, write_roster

API = "/api/v1"
NUL = "Lớp\u00001A"


@pytest.fixture
def world(make):
    fast = make.fast()
    school = make.school()
    admin = fast.staff(school, "admin", "Hiệu trưởng")
    teacher = fast.staff(school, "teacher", "Cô Lan")
    klass = make.klass(school, homeroom=teacher)
    student = make.student(klass)
    return {"fast": fast, "school": school, "admin": admin, "teacher": teacher, "klass": klass,
            "student": student, "h": fast.headers(admin)}


def snapshot():
    return [list(m.select().order_by(m.id).tuples()) for m in (User, SchoolClass, Student, StudentGuardian,
                                                               ClassTeacher)]


def _raw(client, method, path, data, headers, content_type="application/json"):
    return client.open(API + path, method=method, data=data, headers=headers, content_type=content_type)


# --- JSON that does not parse: 400 (API.md), whatever the endpoint ------------------------------
UNPARSEABLE = {
    "truncated": '{"name": "10A1",',
    "deep": "[" * 5000 + "]" * 5000,  # nested beyond the parser's recursion limit (was a 500)
    "huge-int": '{"grade": 1' + "0" * 5000 + "}",  # an integer literal of 5000 digits (was a 500)
    "nan": '{"name": NaN}',  # not JSON
    "latin1": '{"name": "\xff"}'.encode("latin-1"),  # not UTF-8
}


def test_unparseable_json_is_400(client, world):
    before = snapshot()
    for case, data in UNPARSEABLE.items():
        for method, path in (("POST", "/auth/login"), ("PATCH", "/me"),
                             ("POST", f"/schools/{world['school'].id}/classes")):
            error = assert_error(_raw(client, method, path, data, world["h"]), 400, "validation_error")
            assert "JSON" in error["message"], (case, path)
    assert snapshot() == before


# --- text PostgreSQL cannot store (NUL) or UTF-8 cannot encode (lone surrogates): 422 ------------
def _text_cases(w):
    s, k, st, t = w["school"].id, w["klass"].id, w["student"].id, w["teacher"].id
    return [
        ("PATCH", "/me", {"name": "{x}"}, "name"),
        ("PATCH", "/me", {"password": "mat-khau-{x}"}, "password"),
        ("POST", f"/schools/{s}/years", {"name": "{x}", "starts_on": "2030-09-01", "ends_on": "2031-05-31"}, "name"),
        ("POST", f"/schools/{s}/staff", {"phone": "+84912000555", "name": "{x}", "role": "teacher"}, "name"),
        ("POST", f"/schools/{s}/classes", {"name": "{x}"}, "name"),
        ("PATCH", f"/classes/{k}", {"name": "{x}"}, "name"),
        ("POST", f"/classes/{k}/teachers", {"teacher_id": str(t), "subject": "{x}"}, "subject"),
        ("POST", f"/schools/{s}/students", {"name": "{x}"}, "name"),
        ("PATCH", f"/students/{st}", {"name": "{x}"}, "name"),
        ("POST", f"/students/{st}/guardians", {"phone": "+84912000556", "name": "Mẹ", "relationship": "{x}"},
         "relationship"),
        ("POST", f"/students/{st}/invites", {"relationship": "{x}"}, "relationship"),
        ("POST", "/auth/login", {"phone": "+84912000557", "password": "{x}"}, "password"),
    ]


def test_unstorable_text_is_422_naming_the_field_and_changes_nothing(client, world):
    before = snapshot()
    for escaped in ("\\u0000", "\\ud800"):  # NUL, a lone surrogate (JSON escapes)
        for method, path, body, field in _text_cases(world):
            data = json.dumps(body).replace("{x}", "A" + escaped + "B")
            error = assert_error(_raw(client, method, path, data, world["h"]), 422)
            assert list(error["fields"]) == [field], (escaped, path, error)
    assert snapshot() == before


def test_nul_in_query_arguments_and_upload_names_is_422(client, world):
    k, t = world["klass"].id, world["teacher"].id
    world_h = world["h"]
    roster.assign_subject_teacher(k, t, "Toán")
    before = snapshot()
    error = assert_error(client.delete(f"{API}/classes/{k}/teachers/{t}?subject=To%00an", headers=world_h), 422)
    assert list(error["fields"]) == ["subject"]
    r = client.post(f"{API}/schools/{world['school'].id}/roster-imports", headers=world_h,
                    data={"file": (io.BytesIO(b"PK"), "roster\u0000.zip")}, content_type="multipart/form-data")
    assert list(assert_error(r, 422)["fields"]) == ["file"]
    nameless = b'--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n'  # a part without a name
    r = client.post(f"{API}/schools/{world['school'].id}/roster-imports", headers=world_h, data=nameless,
                    content_type="multipart/form-data; boundary=b")
    assert list(assert_error(r, 422)["fields"]) == ["file"]
    assert snapshot() == before


def test_a_roster_file_with_nul_names_the_cell_and_imports_nothing(client, world, tmp_path):
    rs = write_roster(tmp_path / "set", classes=2, students=4, guardians=4, teachers=2, admins=1)
    users = rs.tables["users.csv"]
    users[2]["givenName"] = "An\u0000"
    rewrite_csv(rs.folder / "users.csv", users)
    before = snapshot()
    r = client.post(f"{API}/schools/{world['school'].id}/roster-imports", headers=world["h"],
                    data={"file": (io.BytesIO(rs.zip(tmp_path / "r.zip").read_bytes()), "r.zip")},
                    content_type="multipart/form-data")
    assert r.status_code == 202 and r.json["status"] == "failed", r.json
    body = client.get(f"{API}/roster-imports/{r.json['id']}", headers=world["h"]).json
    assert [(e["file"], e["line"], e["column"]) for e in body["errors"]] == [("users.csv", 4, "givenName")], body
    assert snapshot() == before


# --- numbers beyond a BIGINT -------------------------------------------------------------------
def test_ids_beyond_bigint_in_paths_are_404(client, world):
    s, k, st = world["school"].id, world["klass"].id, world["student"].id
    before = snapshot()
    for big in (2**63, 2**70):
        for method, path in (("GET", f"/roster-imports/{big}"), ("DELETE", f"/schools/{s}/staff/{big}"),
                             ("DELETE", f"/classes/{k}/teachers/{big}"), ("DELETE", f"/students/{st}/guardians/{big}"),
                             ("GET", f"/students/{big}"), ("POST", f"/years/{big}/terms")):
            assert_error(client.open(API + path, method=method, headers=world["h"], json={}), 404, "not_found")
    assert snapshot() == before


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_cursors_out_of_range_or_too_deep_are_422(client, world):
    s = world["school"].id
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    for cursor in (_cursor(10**24), _cursor(-(2**70)), _cursor(True), deep):
        for path in (f"/schools/{s}/students", f"/schools/{s}/staff", f"/classes/{world['klass'].id}/students"):
            error = assert_error(client.get(f"{API}{path}?cursor={cursor}", headers=world["h"]), 422)
            assert list(error["fields"]) == ["cursor"]


# --- the OpenAPI document describes the errors as they are sent -------------------------------
def test_openapi_documents_the_error_envelope(client):
    spec = client.get(f"{API}/openapi.json").get_json()
    responses = spec["components"]["responses"]
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):
        assert responses[name]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"}, name
    assert "Error" not in spec["components"]["schemas"]  # flask-smorest's own {code, status, ...}
    param = next(p for p in spec["paths"]["/api/v1/students/{student_id}"]["parameters"] if p["name"] == "student_id")
    assert param["schema"]["maximum"] == 2**63 - 1
