"""mobile_api_docs/ is generated from the code: fail when the checked-in copy drifts,
and when a path or event of the mobile contract (../shared/API.md) is missing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import apidocs
from service.app import create_app
from service.config import Config

DOCS = Path(__file__).resolve().parents[1] / "mobile_api_docs"


@pytest.fixture(scope="module")
def documents():
    app = create_app(Config(database_url="sqlite:///:memory:", secret_key="docs"), web=False)
    return apidocs.documents(app)


@pytest.mark.parametrize("name", ["openapi.json", "asyncapi.json"])
def test_checked_in_docs_match_the_code(documents, name):
    on_disk = (DOCS / name).read_text(encoding="utf-8")
    assert on_disk == apidocs.render(documents[name]), (
        f"mobile_api_docs/{name} is out of date: run `lienlac docs` and commit the result")


CONTRACT_PATHS = {
    "/api/v1/auth/login": {"post"},
    "/api/v1/auth/otp/request": {"post"},
    "/api/v1/auth/otp/verify": {"post"},
    "/api/v1/auth/refresh": {"post"},
    "/api/v1/auth/logout": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/guardians/claim": {"post"},
    "/api/v1/conversations": {"get", "post"},
    "/api/v1/conversations/{conversation_id}/messages": {"get", "post"},
    "/api/v1/conversations/{conversation_id}/read": {"post"},
    "/api/v1/conversations/{conversation_id}/receipts": {"get"},
    "/api/v1/devices": {"post"},
    "/api/v1/devices/{token}": {"delete"},
    "/api/v1/notifications": {"get"},
    "/api/v1/notifications/{notification_id}/read": {"post"},
    "/api/v1/me/preferences": {"get", "put"},
    "/api/v1/announcements": {"post"},
    "/api/v1/announcements/{announcement_id}": {"get"},
    "/api/v1/announcements/{announcement_id}/ack": {"post"},
    "/api/v1/classes/{class_id}/timetable": {"put"},
    "/api/v1/classes/{class_id}/timetable/changes": {"post"},
    "/api/v1/students/{student_id}/timetable": {"get"},
    "/api/v1/schools/{school_id}/events": {"post"},
    "/api/v1/students/{student_id}/calendar": {"get"},
    "/api/v1/events/{event_id}/signups": {"post"},
    "/api/v1/me/calendar-feed": {"post", "delete"},
    "/api/v1/calendar/{feed_token}.ics": {"get"},
    "/api/v1/classes/{class_id}/grades": {"put"},
    "/api/v1/classes/{class_id}/grades/publish": {"post"},
    "/api/v1/students/{student_id}/grades": {"get"},
    "/api/v1/students/{student_id}/remarks": {"post"},
    "/api/v1/students/{student_id}/report": {"get"},
    "/api/v1/terms/{term_id}": {"get"},
    "/api/v1/schools/{school_id}/years": {"get"},
}

CONTRACT_EVENTS = {
    ("message:send", "client"), ("message:read", "client"), ("typing", "client"),
    ("message:new", "server"), ("message:read", "server"), ("typing", "server"), ("notification:new", "server"),
}


def test_contract_paths_are_served(documents):
    paths = documents["openapi.json"]["paths"]
    for path, methods in CONTRACT_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, methods, set(paths[path]))


def test_contract_events_are_documented(documents):
    channels = documents["asyncapi.json"]["channels"]
    documented = {(c["address"], key.rsplit("_", 1)[1]) for key, c in channels.items()}
    assert CONTRACT_EVENTS <= documented, CONTRACT_EVENTS - documented


def _deref(doc, node):
    """Follow ``$ref`` pointers (``#/components/...``) until a plain object."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method != "parameters":
                yield path, method, op, ops.get("parameters", [])


def test_every_operation_has_a_summary_and_documents_errors(documents):
    doc = documents["openapi.json"]
    problems = []
    for path, method, op, shared_params in _operations(doc):
        where = f"{method.upper()} {path}"
        if not (op.get("summary") or op.get("description")):
            problems.append(f"{where}: no docstring")
        responses = op["responses"]
        params = [_deref(doc, p) for p in op.get("parameters", []) + shared_params]
        if any(p.get("in") == "path" for p in params) and "404" not in responses:
            problems.append(f"{where}: takes an object id but documents no 404")
        if "requestBody" in op and "422" not in responses:
            problems.append(f"{where}: takes a body but documents no 422")
        if "default" not in responses:
            problems.append(f"{where}: no default (error) response")
        for code, response in responses.items():
            if code == "default" or code.startswith(("4", "5")):
                schema = _deref(doc, _deref(doc, response).get("content", {}).get("application/json", {})
                                .get("schema", {}))
                if set(_deref(doc, schema).get("properties", {})) != {"error"}:
                    problems.append(f"{where}: {code} is not the error envelope")
    assert not problems, "\n".join(problems)


def test_asyncapi_is_valid_json_with_channels(documents):
    doc = json.loads(apidocs.render(documents["asyncapi.json"]))
    assert doc["asyncapi"].startswith("3.")
    channels, operations = doc["channels"], doc["operations"]
    assert channels and operations
    for key, channel in channels.items():
        assert channel["address"] and channel["messages"], key
        for name, message in channel["messages"].items():
            payload = _deref(doc, message.get("payload", {}))
            assert payload.get("type") == "object" or payload.get("properties"), f"{key}/{name} has no payload schema"
    for key, operation in operations.items():
        assert operation["action"] in ("send", "receive"), key
        assert _deref(doc, operation["channel"]) in channels.values(), f"{key} points at no channel"
