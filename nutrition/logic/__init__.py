"""Nutrition rules: plain functions taking the acting user (authorised through ``nutrition.policy``).

Modules: ``dishes`` (catalogue), ``menus`` (drafts, publishing), ``allergies``, ``meals`` (meal logs,
intake), ``alerts`` (allergy alerts, once per child, dish and day), ``recommended`` (age-group
targets, with their sources). ``meals_for_day`` is the public read for the contact book's day page.
"""
from __future__ import annotations

from .allergies import get_allergies, set_allergies
from .dishes import create_dish, delete_dish, get_dish, list_dishes, update_dish
from .meals import log_meals, meals_for_day, student_meals
from .menus import list_menus, publish, put_menu

__all__ = ["create_dish", "list_dishes", "get_dish", "update_dish", "delete_dish", "put_menu", "publish",
           "list_menus", "get_allergies", "set_allergies", "log_meals", "student_meals", "meals_for_day"]
