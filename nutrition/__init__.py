"""Lienlac nutrition package: dishes and their nutrients, menus, allergies and alerts, meal logs, intake.

Other packages use its public entry only, never its modules or tables:
``nutrition.meals_for_day(student_id, date)`` (the child's meals that day, as the day's page shows
them; the caller has authorised the student) and ``DayMealOut``, the schema that serialises them.
"""
from .logic.meals import meals_for_day
from .schemas import DayMealOut

__all__ = ["DayMealOut", "meals_for_day"]
