"""Reads over a date range (menus, a child's meals): ``from``/``to`` may be left out, and a caller who
may not see the school or the child is refused before the range is looked at (the authorization
matrix calls these paths without a query: they answered 422 to everyone, authorization untested)."""
from __future__ import annotations

import datetime as dt

import pytest

from nutrition import logic
from nutrition.logic.common import date_range
from service.errors import ValidationError

API = "/api/v1"


def test_foreign_callers_without_a_range_get_404_not_422(client, make, world):
    w = world
    s, anh = w["school"].id, w["anh"]
    for user, path in ((w["other_cafeteria"], f"/schools/{s}/menus"), (w["chi_parent"], f"/students/{anh.id}/meals"),
                       (w["other_teacher"], f"/students/{anh.id}/meals")):
        r = client.get(API + path, headers=make.headers(user))
        assert r.status_code == 404, (path, r.get_json())
        assert r.get_json()["error"]["code"] == "not_found"
    # the rightful readers get this week without a range
    assert client.get(f"{API}/schools/{s}/menus", headers=make.headers(w["mother"])).status_code == 200
    r = client.get(f"{API}/students/{anh.id}/meals", headers=make.headers(w["mother"]))
    assert r.status_code == 200 and "days" in r.get_json()
    # a bad range is still 422 for them
    r = client.get(f"{API}/schools/{s}/menus?from=2027-03-10&to=2027-03-01", headers=make.headers(w["mother"]))
    assert r.status_code == 422 and "to" in r.get_json()["error"]["fields"]


def test_missing_ends_default_to_the_week(world):
    w = world
    s, monday, cafeteria = w["school"].id, w["monday"], w["cafeteria"]
    dish = logic.create_dish(cafeteria, s, {"name": "Cháo", "kcal": 100, "protein_g": 3, "fat_g": 1, "carbs_g": 20,
                                            "allergens": []})
    for day in (monday - dt.timedelta(days=1), monday, monday + dt.timedelta(days=6), monday + dt.timedelta(days=7)):
        logic.put_menu(cafeteria, s, day, [{"meal": "lunch", "dish_ids": [dish["id"]]}])

    def days(**kw):
        return [d["date"] for d in logic.list_menus(cafeteria, s, **kw)["days"]]

    week = [monday, monday + dt.timedelta(days=6)]
    assert days(today=monday + dt.timedelta(days=2)) == week  # Monday..Sunday around today
    assert days(start=monday + dt.timedelta(days=3), today=monday - dt.timedelta(days=30)) == [monday + dt.timedelta(days=6)]
    assert days(end=monday + dt.timedelta(days=6), today=monday - dt.timedelta(days=30)) == week
    assert days(start=monday, end=monday) == [monday]


def test_date_range_fills_and_checks():
    wednesday = dt.date(2027, 3, 3)
    assert date_range(None, None, wednesday) == (dt.date(2027, 3, 1), dt.date(2027, 3, 7))
    assert date_range(wednesday, None, dt.date(2020, 1, 1)) == (wednesday, dt.date(2027, 3, 7))
    assert date_range(None, wednesday, dt.date(2020, 1, 1)) == (dt.date(2027, 3, 1), wednesday)
    with pytest.raises(ValidationError):
        date_range(dt.date(2027, 3, 10), dt.date(2027, 3, 1), wednesday)
    with pytest.raises(ValidationError):
        date_range(dt.date(2027, 1, 1), dt.date(2027, 6, 1), wednesday)
