"""The day's page of the contact book."""
from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from service.accounts.logic import login_required

from ..logic import daypage
from ..schemas import DayPageArgs, DayPageOut
from ._common import errors

blp = Blueprint("contactbook_day", __name__, url_prefix="", description="The day's page of the contact book")
blueprints = (blp,)


@blp.route("/students/<int:student_id>/contact-book", methods=["GET"])
@blp.arguments(DayPageArgs, location="query")
@blp.response(200, DayPageOut)
@errors(blp, 403, 404, 422)
@login_required
def day_page(args, student_id):
    """A student's day: attendance, gate check-ins, remarks, meals, timetable and the day's announcements."""
    return daypage.day_page(g.user, student_id, args["date"])
