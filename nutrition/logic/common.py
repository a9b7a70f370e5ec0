"""Small helpers shared by the nutrition logic modules."""
from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from service.errors import ValidationError

from ..constants import ALLERGENS, MAX_RANGE_DAYS, MEALS
from ..models import Dish

CENT = Decimal("0.01")

ALLERGEN_VI = {"milk": "sữa", "egg": "trứng", "peanut": "lạc (đậu phộng)", "tree_nut": "các loại hạt",
               "soy": "đậu nành", "wheat": "lúa mì (gluten)", "fish": "cá", "shellfish": "hải sản có vỏ",
               "sesame": "vừng (mè)"}
MEAL_VI = {"breakfast": "bữa sáng", "lunch": "bữa trưa", "snack": "bữa phụ"}


def q2(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise ValidationError("`to` is before `from`.", fields={"to": ["Must not be before `from`."]})
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ValidationError(f"At most {MAX_RANGE_DAYS} days at once.",
                              fields={"to": [f"At most {MAX_RANGE_DAYS} days after `from`."]})


def date_range(start: dt.date | None, end: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """A read's range with its ends filled in: neither given → ``today``'s week (Monday to Sunday);
    only ``start`` → to the Sunday of its week; only ``end`` → from the Monday of its week. Then checked."""
    if start is None:
        start = (end or today) - dt.timedelta(days=(end or today).weekday())
    if end is None:
        end = start + dt.timedelta(days=6 - start.weekday())
    check_range(start, end)
    return start, end


def ordered_allergens(values: Iterable[str]) -> list[str]:
    wanted = set(values)
    return [a for a in ALLERGENS if a in wanted]


def dump_meals(meals: dict[str, list[int]]) -> str:
    """Canonical JSON of ``{meal: [dish ids]}``: meals in MEALS order, so equal menus compare equal."""
    return json.dumps({m: [int(d) for d in meals[m]] for m in MEALS if meals.get(m)}, separators=(",", ":"))


def dishes_by_id(ids: Iterable[int]) -> dict[int, Dish]:
    """Dishes (retired ones too: past menus and logs keep naming them)."""
    ids = list({int(i) for i in ids})
    out: dict[int, Dish] = {}
    for start in range(0, len(ids), 1000):
        for dish in Dish.select().where(Dish.id.in_(ids[start:start + 1000])):
            out[dish.id] = dish
    return out


def dish_brief(dish: Dish) -> dict:
    return {"id": dish.id, "name": dish.name, "allergens": dish.allergen_list}


def date_text(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")
