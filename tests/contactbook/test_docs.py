"""The contact book's paths of the mobile contract (API.md "Contact book", first half) are in mobile_api_docs/."""
from __future__ import annotations

import json
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "mobile_api_docs"

CONTRACT_PATHS = {
    "/api/v1/classes/{class_id}/attendance": {"post"},
    "/api/v1/students/{student_id}/attendance": {"get"},
    "/api/v1/schools/{school_id}/gate-devices": {"post"},
    "/api/v1/gate-devices/{device_id}": {"delete"},
    "/api/v1/checkins": {"post"},
    "/api/v1/students/{student_id}/leave-requests": {"get", "post"},
    "/api/v1/classes/{class_id}/leave-requests": {"get"},
    "/api/v1/leave-requests/{leave_request_id}/decision": {"post"},
    "/api/v1/leave-requests/{leave_request_id}/cancel": {"post"},
    "/api/v1/students/{student_id}/contact-book": {"get"},
}


def test_contact_book_paths_are_documented():
    paths = json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))["paths"]
    for path, methods in CONTRACT_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, methods, set(paths[path]))


def test_checkins_take_a_device_key_not_a_user_token():
    doc = json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))
    assert doc["paths"]["/api/v1/checkins"]["post"]["security"] == [{"deviceKey": []}]
    assert doc["components"]["securitySchemes"]["deviceKey"] == {
        "type": "apiKey", "in": "header", "name": "X-Device-Key",
        "description": "A gate device's API key (POST /schools/{id}/gate-devices shows it once)."}
