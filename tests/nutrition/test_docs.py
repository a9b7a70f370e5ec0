"""The nutrition endpoints and the allergen list are in mobile_api_docs/ (issue 11, acceptance 4)."""
from __future__ import annotations

import json
from pathlib import Path

from nutrition.constants import ALLERGENS

DOCS = Path(__file__).resolve().parents[2] / "mobile_api_docs"

PATHS = {
    "/api/v1/schools/{school_id}/dishes": {"get", "post"},
    "/api/v1/schools/{school_id}/dishes/{dish_id}": {"get", "patch", "delete"},
    "/api/v1/schools/{school_id}/menus/{date}": {"put"},
    "/api/v1/schools/{school_id}/menus/publish": {"post"},
    "/api/v1/schools/{school_id}/menus": {"get"},
    "/api/v1/students/{student_id}/allergies": {"get", "put"},
    "/api/v1/classes/{class_id}/meal-logs": {"post"},
    "/api/v1/students/{student_id}/meals": {"get"},
}


def test_nutrition_paths_and_allergens_are_documented():
    openapi = json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))
    for path, methods in PATHS.items():
        assert methods <= set(openapi["paths"].get(path, {})), path
    schemas = openapi["components"]["schemas"]
    for name in ("DishIn", "DishOut", "AllergiesIn", "AllergiesOut"):
        assert schemas[name]["properties"]["allergens"]["items"]["enum"] == list(ALLERGENS), name
    guide = (DOCS / "GUIDE.md").read_text(encoding="utf-8")
    assert all(f"`{a}`" in guide for a in ALLERGENS)
