"""Nutrition JSON in and out. Nutrient amounts are JSON numbers with at most 2 decimals."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.schemas import Id, UtcDateTime

from .constants import ALLERGENS, MAX_RANGE_DAYS, MEALS, NUTRIENT_MAX, PORTIONS
from .logic.meals import MAX_ENTRIES

ALLERGEN = fields.String(validate=validate.OneOf(ALLERGENS), metadata={
    "description": "one of the fixed allergen list (GUIDE.md, Nutrition)"})
MEAL = validate.OneOf(MEALS)


class Amount(fields.Field):
    """A nutrient amount: a number ≥ 0 with at most 2 decimals (in), a JSON number (out)."""

    default_error_messages = {"invalid": "Not a valid number.", "range": f"Must be between 0 and {NUTRIENT_MAX}.",
                              "places": "At most 2 decimals."}

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else float(value)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.make_error("invalid")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise self.make_error("invalid") from exc
        if not number.is_finite():
            raise self.make_error("invalid")
        if number < 0 or number > NUTRIENT_MAX:
            raise self.make_error("range")
        if number.as_tuple().exponent < -2 and number != number.quantize(Decimal("0.01")):
            raise self.make_error("places")
        return number.quantize(Decimal("0.01"))


def _amount(required: bool = False, description: str = "", **kw):
    meta = {"type": "number", "minimum": 0, "maximum": float(NUTRIENT_MAX), "multipleOf": 0.01,
            "description": description}
    return Amount(required=required, metadata=meta, **kw)


# --- dishes -------------------------------------------------------------------------------------
class DishPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    kcal = _amount(description="energy per serving, kcal")
    protein_g = _amount(description="protein per serving, g")
    fat_g = _amount(description="fat per serving, g")
    carbs_g = _amount(description="carbohydrate per serving, g")
    fibre_g = _amount(allow_none=True, description="fibre per serving, g (optional)")
    sodium_mg = _amount(allow_none=True, description="sodium per serving, mg (optional)")
    allergens = fields.List(ALLERGEN, validate=validate.Length(max=len(ALLERGENS) * 2))

    @validates_schema
    def _name_not_blank(self, data, **kwargs):
        if "name" in data and not data["name"].strip():
            raise ValidationError({"name": ["Must not be blank."]})


class DishIn(DishPatch):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kcal = _amount(required=True, description="energy per serving, kcal")
    protein_g = _amount(required=True, description="protein per serving, g")
    fat_g = _amount(required=True, description="fat per serving, g")
    carbs_g = _amount(required=True, description="carbohydrate per serving, g")
    allergens = fields.List(ALLERGEN, load_default=list, validate=validate.Length(max=len(ALLERGENS) * 2))


class DishOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    name = fields.String(required=True)
    kcal = _amount(required=True)
    protein_g = _amount(required=True)
    fat_g = _amount(required=True)
    carbs_g = _amount(required=True)
    fibre_g = _amount(allow_none=True)
    sodium_mg = _amount(allow_none=True)
    allergens = fields.List(ALLERGEN, required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class DishPage(Schema):
    items = fields.List(fields.Nested(DishOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class DishBrief(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    allergens = fields.List(ALLERGEN, required=True)


# --- menus --------------------------------------------------------------------------------------
class MenuMealIn(Schema):
    meal = fields.String(required=True, validate=MEAL)
    dish_ids = fields.List(Id(), required=True, validate=validate.Length(max=20))


class MenuIn(Schema):
    meals = fields.List(fields.Nested(MenuMealIn), required=True, validate=validate.Length(max=len(MEALS)))


class MenuMealOut(Schema):
    meal = fields.String(required=True, validate=MEAL)
    dishes = fields.List(fields.Nested(DishBrief), required=True)


class MenuDayOut(Schema):
    date = fields.Date(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["draft", "published", "changed"]), metadata={
        "description": "guardians: always published. Staff: draft (never published), published, or changed "
                       "(the draft differs from what families see until the next publish)"})
    meals = fields.List(fields.Nested(MenuMealOut), required=True,
                        metadata={"description": "what families see (the published menu; empty for a draft)"})
    published_at = UtcDateTime(allow_none=True)
    draft = fields.List(fields.Nested(MenuMealOut), metadata={"description": "staff only: the draft"})
    updated_at = UtcDateTime(metadata={"description": "staff only: last draft edit"})


class MenuRangeOut(Schema):
    days = fields.List(fields.Nested(MenuDayOut), required=True)


class DateRangeArgs(Schema):
    from_ = fields.Date(required=True, data_key="from", attribute="from")
    to = fields.Date(required=True, metadata={"description": f"inclusive; at most {MAX_RANGE_DAYS} days after from"})


class DateRangeQuery(Schema):
    """``from``/``to`` of a read; either or both may be left out (see ``logic.common.date_range``)."""
    from_ = fields.Date(data_key="from", attribute="from", metadata={
        "description": "first day; left out: the Monday of `to`'s week, or of this week"})
    to = fields.Date(metadata={"description": f"inclusive, at most {MAX_RANGE_DAYS} days after from; left out: "
                                              "the Sunday of `from`'s week"})


class PublishOut(Schema):
    from_ = fields.Date(required=True, data_key="from", attribute="from")
    to = fields.Date(required=True)
    published = fields.List(fields.Date(), required=True,
                            metadata={"description": "days whose published menu changed with this call"})
    unchanged = fields.List(fields.Date(), required=True, metadata={"description": "days already published as drafted"})
    notified = fields.Boolean(required=True, metadata={"description": "guardians were told (something changed)"})


# --- allergies ----------------------------------------------------------------------------------
class AllergiesIn(Schema):
    allergens = fields.List(ALLERGEN, required=True, validate=validate.Length(max=len(ALLERGENS) * 2))


class AllergiesOut(Schema):
    allergens = fields.List(ALLERGEN, required=True)


# --- meal logs ----------------------------------------------------------------------------------
class MealEntryIn(Schema):
    student_id = Id(required=True)
    portion = fields.String(required=True, validate=validate.OneOf(list(PORTIONS)), metadata={
        "description": "how much of the serving the child ate: all 1, most 0.75, half 0.5, little 0.25, none 0"})
    note = fields.String(load_default="", allow_none=True, validate=validate.Length(max=500))


class MealLogIn(Schema):
    date = fields.Date(required=True)
    meal = fields.String(required=True, validate=MEAL)
    entries = fields.List(fields.Nested(MealEntryIn), required=True,
                          validate=validate.Length(min=1, max=MAX_ENTRIES))
    dish_ids = fields.List(Id(), validate=validate.Length(min=1, max=20), metadata={
        "description": "optional: the dishes served, when they differ from the published menu "
                       "(default: the published menu's dishes for this date and meal)"})


class FlagOut(Schema):
    student_id = Id(required=True)
    dish_id = Id(required=True)
    allergen = fields.String(required=True, validate=validate.OneOf(ALLERGENS))


class MealLogOut(Schema):
    logged = fields.Integer(required=True)
    flags = fields.List(fields.Nested(FlagOut), required=True,
                        metadata={"description": "served dishes holding an allergen of the child (one per allergen)"})


# --- a child's meals ----------------------------------------------------------------------------
class Nutrients(Schema):
    kcal = _amount(required=True)
    protein_g = _amount(required=True)
    fat_g = _amount(required=True)
    carbs_g = _amount(required=True)


class Recommended(Nutrients):
    age_group = fields.String(required=True, metadata={"description": "e.g. 1-2y, 3-5y, 6-7y"})
    share = fields.Float(required=True, metadata={
        "description": "the share of the day's recommended energy the school's meals should provide"})


class DayFlagOut(Schema):
    dish_id = Id(required=True)
    allergen = fields.String(required=True, validate=validate.OneOf(ALLERGENS))


class DayMealOut(Schema):
    meal = fields.String(required=True, validate=MEAL)
    dishes = fields.List(fields.Nested(DishBrief), required=True)
    portion = fields.String(allow_none=True, required=True, validate=validate.OneOf(list(PORTIONS)),
                            metadata={"description": "null: on the menu, not logged (yet)"})
    note = fields.String(allow_none=True, required=True)
    flags = fields.List(fields.Nested(DayFlagOut), required=True)


class MealDayOut(Schema):
    date = fields.Date(required=True)
    meals = fields.List(fields.Nested(DayMealOut), required=True)
    logged = fields.Boolean(required=True, metadata={"description": "some meal of the day was logged"})
    intake = fields.Nested(Nutrients, required=True,
                           metadata={"description": "Σ portion fraction × dish nutrients, 2 decimals"})
    recommended = fields.Nested(Recommended, allow_none=True, required=True, metadata={
        "description": "what the day's school meals should provide at the child's age (null without a birth date)"})


class MealWeekOut(Schema):
    week = fields.String(required=True, metadata={"description": "ISO week, e.g. 2026-W49"})
    from_ = fields.Date(required=True, data_key="from", attribute="from")
    to = fields.Date(required=True)
    days_logged = fields.Integer(required=True)
    intake = fields.Nested(Nutrients, required=True, metadata={"description": "sum of the logged days"})
    recommended = fields.Nested(Nutrients, allow_none=True, required=True,
                                metadata={"description": "sum over the logged days"})


class StudentMealsOut(Schema):
    student_id = Id(required=True)
    days = fields.List(fields.Nested(MealDayOut), required=True)
    weeks = fields.List(fields.Nested(MealWeekOut), required=True)


