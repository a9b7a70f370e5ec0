"""Menus by day: staff draft them, then publish a range of days at once.

A day's ``draft`` is what staff edit; ``published`` is what families see. Publishing copies the
draft of every day in the range whose draft differs from what was published; if any day changed,
the school's guardians are told once (category ``meal``) for the whole publish. Publishing again
with nothing changed tells nobody. After the publish commits, the published days from today on are
checked against the children's allergies (see ``alerts``).
"""
from __future__ import annotations

import datetime as dt

import notifications
from service.roster import logic as roster
from service.roster import queries as roster_queries
from service.db import is_postgres, utcnow, write_transaction
from service.errors import ValidationError
from service.accounts.models import User

from .. import policy
from ..constants import MEALS
from ..models import MenuDay
from . import alerts
from .common import check_range, date_range, date_text, dish_brief, dishes_by_id, dump_meals
from .dishes import school_dishes


def _status(row: MenuDay) -> str:
    if row.published is None:
        return "draft"
    return "published" if row.published == row.draft else "changed"


def _meal_list(meals: dict[str, list[int]] | None, dishes: dict) -> list[dict]:
    return [{"meal": meal, "dishes": [dish_brief(dishes[d]) for d in (meals or {}).get(meal, []) if d in dishes]}
            for meal in MEALS if (meals or {}).get(meal)]


def _views(rows: list[MenuDay], staff: bool) -> list[dict]:
    ids = set()
    for row in rows:
        for meals in (row.published_meals() or {}, row.draft_meals() if staff else {}):
            for dish_ids in meals.values():
                ids.update(dish_ids)
    dishes = dishes_by_id(ids)
    out = []
    for row in rows:
        view = {"date": row.date, "status": _status(row) if staff else "published",
                "meals": _meal_list(row.published_meals(), dishes), "published_at": row.published_at}
        if staff:
            view["draft"] = _meal_list(row.draft_meals(), dishes)
            view["updated_at"] = row.updated_at
        out.append(view)
    return out


def put_menu(user: User | int, school_id, date: dt.date, meals: list[dict], now: dt.datetime | None = None) -> dict:
    """Set the draft of one day: ``meals`` = ``[{meal, dish_ids}]``. Dishes must be live dishes of the
    school; any other id answers 422 naming the field (the same answer whether it exists elsewhere or not)."""
    school_id = policy.catalogue_writer(user, school_id)
    by_meal: dict[str, list[int]] = {}
    errors: dict = {}
    for index, item in enumerate(meals):
        if item["meal"] in by_meal:
            errors[str(index)] = {"meal": ["This meal is given twice."]}
            continue
        if len(set(item["dish_ids"])) != len(item["dish_ids"]):
            errors[str(index)] = {"dish_ids": ["A dish is given twice."]}
        by_meal[item["meal"]] = list(item["dish_ids"])
    known = school_dishes(school_id, [d for ids in by_meal.values() for d in ids])
    for index, item in enumerate(meals):
        unknown = [str(d) for d in item["dish_ids"] if d not in known]
        if unknown:
            errors.setdefault(str(index), {})["dish_ids"] = [f"Not a dish of this school: {', '.join(unknown)}."]
    if errors:
        raise ValidationError("The menu has invalid dishes.", fields={"meals": errors})
    now = now or utcnow()
    draft = dump_meals(by_meal)
    uid = int(getattr(user, "id", user))
    with write_transaction():
        (MenuDay.insert(school=school_id, date=date, draft=draft, updated_at=now, updated_by=uid)
         .on_conflict(conflict_target=[MenuDay.school, MenuDay.date],
                      update={MenuDay.draft: draft, MenuDay.updated_at: now, MenuDay.updated_by: uid})
         .execute())
    row = MenuDay.get((MenuDay.school == school_id) & (MenuDay.date == date))
    return _views([row], staff=True)[0]


def publish(user: User | int, school_id, start: dt.date, end: dt.date, now: dt.datetime | None = None,
            today: dt.date | None = None) -> dict:
    """Publish the drafts of ``start``..``end``. Returns ``{from, to, published, unchanged, notified}``:
    the dates whose families' view changed, the dates already as published, and whether guardians were told."""
    school_id = policy.catalogue_writer(user, school_id)
    check_range(start, end)
    now = now or utcnow()
    with write_transaction():
        query = MenuDay.select().where((MenuDay.school == school_id) & (MenuDay.date >= start) & (MenuDay.date <= end))
        if is_postgres():
            query = query.for_update()  # a concurrent publish waits, then sees nothing left to change
        rows = list(query.order_by(MenuDay.date))
        changed = [row for row in rows if row.published != row.draft]
        for row in changed:
            MenuDay.update(published=MenuDay.draft, published_at=now).where(MenuDay.id == row.id).execute()
    changed_dates = [row.date for row in changed]
    if changed:
        _tell_guardians(school_id, changed_dates, any(row.published is not None for row in changed))
    alerts.check_published(school_id, today or roster.school_today(school_id), [row.date for row in rows])
    return {"from": start, "to": end, "published": changed_dates,
            "unchanged": [row.date for row in rows if row not in changed], "notified": bool(changed)}


def _tell_guardians(school_id: int, dates: list[dt.date], updated: bool) -> None:
    guardians = roster_queries.audience_guardian_ids(school_id)
    first, last = min(dates), max(dates)
    span_vi = date_text(first) if first == last else f"{date_text(first)} đến {date_text(last)}"
    span_en = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    if updated:
        vi = ("Thực đơn đã thay đổi", f"Nhà trường đã cập nhật thực đơn ngày {span_vi}.")
        en = ("Menu changed", f"The school has changed the menu for {span_en}.")
    else:
        vi = ("Thực đơn mới", f"Nhà trường đã công bố thực đơn ngày {span_vi}.")
        en = ("New menu", f"The school has published the menu for {span_en}.")
    data = {"type": "menu", "id": school_id, "kind": "menu", "school_id": str(school_id),
            "from": first.isoformat(), "to": last.isoformat(), "dates": [d.isoformat() for d in dates]}
    notifications.notify(guardians, "meal", vi[0], vi[1], data, texts={"vi": vi, "en": en},
                         collapse_key=f"menu-{school_id}")


def list_menus(user: User | int, school_id, start: dt.date | None = None, end: dt.date | None = None,
               today: dt.date | None = None) -> dict:
    """``{days: [...]}``: published days for guardians; staff also see drafts (``status``, ``draft``).
    A missing end of the range is filled in by ``date_range`` (this week by default)."""
    school_id, staff = policy.school_reader(user, school_id)
    start, end = date_range(start, end, today or roster.school_today(school_id))
    query = MenuDay.select().where((MenuDay.school == school_id) & (MenuDay.date >= start) & (MenuDay.date <= end))
    if not staff:
        query = query.where(MenuDay.published.is_null(False))
    return {"days": _views(list(query.order_by(MenuDay.date)), staff)}


def published_menus(school_id: int, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, list[int]]]:
    """``{date: {meal: [dish ids]}}`` as published (no authorisation: for callers that checked)."""
    query = MenuDay.select(MenuDay.date, MenuDay.published).where(
        (MenuDay.school == school_id) & (MenuDay.date >= start) & (MenuDay.date <= end)
        & MenuDay.published.is_null(False))
    return {row.date: row.published_meals() for row in query}
