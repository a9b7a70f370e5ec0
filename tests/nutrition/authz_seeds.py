"""Nutrition in the authorization matrix (tests/support/authz.py): school A's dishes, a published and
a draft menu, family A's child's allergies and a meal log of class 1A; school B's dish for the body
references; the values the generated calls need; and the reaches that are legitimate (nutrition/policy.py,
API.md "Nutrition")."""
from __future__ import annotations

import datetime as dt

from tests.support.authz import allow, elsewhere, given, seeder

#: fixed days far from any real "today": the published menu's day and the draft's (a Monday and a Tuesday)
PUBLISHED_DAY = dt.date(2027, 3, 1)
DRAFT_DAY = dt.date(2027, 3, 2)
NEW_DAY = dt.date(2027, 3, 3)  # the day the generated PUT .../menus/{date} drafts


def _dish(values: dict) -> dict:
    base = {"kcal": 250, "protein_g": 10, "fat_g": 8, "carbs_g": 30, "allergens": []}
    return {**base, **values}


@seeder
def _nutrition(w) -> None:
    from nutrition import logic as nutrition

    o, r = w.objects, w.roles
    a, b = o["school_a"].id, o["school_b"].id
    o["dish_a"] = nutrition.create_dish(r["cafeteria"], a, _dish({"name": "Cơm gà", "allergens": ["egg"]}))
    o["dish_a2"] = nutrition.create_dish(r["admin_a"], a, _dish({"name": "Canh bí", "kcal": 40}))
    o["dish_b"] = nutrition.create_dish(r["admin_other_school"], b, _dish({"name": "Phở bò"}))
    lunch = [{"meal": "lunch", "dish_ids": [o["dish_a"]["id"], o["dish_a2"]["id"]]}]
    nutrition.put_menu(r["cafeteria"], a, PUBLISHED_DAY, lunch)
    nutrition.publish(r["cafeteria"], a, PUBLISHED_DAY, PUBLISHED_DAY, today=PUBLISHED_DAY)
    nutrition.put_menu(r["cafeteria"], a, DRAFT_DAY, [{"meal": "lunch", "dish_ids": [o["dish_a2"]["id"]]}])
    nutrition.set_allergies(r["guardian_a"], o["child_a"].id, ["peanut"], today=PUBLISHED_DAY)
    nutrition.log_meals(r["homeroom_a"], o["class_a"].id, PUBLISHED_DAY, "lunch",
                        [{"student_id": o["child_a"].id, "portion": "most"}])


given("dish_id")(lambda w, family: w.objects["dish_a"]["id"])
elsewhere("dish_id")(lambda w: w.objects["dish_b"]["id"])  # also stands for dish_ids

# bodies and the menu's day
given("date", under="/schools/{school_id}/menus/{date}")(lambda w, family: NEW_DAY.isoformat())
given("meals", under="/schools/{school_id}/menus/")(
    lambda w, family: [{"meal": "lunch", "dish_ids": [w.objects["dish_a"]["id"]]}])
given("from", under="/schools/{school_id}/menus/publish")(lambda w, family: DRAFT_DAY.isoformat())
given("to", under="/schools/{school_id}/menus/publish")(lambda w, family: DRAFT_DAY.isoformat())
given("name", under="/schools/{school_id}/dishes/{dish_id}")(lambda w, family: "Cơm gà (đổi tên)")
given("date", under="/classes/{class_id}/meal-logs")(lambda w, family: PUBLISHED_DAY.isoformat())
given("meal", under="/classes/{class_id}/meal-logs")(lambda w, family: "lunch")
given("entries", under="/classes/{class_id}/meal-logs")(
    lambda w, family: [{"student_id": str(w.objects["child_a"].id), "portion": "half"}])
given("dish_ids", under="/classes/{class_id}/meal-logs")(lambda w, family: [w.objects["dish_a2"]["id"]])
given("allergens", under="/students/{student_id}/allergies")(lambda w, family: ["peanut", "milk"])

# --- legitimate reaches ---------------------------------------------------------------------------
CATALOGUE_READS = ("GET /schools/{school_id}/dishes", "GET /schools/{school_id}/dishes/{dish_id}",
                   "GET /schools/{school_id}/menus")
CATALOGUE_WRITES = ("POST /schools/{school_id}/dishes", "PATCH /schools/{school_id}/dishes/{dish_id}",
                    "DELETE /schools/{school_id}/dishes/{dish_id}", "PUT /schools/{school_id}/menus/{date}",
                    "POST /schools/{school_id}/menus/publish")
for _op in CATALOGUE_READS:
    for _role in ("cafeteria", "teacher_other_class", "teacher_removed"):
        allow(_role, *_op.split(" "), reason="staff of school A read its dishes and menus (drafts too): the "
                                             "menu is the school's, not a class's or a family's")
    for _role in ("guardian_other_family", "guardian_other_class"):
        allow(_role, *_op.split(" "), reason="a guardian of a student of school A reads the school's dishes and "
                                             "published menus (one menu for the whole school)")
for _op in CATALOGUE_WRITES:
    allow("cafeteria", *_op.split(" "), reason="the school's cafeteria staff write its dishes and menus (API.md)")
allow("cafeteria", "POST", "/classes/{class_id}/meal-logs",
      "the school's cafeteria staff write every class's meal logs (API.md)")
allow("cafeteria", "GET", "/students/{student_id}/allergies",
      "the cafeteria reads the children's allergens to serve them safely (it sees the school's students)")
allow("cafeteria", "GET", "/students/{student_id}/meals",
      "the cafeteria sees the school's students, and so what they were served and ate")
