"""Nutrition tables: dishes, menus by day, allergies, meal logs and the allergy-alert ledger.

Dish ids of a menu or a meal log are kept as JSON lists on the row (a day holds a handful of
dishes; they are always read together). Dishes are never deleted, only retired
(``deleted_at``): past menus and logs keep naming them.
"""
from __future__ import annotations

import json

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import School, SchoolClass, Student

_MONEY = dict(max_digits=10, decimal_places=2, auto_round=False)


class Dish(BaseModel):
    """A dish of a school's catalogue, nutrients per serving."""

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, on_delete="CASCADE")
    name = pw.CharField(max_length=200)
    kcal = pw.DecimalField(**_MONEY)
    protein_g = pw.DecimalField(**_MONEY)
    fat_g = pw.DecimalField(**_MONEY)
    carbs_g = pw.DecimalField(**_MONEY)
    fibre_g = pw.DecimalField(null=True, **_MONEY)
    sodium_mg = pw.DecimalField(null=True, **_MONEY)
    allergens = pw.CharField(max_length=200, default="")  # comma-separated, in ALLERGENS order
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    deleted_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "nutrition_dish"

    @property
    def allergen_list(self) -> list[str]:
        return [a for a in (self.allergens or "").split(",") if a]


class MenuDay(BaseModel):
    """A school's menu for one date: the draft staff edit, and what was last published.

    ``draft`` / ``published``: canonical JSON ``{"breakfast": [dish ids], ...}`` (meals in MEALS
    order). Publishing copies the draft; a day whose draft equals ``published`` is unchanged.
    """

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, on_delete="CASCADE")
    date = pw.DateField()
    draft = pw.TextField(default="{}")
    published = pw.TextField(null=True)
    published_at = pw.DateTimeField(null=True)
    updated_at = pw.DateTimeField(default=utcnow)
    updated_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")

    class Meta:
        table_name = "nutrition_menu_day"
        indexes = ((("school", "date"), True),)

    def draft_meals(self) -> dict[str, list[int]]:
        return json.loads(self.draft or "{}")

    def published_meals(self) -> dict[str, list[int]] | None:
        return json.loads(self.published) if self.published is not None else None


class StudentAllergy(BaseModel):
    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, on_delete="CASCADE")
    allergen = pw.CharField(max_length=30)
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")

    class Meta:
        table_name = "nutrition_student_allergy"
        indexes = ((("student", "allergen"), True),)


class MealLog(BaseModel):
    """One meal served to one class on one date, with the dishes served (JSON list of ids)."""

    id = pw.BigAutoField()
    school = pw.ForeignKeyField(School, on_delete="CASCADE")
    school_class = pw.ForeignKeyField(SchoolClass, on_delete="CASCADE")
    date = pw.DateField()
    meal = pw.CharField(max_length=20)
    dish_ids = pw.TextField(default="[]")
    logged_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "nutrition_meal_log"
        indexes = ((("school_class", "date", "meal"), True),)


class MealEntry(BaseModel):
    """How much of one meal one child ate. One row per child, date and meal: posting again corrects."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, on_delete="CASCADE")
    date = pw.DateField()
    meal = pw.CharField(max_length=20)
    meal_log = pw.ForeignKeyField(MealLog, on_delete="CASCADE")
    portion = pw.CharField(max_length=10)
    note = pw.TextField(default="")
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "nutrition_meal_entry"
        indexes = ((("student", "date", "meal"), True),)


class AllergyAlert(BaseModel):
    """The ledger that makes an allergy alert go out once per child, dish and day."""

    id = pw.BigAutoField()
    student = pw.ForeignKeyField(Student, on_delete="CASCADE")
    dish = pw.ForeignKeyField(Dish, on_delete="CASCADE")
    date = pw.DateField()
    allergens = pw.CharField(max_length=200)
    source = pw.CharField(max_length=20)  # publish | allergy | meal_log
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "nutrition_allergy_alert"
        indexes = ((("student", "dish", "date"), True),)


MODELS = [Dish, MenuDay, StudentAllergy, MealLog, MealEntry, AllergyAlert]
