"""What a child's school meals should provide in a day, by age group.

Sources (Vietnamese, public):

1. Energy per day: Viện Dinh dưỡng (National Institute of Nutrition), *Nhu cầu dinh dưỡng khuyến
   nghị cho người Việt Nam*, Nhà xuất bản Y học 2016, approved by Quyết định 2615/QĐ-BYT of
   16 June 2016. Figures for moderate activity, boys / girls, kcal/day:
   0-5 months 550/500, 6-8 months 650/600, 9-11 months 700/650, 1-2 years 1000/930,
   3-5 years 1320/1230, 6-7 years 1570/1460, 8-9 years 1820/1730, 10-11 years 2150/1980,
   12-14 years 2500/2310, 15-19 years 2820/2380.
   Checked against two reports of the table (VnExpress, "Lên thực đơn đủ chất cho trẻ thế nào",
   vnexpress.net/len-thuc-don-du-chat-cho-tre-the-nao-3836224.html, and Khoa học & Đời sống,
   "Chế độ ăn cho trẻ vào hè"), which agree figure for figure; NOT checked against the book's own
   pages (not reachable from here). The roster does not record a child's sex, so we use the mean
   of the boys' and girls' figures.
2. Share of the day's energy the school's meals provide: Bộ GD&ĐT, Thông tư 28/2016/TT-BGDĐT
   (30 Dec 2016) amending the Chương trình giáo dục mầm non: nhà trẻ (under 3) 60-70 %, mẫu giáo
   (3-5) 50-55 %. Verified for nhà trẻ through a school's summary of the circular quoting
   "930-1000 kcal/ngày, tại cơ sở 600-651 kcal (chiếm 60-70 %)"; the mẫu giáo 50-55 % is as the
   circular is commonly quoted, not checked against its text here. We take the middle of each
   range (65 %, 52.5 %). For school-age children (6+) no circular fixes a share; we use the
   Institute's distribution of the day's energy over meals (breakfast 25 %, lunch 35 %, snack
   10 %, as VnExpress reports it; not checked against the primary text) for the meals the child
   was actually logged for that day.
3. Protein, fat and carbohydrate as shares of that energy: Thông tư 28/2016 gives protein 13-20 %,
   fat 30-40 % (nhà trẻ) or 25-35 % (mẫu giáo), carbohydrate the rest. Quoted from memory of the
   circular and NOT verified against its text here; middles used (16.5 %, 35 % / 30 %); the same
   split as mẫu giáo for school age. Grams: protein and carbohydrate 4 kcal/g, fat 9 kcal/g.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

SOURCE = ("Viện Dinh dưỡng, Nhu cầu dinh dưỡng khuyến nghị cho người Việt Nam (2016, QĐ 2615/QĐ-BYT); "
          "Thông tư 28/2016/TT-BGDĐT (share met at school)")

# (upper bound of the age in months, exclusive) → (boys, girls) kcal/day, moderate activity
_ENERGY = (
    (6, 550, 500), (9, 650, 600), (12, 700, 650), (36, 1000, 930), (72, 1320, 1230),
    (96, 1570, 1460), (120, 1820, 1730), (144, 2150, 1980), (180, 2500, 2310), (240, 2820, 2380),
)
_GROUP_NAMES = ("0-5m", "6-8m", "9-11m", "1-2y", "3-5y", "6-7y", "8-9y", "10-11y", "12-14y", "15-19y")
MEAL_SHARE = {"breakfast": Decimal("0.25"), "lunch": Decimal("0.35"), "snack": Decimal("0.10")}
NHA_TRE_SHARE = Decimal("0.65")
MAU_GIAO_SHARE = Decimal("0.525")
PROTEIN_SHARE = Decimal("0.165")
FAT_SHARE_UNDER_3 = Decimal("0.35")
FAT_SHARE = Decimal("0.30")
CENT = Decimal("0.01")


def age_in_months(birth_date: dt.date, on: dt.date) -> int:
    months = (on.year - birth_date.year) * 12 + (on.month - birth_date.month)
    if on.day < birth_date.day:
        months -= 1
    return months


def daily_energy(months: int) -> tuple[str, Decimal] | None:
    """``(age group, kcal/day)`` for an age in whole months; None before birth or from 20 years."""
    if months < 0:
        return None
    for (upper, boys, girls), name in zip(_ENERGY, _GROUP_NAMES):
        if months < upper:
            return name, (Decimal(boys) + Decimal(girls)) / 2
    return None


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def school_share(months: int, meals: Iterable[str]) -> Decimal:
    """The share of the day's energy the school's meals should provide."""
    if months < 36:
        return NHA_TRE_SHARE
    if months < 72:
        return MAU_GIAO_SHARE
    return sum((MEAL_SHARE.get(m, Decimal(0)) for m in set(meals)), Decimal(0))


def recommended(birth_date: dt.date | None, on: dt.date, meals: Iterable[str]) -> dict | None:
    """What the school's meals of ``on`` should provide this child: ``{kcal, protein_g, fat_g,
    carbs_g, age_group, share}``, or None without a birth date (or outside the table's ages)."""
    if birth_date is None:
        return None
    months = age_in_months(birth_date, on)
    found = daily_energy(months)
    if found is None:
        return None
    group, per_day = found
    share = school_share(months, meals)
    kcal = per_day * share
    fat_share = FAT_SHARE_UNDER_3 if months < 36 else FAT_SHARE
    carbs_share = 1 - PROTEIN_SHARE - fat_share
    return {"kcal": _q(kcal), "protein_g": _q(kcal * PROTEIN_SHARE / 4), "fat_g": _q(kcal * fat_share / 9),
            "carbs_g": _q(kcal * carbs_share / 4), "age_group": group, "share": _q(share * 100) / 100}
