"""HTTP: dishes, menus, allergies, meal logs and a child's meals (API.md, "Nutrition").

Views parse, call ``nutrition.logic`` with the caller, and serialise; authorisation is in ``policy``.
"""
from __future__ import annotations

import datetime as dt

from flask import g
from flask_smorest import Blueprint

from service.accounts.logic import login_required
from service.errors import ValidationError
from service.schemas import ErrorEnvelope, ListArgs

from . import logic
from .schemas import (AllergiesIn, AllergiesOut, DateRangeArgs, DateRangeQuery, DishIn, DishOut, DishPage, DishPatch, MealLogIn,
                      MealLogOut, MenuDayOut, MenuIn, MenuRangeOut, PublishOut, StudentMealsOut)

blp = Blueprint("nutrition", __name__, url_prefix="",
                description="Dishes, menus, allergies, meal logs and what a child ate (thực đơn, suất ăn)")
blueprints = (blp,)

SCHOOL_404 = "no such school for the caller"
WRITE_403 = "only the school's admin and cafeteria staff"


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else _bad_date()
    except ValueError:
        return _bad_date()


def _bad_date():
    raise ValidationError("The date is YYYY-MM-DD.", fields={"date": ["Not a valid date (YYYY-MM-DD)."]})


# --- dishes -------------------------------------------------------------------------------------
@blp.route("/schools/<int:school_id>/dishes", methods=["POST"])
@blp.arguments(DishIn)
@blp.response(201, DishOut)
@blp.alt_response(403, schema=ErrorEnvelope, description=WRITE_403)
@blp.alt_response(404, schema=ErrorEnvelope, description=SCHOOL_404)
@blp.alt_response(422, schema=ErrorEnvelope, description="a negative nutrient, more than 2 decimals, an unknown allergen")
@login_required
def create_dish(body, school_id):
    """Add a dish to the school's catalogue (nutrients per serving; allergens from the fixed list)."""
    return logic.create_dish(g.user, school_id, body)


@blp.route("/schools/<int:school_id>/dishes", methods=["GET"])
@blp.arguments(ListArgs, location="query")
@blp.response(200, DishPage)
@blp.alt_response(404, schema=ErrorEnvelope, description=SCHOOL_404)
@login_required
def list_dishes(args, school_id):
    """The school's dishes, oldest first (staff of the school and guardians of its students)."""
    return logic.list_dishes(g.user, school_id, args["limit"], args["cursor"])


@blp.route("/schools/<int:school_id>/dishes/<int:dish_id>", methods=["GET"])
@blp.response(200, DishOut)
@blp.alt_response(404, schema=ErrorEnvelope, description="no such dish in this school for the caller")
@login_required
def get_dish(school_id, dish_id):
    """One dish."""
    return logic.get_dish(g.user, school_id, dish_id)


@blp.route("/schools/<int:school_id>/dishes/<int:dish_id>", methods=["PATCH"])
@blp.arguments(DishPatch)
@blp.response(200, DishOut)
@blp.alt_response(403, schema=ErrorEnvelope, description=WRITE_403)
@blp.alt_response(404, schema=ErrorEnvelope, description="no such dish in this school for the caller")
@blp.alt_response(422, schema=ErrorEnvelope, description="bad values (as for POST)")
@login_required
def update_dish(body, school_id, dish_id):
    """Change some of a dish's fields. Logged meals are totalled with the dish as it is now; an allergen
    added to a dish on a published menu (from today on) alerts the allergic children's families."""
    return logic.update_dish(g.user, school_id, dish_id, body)


@blp.route("/schools/<int:school_id>/dishes/<int:dish_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(403, schema=ErrorEnvelope, description=WRITE_403)
@blp.alt_response(404, schema=ErrorEnvelope, description="no such dish in this school for the caller")
@login_required
def delete_dish(school_id, dish_id):
    """Retire a dish: it leaves the catalogue and cannot go on new menus; past menus and logs keep it."""
    logic.delete_dish(g.user, school_id, dish_id)
    return None


# --- menus --------------------------------------------------------------------------------------
@blp.route("/schools/<int:school_id>/menus/<date>", methods=["PUT"])
@blp.arguments(MenuIn)
@blp.response(200, MenuDayOut)
@blp.alt_response(403, schema=ErrorEnvelope, description=WRITE_403)
@blp.alt_response(404, schema=ErrorEnvelope, description=SCHOOL_404)
@blp.alt_response(422, schema=ErrorEnvelope, description="a bad date, a meal given twice, a dish id that is not "
                                                         "a live dish of this school")
@login_required
def put_menu(body, school_id, date):
    """Set one day's draft menu (``{meals: [{meal, dish_ids}]}``). Families see it once published."""
    return logic.put_menu(g.user, school_id, _date(date), body["meals"])


@blp.route("/schools/<int:school_id>/menus/publish", methods=["POST"])
@blp.arguments(DateRangeArgs)
@blp.response(200, PublishOut)
@blp.alt_response(403, schema=ErrorEnvelope, description=WRITE_403)
@blp.alt_response(404, schema=ErrorEnvelope, description=SCHOOL_404)
@blp.alt_response(422, schema=ErrorEnvelope, description="to before from, or more than 62 days")
@login_required
def publish_menus(body, school_id):
    """Publish the drafts of ``from``..``to``. The school's guardians are told once (category ``meal``)
    if any day changed; children whose allergens a published dish holds alert their guardians and
    the cafeteria (once per child, dish and day)."""
    return logic.publish(g.user, school_id, body["from"], body["to"])


@blp.route("/schools/<int:school_id>/menus", methods=["GET"])
@blp.arguments(DateRangeQuery, location="query")
@blp.response(200, MenuRangeOut)
@blp.alt_response(404, schema=ErrorEnvelope, description=SCHOOL_404)
@blp.alt_response(422, schema=ErrorEnvelope, description="to before from, or more than 62 days")
@login_required
def list_menus(args, school_id):
    """Menus of ``from``..``to``: published days for guardians of the school's students; its staff also
    see drafts and unpublished changes (``status``, ``draft``). Without ``from``/``to``: this week
    (Monday to Sunday, in the school's time zone)."""
    return logic.list_menus(g.user, school_id, args.get("from"), args.get("to"))


# --- allergies ----------------------------------------------------------------------------------
@blp.route("/students/<int:student_id>/allergies", methods=["GET"])
@blp.response(200, AllergiesOut)
@blp.alt_response(404, schema=ErrorEnvelope, description="no such student for the caller")
@login_required
def get_allergies(student_id):
    """The child's allergens."""
    return logic.get_allergies(g.user, student_id)


@blp.route("/students/<int:student_id>/allergies", methods=["PUT"])
@blp.arguments(AllergiesIn)
@blp.response(200, AllergiesOut)
@blp.alt_response(403, schema=ErrorEnvelope, description="the caller's role may not set them (e.g. cafeteria)")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such student for the caller")
@blp.alt_response(422, schema=ErrorEnvelope, description="an unknown allergen")
@login_required
def set_allergies(body, student_id):
    """Replace the child's allergens (a guardian, the class's teachers or the school's admin). A newly
    added allergen found in an already published menu from today on alerts at once."""
    return logic.set_allergies(g.user, student_id, body["allergens"])


# --- meal logs ----------------------------------------------------------------------------------
@blp.route("/classes/<int:class_id>/meal-logs", methods=["POST"])
@blp.arguments(MealLogIn)
@blp.response(200, MealLogOut)
@blp.alt_response(403, schema=ErrorEnvelope, description="a guardian of the class")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such class for the caller")
@blp.alt_response(422, schema=ErrorEnvelope, description="a student not in the class or given twice, a bad portion, "
                                                         "no published menu for the meal and no dish_ids")
@login_required
def log_meals(body, class_id):
    """Record how much of one meal each child of the class ate (one request per class; posting again
    corrects). Served dishes holding an allergen of a child are flagged and alerted once."""
    return logic.log_meals(g.user, class_id, body["date"], body["meal"], body["entries"], body.get("dish_ids"))


# --- a child's meals ----------------------------------------------------------------------------
@blp.route("/students/<int:student_id>/meals", methods=["GET"])
@blp.arguments(DateRangeQuery, location="query")
@blp.response(200, StudentMealsOut)
@blp.alt_response(404, schema=ErrorEnvelope, description="no such student for the caller")
@blp.alt_response(422, schema=ErrorEnvelope, description="to before from, or more than 62 days")
@login_required
def student_meals(args, student_id):
    """What the child was served and ate, per day, with intake beside the recommended amounts for the
    child's age group, and ISO-week totals (``weeks``). Without ``from``/``to``: this week."""
    return logic.student_meals(g.user, student_id, args.get("from"), args.get("to"))
