"""A school's dish catalogue: nutrients per serving and allergens."""
from __future__ import annotations

import datetime as dt

from service.roster import logic as roster
from service.db import utcnow, write_transaction
from service.errors import NotFound
from service.accounts.models import User
from service.pagination import paginate_by_id

from .. import policy
from ..constants import NUTRIENTS
from ..models import Dish
from . import alerts
from .common import ordered_allergens


def dish_view(dish: Dish) -> dict:
    view = {"id": dish.id, "school_id": dish.school_id, "name": dish.name}
    view.update({name: getattr(dish, name) for name in NUTRIENTS})
    view.update({"allergens": dish.allergen_list, "created_at": dish.created_at, "updated_at": dish.updated_at})
    return view


def _values(data: dict) -> dict:
    values = {name: data[name] for name in NUTRIENTS if name in data}
    if "name" in data:
        values["name"] = data["name"].strip()
    if "allergens" in data:
        values["allergens"] = ",".join(ordered_allergens(data["allergens"]))
    return values


def create_dish(user: User | int, school_id, data: dict) -> dict:
    """``data``: name, kcal, protein_g, fat_g, carbs_g, fibre_g?, sodium_mg?, allergens (checked by the schema)."""
    school_id = policy.catalogue_writer(user, school_id)
    with write_transaction():
        dish = Dish.create(school=school_id, **_values(data))
    return dish_view(Dish.get_by_id(dish.id))


def _dish_of(school_id: int, dish_id) -> Dish:
    try:
        dish = Dish.get_or_none((Dish.id == int(dish_id)) & (Dish.school == school_id) & Dish.deleted_at.is_null())
    except (TypeError, ValueError, OverflowError):
        dish = None
    if dish is None:
        raise NotFound("No such dish.")
    return dish


def list_dishes(user: User | int, school_id, limit: int = 50, cursor: str | None = None) -> dict:
    """The school's dishes, oldest first (a catalogue reads in the order it was built)."""
    school_id, _staff = policy.school_reader(user, school_id)
    page = paginate_by_id(Dish.select().where((Dish.school == school_id) & Dish.deleted_at.is_null()), Dish.id,
                          limit, cursor, newest_first=False)
    return {"items": [dish_view(d) for d in page["items"]], "next_cursor": page["next_cursor"]}


def get_dish(user: User | int, school_id, dish_id) -> dict:
    school_id, _staff = policy.school_reader(user, school_id)
    return dish_view(_dish_of(school_id, dish_id))


def update_dish(user: User | int, school_id, dish_id, changes: dict, today: dt.date | None = None) -> dict:
    """Change some fields. Past meal logs are computed from the dish as it is now (no history kept).

    An allergen added to a dish already on a published menu (from today on) alerts the allergic
    children's guardians and the cafeteria, as publishing would."""
    school_id = policy.catalogue_writer(user, school_id)
    with write_transaction():
        dish = _dish_of(school_id, dish_id)
        values = _values(changes)
        if values:
            values["updated_at"] = utcnow()
            Dish.update(**values).where(Dish.id == dish.id).execute()
    updated = Dish.get_by_id(dish.id)
    if set(updated.allergen_list) - set(dish.allergen_list):
        alerts.check_published(school_id, today or roster.school_today(school_id))
    return dish_view(updated)


def delete_dish(user: User | int, school_id, dish_id) -> None:
    """Retire a dish: gone from the catalogue and from new menus; past menus and logs keep it."""
    school_id = policy.catalogue_writer(user, school_id)
    with write_transaction():
        dish = _dish_of(school_id, dish_id)
        Dish.update(deleted_at=utcnow()).where(Dish.id == dish.id).execute()


def school_dishes(school_id: int, dish_ids) -> dict[int, Dish]:
    """Of ``dish_ids``, the live dishes of the school."""
    ids = list({int(d) for d in dish_ids})
    if not ids:
        return {}
    return {d.id: d for d in Dish.select().where(Dish.id.in_(ids) & (Dish.school == school_id)
                                                 & Dish.deleted_at.is_null())}
