"""Age-group targets (nutrition/logic/recommended.py), hand-computed from the cited figures."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from nutrition.logic.recommended import age_in_months, recommended

DAY = dt.date(2026, 12, 7)


def test_age_in_months_counts_whole_months():
    assert age_in_months(dt.date(2024, 12, 7), DAY) == 24
    assert age_in_months(dt.date(2024, 12, 8), DAY) == 23


def test_nha_tre_two_years_old():
    # 1-2 years: (1000 + 930) / 2 = 965 kcal/day × 65 % at school = 627.25; protein 16.5 % / 4 → 25.87,
    # fat 35 % (under 3) / 9 → 24.39, carbohydrate the other 48.5 % / 4 → 76.05
    r = recommended(dt.date(2024, 6, 1), DAY, ["lunch"])
    assert r == {"kcal": Decimal("627.25"), "protein_g": Decimal("25.87"), "fat_g": Decimal("24.39"),
                 "carbs_g": Decimal("76.05"), "age_group": "1-2y", "share": Decimal("0.65")}


def test_school_age_counts_the_meals_served():
    # 6-7 years: (1570 + 1460) / 2 = 1515 kcal/day × (lunch 35 % + snack 10 %) = 681.75
    r = recommended(dt.date(2019, 9, 1), DAY, ["lunch", "snack", "lunch"])
    assert (r["kcal"], r["age_group"], r["share"]) == (Decimal("681.75"), "6-7y", Decimal("0.45"))
    assert recommended(dt.date(2019, 9, 1), DAY, ["breakfast"])["kcal"] == Decimal("378.75")


def test_unknown_or_out_of_table_ages():
    assert recommended(None, DAY, ["lunch"]) is None
    assert recommended(dt.date(2000, 1, 1), DAY, ["lunch"]) is None
    assert recommended(dt.date(2027, 1, 1), DAY, ["lunch"]) is None
