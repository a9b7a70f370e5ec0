"""Nutrition end to end through HTTP: dishes, menus, allergy alerts, meal logs, intake (issue 11)."""
from __future__ import annotations

import datetime as dt

from service.roster import logic as roster

API = "/api/v1"


class Api:
    def __init__(self, client, make):
        self.client, self.make, self._headers = client, make, {}

    def h(self, user):
        if user.id not in self._headers:
            self._headers[user.id] = self.make.headers(user)
        return self._headers[user.id]

    def call(self, method, user, path, json=None, **kw):
        return self.client.open(API + path, method=method, headers=self.h(user), json=json, **kw)

    def notices(self, user, kind=None):
        items = self.call("GET", user, "/notifications?limit=200").get_json()["items"]
        items = [n for n in items if n["category"] == "meal"]
        return [n for n in items if kind is None or n["data"].get("kind") == kind]


DISHES = {
    "com_ga": {"name": "Cơm gà xé", "kcal": 420.5, "protein_g": 22.3, "fat_g": 12.1, "carbs_g": 55,
               "fibre_g": 1.2, "allergens": []},
    "banh_lac": {"name": "Bánh quy lạc", "kcal": 180.25, "protein_g": 5.1, "fat_g": 9.75, "carbs_g": 20.4,
                 "allergens": ["peanut", "wheat"]},
    "sua_chua": {"name": "Sữa chua", "kcal": 95, "protein_g": 3.5, "fat_g": 3.25, "carbs_g": 14,
                 "sodium_mg": 46, "allergens": ["milk"]},
    "trung": {"name": "Trứng hấp", "kcal": 80, "protein_g": 6.5, "fat_g": 5.5, "carbs_g": 0.6, "allergens": ["egg"]},
}


def _setup(client, make, w):
    api = Api(client, make)
    s = w["school"].id
    ids = {}
    for key, body in DISHES.items():
        r = api.call("POST", w["cafeteria"], f"/schools/{s}/dishes", body)
        assert r.status_code == 201, r.get_json()
        ids[key] = int(r.get_json()["id"])
    return api, ids


def _week(api, w, ids):
    """Mon-Fri: lunch com_ga; snack banh_lac (peanuts) Mon and Wed, sua_chua every day."""
    s, monday = w["school"].id, w["monday"]
    for i in range(5):
        day = monday + dt.timedelta(days=i)
        snack = ([ids["banh_lac"]] if i in (0, 2) else []) + [ids["sua_chua"]]
        r = api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{day}",
                     {"meals": [{"meal": "lunch", "dish_ids": [ids["com_ga"]]}, {"meal": "snack", "dish_ids": snack}]})
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["status"] == "draft" and r.get_json()["meals"] == []


def test_acceptance_week_with_peanuts(client, make, world):
    w = world
    api, ids = _setup(client, make, w)
    s, monday, anh = w["school"].id, w["monday"], w["anh"]
    friday = monday + dt.timedelta(days=4)
    r = api.call("PUT", w["mother"], f"/students/{anh.id}/allergies", {"allergens": ["peanut"]})
    assert r.status_code == 200 and r.get_json() == {"allergens": ["peanut"]}
    _week(api, w, ids)
    # drafts: staff see them, the guardian sees nothing yet and nobody was told
    assert api.call("GET", w["mother"], f"/schools/{s}/menus?from={monday}&to={friday}").get_json() == {"days": []}
    staff_view = api.call("GET", w["cafeteria"], f"/schools/{s}/menus?from={monday}&to={friday}").get_json()
    assert [d["status"] for d in staff_view["days"]] == ["draft"] * 5
    assert api.notices(w["mother"]) == []

    r = api.call("POST", w["cafeteria"], f"/schools/{s}/menus/publish", {"from": str(monday), "to": str(friday)})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["published"] == [str(monday + dt.timedelta(days=i)) for i in range(5)]
    assert r.get_json()["notified"] is True

    # the guardian: one menu notice, and one allergy alert per peanut day (Mon, Wed), before the day
    menu_notices = api.notices(w["mother"], "menu")
    assert len(menu_notices) == 1
    alerts = api.notices(w["mother"], "allergy")
    assert sorted(a["data"]["date"] for a in alerts) == [str(monday), str(monday + dt.timedelta(days=2))]
    for a in alerts:
        assert a["data"]["student_id"] == str(anh.id) and a["data"]["dish_id"] == str(ids["banh_lac"])
        assert a["data"]["allergen"] == "peanut" and "Nguyễn Minh Anh" in a["body"] and "Bánh quy lạc" in a["body"]
    # the cafeteria staff get the same alerts; Bình's parent only the menu notice; the other school nothing
    assert len(api.notices(w["cafeteria"], "allergy")) == 2
    assert len(api.notices(w["binh_parent"], "menu")) == 1 and api.notices(w["binh_parent"], "allergy") == []
    assert api.notices(w["other_cafeteria"]) == []

    # publishing again with nothing changed tells nobody
    r = api.call("POST", w["admin"], f"/schools/{s}/menus/publish", {"from": str(monday), "to": str(friday)})
    assert r.get_json()["published"] == [] and r.get_json()["notified"] is False
    assert len(api.notices(w["mother"])) == 3 and len(api.notices(w["cafeteria"])) == 2

    # a change to a published day: families keep the old menu until it is published, then are told once
    tuesday = monday + dt.timedelta(days=1)
    api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{tuesday}",
             {"meals": [{"meal": "lunch", "dish_ids": [ids["com_ga"], ids["trung"]]}]})
    api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{tuesday}",
             {"meals": [{"meal": "lunch", "dish_ids": [ids["com_ga"]]}, {"meal": "snack", "dish_ids": [ids["trung"]]}]})
    day = api.call("GET", w["mother"], f"/schools/{s}/menus?from={tuesday}&to={tuesday}").get_json()["days"][0]
    assert [m["meal"] for m in day["meals"]] == ["lunch", "snack"]
    assert [d["name"] for d in day["meals"][1]["dishes"]] == ["Sữa chua"]
    staff_day = api.call("GET", w["cafeteria"], f"/schools/{s}/menus?from={tuesday}&to={tuesday}").get_json()["days"][0]
    assert staff_day["status"] == "changed"
    r = api.call("POST", w["cafeteria"], f"/schools/{s}/menus/publish", {"from": str(monday), "to": str(friday)})
    assert r.get_json()["published"] == [str(tuesday)]
    menu_notices = api.notices(w["mother"], "menu")
    assert len(menu_notices) == 2 and menu_notices[0]["data"]["dates"] == [str(tuesday)]
    assert len(api.notices(w["mother"], "allergy")) == 2

    # the meal logs of Monday: one request per class and meal; the snack flags the peanuts
    entries = [{"student_id": str(anh.id), "portion": "most"}, {"student_id": str(w["binh"].id), "portion": "all"}]
    r = api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs",
                 {"date": str(monday), "meal": "lunch", "entries": entries})
    assert r.status_code == 200 and r.get_json() == {"logged": 2, "flags": []}
    entries = [{"student_id": str(anh.id), "portion": "half", "note": "Cháu không ăn bánh"},
               {"student_id": str(w["binh"].id), "portion": "little"}]
    r = api.call("POST", w["cafeteria"], f"/classes/{w['klass'].id}/meal-logs",
                 {"date": str(monday), "meal": "snack", "entries": entries})
    assert r.status_code == 200
    assert r.get_json() == {"logged": 2, "flags": [{"student_id": str(anh.id), "dish_id": str(ids["banh_lac"]),
                                                     "allergen": "peanut"}]}
    assert len(api.notices(w["mother"], "allergy")) == 2  # already alerted for this child, dish and day
    r = api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs",
                 {"date": str(tuesday), "meal": "lunch", "entries": [{"student_id": str(anh.id), "portion": "all"}]})
    assert r.status_code == 200

    # intake: hand-computed. Monday: 0.75 × cơm gà + 0.5 × (bánh lạc + sữa chua)
    #   kcal 0.75×420.50 + 0.5×(180.25+95.00) = 315.375 + 137.625 = 453.00
    #   protein 0.75×22.30 + 0.5×(5.10+3.50) = 16.725 + 4.30 = 21.025 → 21.03
    #   fat 0.75×12.10 + 0.5×(9.75+3.25) = 9.075 + 6.50 = 15.575 → 15.58
    #   carbs 0.75×55.00 + 0.5×(20.40+14.00) = 41.25 + 17.20 = 58.45
    # Tuesday: 1 × cơm gà (the snack was not logged). Week: the sum of the days.
    # recommended, 4 years old (3-5 y): (1320+1230)/2 = 1275 kcal/day × 52.5 % at school = 669.375 → 669.38;
    #   protein 669.375×0.165/4 = 27.61; fat 669.375×0.30/9 = 22.31; carbs 669.375×0.535/4 = 89.53
    r = api.call("GET", w["mother"], f"/students/{anh.id}/meals?from={monday}&to={friday}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    days = {d["date"]: d for d in body["days"]}
    assert list(days) == [str(monday + dt.timedelta(days=i)) for i in range(5)]
    mon = days[str(monday)]
    assert mon["intake"] == {"kcal": 453.0, "protein_g": 21.03, "fat_g": 15.58, "carbs_g": 58.45}
    assert mon["recommended"] == {"kcal": 669.38, "protein_g": 27.61, "fat_g": 22.31, "carbs_g": 89.53,
                                  "age_group": "3-5y", "share": 0.525}
    snack = mon["meals"][1]
    assert snack["meal"] == "snack" and snack["portion"] == "half" and snack["note"] == "Cháu không ăn bánh"
    assert [d["name"] for d in snack["dishes"]] == ["Bánh quy lạc", "Sữa chua"]
    assert snack["dishes"][0]["allergens"] == ["peanut", "wheat"]
    assert snack["flags"] == [{"dish_id": str(ids["banh_lac"]), "allergen": "peanut"}]
    tue = days[str(tuesday)]
    assert tue["intake"] == {"kcal": 420.5, "protein_g": 22.3, "fat_g": 12.1, "carbs_g": 55.0}
    assert tue["meals"][1] == {"meal": "snack", "dishes": [{"id": str(ids["trung"]), "name": "Trứng hấp",
                                                            "allergens": ["egg"]}],
                               "portion": None, "note": None, "flags": []}
    assert days[str(friday)]["logged"] is False and days[str(friday)]["intake"]["kcal"] == 0
    (week,) = body["weeks"]
    year, number, _ = monday.isocalendar()
    assert week["week"] == f"{year}-W{number:02d}" and week["days_logged"] == 2
    assert week["intake"] == {"kcal": 873.5, "protein_g": 43.33, "fat_g": 27.68, "carbs_g": 113.45}
    assert week["recommended"]["kcal"] == 1338.76

    # the contact book's day page reads the same
    from nutrition.logic import meals_for_day

    with client.application.app_context():
        assert [m["portion"] for m in meals_for_day(anh.id, monday)] == ["most", "half"]


def test_allergy_added_after_publishing_alerts_once(client, make, world):
    w = world
    api, ids = _setup(client, make, w)
    s, monday = w["school"].id, w["monday"]
    _week(api, w, ids)
    api.call("POST", w["cafeteria"], f"/schools/{s}/menus/publish",
             {"from": str(monday), "to": str(monday + dt.timedelta(days=4))})
    binh = w["binh"]
    r = api.call("PUT", w["teacher"], f"/students/{binh.id}/allergies", {"allergens": ["milk", "egg"]})
    assert r.status_code == 200 and r.get_json() == {"allergens": ["milk", "egg"]}
    alerts = api.notices(w["binh_parent"], "allergy")
    assert sorted(a["data"]["date"] for a in alerts) == [str(monday + dt.timedelta(days=i)) for i in range(5)]
    assert {a["data"]["allergen"] for a in alerts} == {"milk"}
    # setting them again (and a meal log serving the same dish that day) alerts nobody again
    api.call("PUT", w["mother"], f"/students/{w['anh'].id}/allergies", {"allergens": []})
    api.call("PUT", w["binh_parent"], f"/students/{binh.id}/allergies", {"allergens": ["egg", "milk"]})
    r = api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs",
                 {"date": str(monday), "meal": "snack", "entries": [{"student_id": str(binh.id), "portion": "all"}]})
    assert r.get_json()["flags"] == [{"student_id": str(binh.id), "dish_id": str(ids["sua_chua"]), "allergen": "milk"}]
    assert len(api.notices(w["binh_parent"], "allergy")) == 5
    # a dish served off the menu (dish_ids): flagged and alerted once, however often the log is posted
    for _ in range(2):
        r = api.call("POST", w["cafeteria"], f"/classes/{w['klass'].id}/meal-logs",
                     {"date": str(monday), "meal": "breakfast", "dish_ids": [str(ids["trung"])],
                      "entries": [{"student_id": str(binh.id), "portion": "none"}]})
        assert r.get_json()["flags"] == [{"student_id": str(binh.id), "dish_id": str(ids["trung"]), "allergen": "egg"}]
    served = [a for a in api.notices(w["binh_parent"], "allergy") if a["data"]["dish_id"] == str(ids["trung"])]
    assert len(served) == 1 and served[0]["data"]["meal"] == "breakfast"
    assert len([a for a in api.notices(w["cafeteria"], "allergy") if a["data"]["dish_id"] == str(ids["trung"])]) == 1
    # an allergen added to a dish already on the published menu alerts too (once)
    for _ in range(2):
        r = api.call("PATCH", w["cafeteria"], f"/schools/{w['school'].id}/dishes/{ids['com_ga']}", {"allergens": ["egg"]})
        assert r.status_code == 200
    com_ga = [a for a in api.notices(w["binh_parent"], "allergy") if a["data"]["dish_id"] == str(ids["com_ga"])]
    assert sorted(a["data"]["date"] for a in com_ga) == [str(monday + dt.timedelta(days=i)) for i in range(5)]
    assert {a["data"]["allergen"] for a in com_ga} == {"egg"}


def test_posting_again_corrects(client, make, world):
    w = world
    api, ids = _setup(client, make, w)
    monday, anh = w["monday"], w["anh"]
    body = {"date": str(monday), "meal": "lunch", "dish_ids": [str(ids["com_ga"])],
            "entries": [{"student_id": str(anh.id), "portion": "all"}]}
    assert api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs", body).status_code == 200
    body["entries"][0].update(portion="half", note="Cháu mệt")
    assert api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs", body).status_code == 200
    day = api.call("GET", w["mother"], f"/students/{anh.id}/meals?from={monday}&to={monday}").get_json()["days"][0]
    assert day["meals"][0]["portion"] == "half" and day["meals"][0]["note"] == "Cháu mệt"
    assert day["intake"]["kcal"] == 210.25


def test_who_may(client, make, world):
    w = world
    api, ids = _setup(client, make, w)
    s, monday, anh, mother = w["school"].id, w["monday"], w["anh"], w["mother"]
    other = w["other_school"].id
    # guardians see only their children
    for path in (f"/students/{anh.id}/meals?from={monday}&to={monday}", f"/students/{anh.id}/allergies"):
        assert api.call("GET", w["chi_parent"], path).status_code == 404
        assert api.call("GET", mother, path).status_code == 200
        assert api.call("GET", w["other_teacher"], path).status_code == 404  # a teacher of another class
        assert api.call("GET", w["cafeteria"], path).status_code == 200
    assert api.call("PUT", w["chi_parent"], f"/students/{anh.id}/allergies", {"allergens": ["egg"]}).status_code == 404
    assert api.call("PUT", w["cafeteria"], f"/students/{anh.id}/allergies", {"allergens": ["egg"]}).status_code == 403
    assert api.call("GET", mother, f"/students/{anh.id}/allergies").get_json() == {"allergens": []}
    # a guardian cannot write dishes, menus or meal logs
    assert api.call("POST", mother, f"/schools/{s}/dishes", DISHES["trung"]).status_code == 403
    assert api.call("PATCH", mother, f"/schools/{s}/dishes/{ids['trung']}", {"kcal": 1}).status_code == 403
    assert api.call("DELETE", mother, f"/schools/{s}/dishes/{ids['trung']}").status_code == 403
    assert api.call("PUT", mother, f"/schools/{s}/menus/{monday}",
                    {"meals": [{"meal": "lunch", "dish_ids": [str(ids["trung"])]}]}).status_code == 403
    assert api.call("POST", mother, f"/schools/{s}/menus/publish",
                    {"from": str(monday), "to": str(monday)}).status_code == 403
    log = {"date": str(monday), "meal": "lunch", "dish_ids": [str(ids["trung"])],
           "entries": [{"student_id": str(anh.id), "portion": "all"}]}
    assert api.call("POST", mother, f"/classes/{w['klass'].id}/meal-logs", log).status_code == 403
    assert api.call("POST", mother, f"/classes/{w['other_class'].id}/meal-logs", log).status_code == 404
    assert api.call("POST", w["other_teacher"], f"/classes/{w['klass'].id}/meal-logs", log).status_code == 404
    assert api.call("POST", w["teacher"], f"/schools/{s}/dishes", DISHES["trung"]).status_code == 403
    # another school's staff and dishes: 404
    assert api.call("GET", w["other_cafeteria"], f"/schools/{s}/dishes").status_code == 404
    assert api.call("GET", w["other_cafeteria"], f"/schools/{s}/dishes/{ids['trung']}").status_code == 404
    assert api.call("POST", w["other_cafeteria"], f"/schools/{s}/dishes", DISHES["trung"]).status_code == 404
    theirs = api.call("POST", w["other_cafeteria"], f"/schools/{other}/dishes", DISHES["sua_chua"]).get_json()["id"]
    assert api.call("GET", w["cafeteria"], f"/schools/{s}/dishes/{theirs}").status_code == 404
    assert api.call("PATCH", w["cafeteria"], f"/schools/{s}/dishes/{theirs}", {"kcal": 1}).status_code == 404
    assert api.call("DELETE", w["admin"], f"/schools/{s}/dishes/{theirs}").status_code == 404
    assert api.call("GET", w["other_cafeteria"], f"/schools/{other}/dishes/{theirs}").get_json()["kcal"] == 95.0
    # ... nor on a menu or a meal log (422, the same answer as for an id that does not exist)
    r = api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{monday}",
                 {"meals": [{"meal": "lunch", "dish_ids": [str(ids["com_ga"]), theirs]}]})
    assert r.status_code == 422 and "meals" in r.get_json()["error"]["fields"]
    r404 = api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{monday}",
                    {"meals": [{"meal": "lunch", "dish_ids": [str(ids["com_ga"]), "987654321"]}]})
    assert r404.get_json()["error"]["fields"]["meals"]["0"]["dish_ids"][0].startswith("Not a dish of this school")
    assert api.call("GET", w["cafeteria"], f"/schools/{s}/menus?from={monday}&to={monday}").get_json() == {"days": []}
    log["dish_ids"] = [theirs]
    assert api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs", log).status_code == 422
    # a guardian reads the school's dishes and published menus; another school's guardian does not
    assert api.call("GET", mother, f"/schools/{s}/dishes").status_code == 200
    assert api.call("GET", mother, f"/schools/{other}/dishes").status_code == 404
    assert api.call("GET", mother, f"/schools/{other}/menus?from={monday}&to={monday}").status_code == 404
    # access follows the roster live
    roster.unlink_guardian(anh.id, mother.id)
    assert api.call("GET", mother, f"/students/{anh.id}/meals?from={monday}&to={monday}").status_code == 404
    # no child anywhere now: permissions.school_for answers 403 (the guardian role is held nowhere)
    assert api.call("GET", mother, f"/schools/{s}/dishes").status_code == 403


def test_bad_values_422_nothing_stored(client, make, world):
    w = world
    api, ids = _setup(client, make, w)
    s, monday, anh = w["school"].id, w["monday"], w["anh"]
    bad = [{"kcal": -1}, {"protein_g": 1.234}, {"fat_g": "abc"}, {"carbs_g": None}, {"allergens": ["gluten"]},
           {"allergens": "peanut"}, {"name": "  "}, {"sodium_mg": -0.01}, {"kcal": 1e9}, {"kcal": True}]
    for change in bad:
        body = dict(DISHES["trung"], **change)
        r = api.call("POST", w["cafeteria"], f"/schools/{s}/dishes", body)
        assert r.status_code == 422, (change, r.get_json())
        assert r.get_json()["error"]["code"] == "validation_error" and r.get_json()["error"]["fields"]
        r = api.call("PATCH", w["cafeteria"], f"/schools/{s}/dishes/{ids['trung']}", change)
        assert r.status_code == 422, change
    missing = dict(DISHES["trung"])
    del missing["carbs_g"]
    assert api.call("POST", w["cafeteria"], f"/schools/{s}/dishes", missing).status_code == 422
    items = api.call("GET", w["cafeteria"], f"/schools/{s}/dishes").get_json()["items"]
    assert len(items) == 4 and items[3]["kcal"] == 80.0 and items[3]["allergens"] == ["egg"]
    assert api.call("PUT", w["mother"], f"/students/{anh.id}/allergies", {"allergens": ["cat"]}).status_code == 422
    assert api.call("GET", w["mother"], f"/students/{anh.id}/allergies").get_json() == {"allergens": []}
    # menus
    for meals in ([{"meal": "dinner", "dish_ids": []}], [{"meal": "lunch", "dish_ids": ["x"]}],
                  [{"meal": "lunch", "dish_ids": [str(ids["trung"])]}, {"meal": "lunch", "dish_ids": []}],
                  [{"meal": "lunch", "dish_ids": [str(ids["trung"]), str(ids["trung"])]}]):
        assert api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{monday}", {"meals": meals}).status_code == 422
    assert api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/2026-02-30", {"meals": []}).status_code == 422
    assert api.call("GET", w["cafeteria"], f"/schools/{s}/menus?from={monday}&to={monday}").get_json() == {"days": []}
    for rng in ({"from": str(monday), "to": str(monday - dt.timedelta(days=1))},
                {"from": str(monday), "to": str(monday + dt.timedelta(days=62))}, {"from": "soon", "to": str(monday)}):
        assert api.call("POST", w["cafeteria"], f"/schools/{s}/menus/publish", rng).status_code == 422
    # meal logs: a student of another class, twice, a bad portion, no menu → nothing stored
    good = {"student_id": str(anh.id), "portion": "all"}
    for log in ({"entries": [good, {"student_id": str(w["chi"].id), "portion": "all"}]},
                {"entries": [good, good]}, {"entries": [{"student_id": str(anh.id), "portion": "lots"}]},
                {"entries": []}, {"meal": "dinner"}, {"dish_ids": None}):
        body = {"date": str(monday), "meal": "lunch", "dish_ids": [str(ids["com_ga"])], "entries": [good]}
        body.update(log)
        if body["dish_ids"] is None:
            del body["dish_ids"]  # no published menu for that meal either
        r = api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs", body)
        assert r.status_code == 422, (log, r.get_json())
    r = api.call("GET", w["mother"], f"/students/{anh.id}/meals?from={monday}&to={monday}")
    assert r.get_json()["days"] == []
    # a range's missing end is its week's Sunday (tests/nutrition/test_ranges.py); a bad date is still 422
    assert api.call("GET", w["mother"], f"/students/{anh.id}/meals?from={monday}").status_code == 200
    assert api.call("GET", w["mother"], f"/students/{anh.id}/meals?from=soon").status_code == 422


def test_retired_dish_leaves_catalogue_but_not_history(client, make, world):
    w = world
    api, ids = _setup(client, make, w)
    s, monday, anh = w["school"].id, w["monday"], w["anh"]
    api.call("POST", w["teacher"], f"/classes/{w['klass'].id}/meal-logs",
             {"date": str(monday), "meal": "lunch", "dish_ids": [str(ids["trung"])],
              "entries": [{"student_id": str(anh.id), "portion": "half"}]})
    assert api.call("DELETE", w["admin"], f"/schools/{s}/dishes/{ids['trung']}").status_code == 204
    assert api.call("GET", w["admin"], f"/schools/{s}/dishes/{ids['trung']}").status_code == 404
    assert len(api.call("GET", w["admin"], f"/schools/{s}/dishes").get_json()["items"]) == 3
    r = api.call("PUT", w["cafeteria"], f"/schools/{s}/menus/{monday}",
                 {"meals": [{"meal": "lunch", "dish_ids": [str(ids["trung"])]}]})
    assert r.status_code == 422
    day = api.call("GET", w["mother"], f"/students/{anh.id}/meals?from={monday}&to={monday}").get_json()["days"][0]
    assert day["meals"][0]["dishes"][0]["name"] == "Trứng hấp" and day["intake"]["kcal"] == 40.0
    r = api.call("PATCH", w["cafeteria"], f"/schools/{s}/dishes/{ids['com_ga']}",
                 {"name": "Cơm gà", "allergens": ["soy", "sesame"], "fibre_g": None})
    assert r.status_code == 200
    assert (r.get_json()["name"], r.get_json()["allergens"], r.get_json()["fibre_g"]) == ("Cơm gà", ["soy", "sesame"], None)
