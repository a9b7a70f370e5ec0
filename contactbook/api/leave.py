"""Leave requests (xin nghỉ phép)."""
from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from service.accounts.logic import login_required
from service.schemas import ListArgs

from ..logic import leave
from ..schemas import DecisionIn, LeaveIn, LeaveListArgs, LeaveOut, LeavePage
from ._common import errors

blp = Blueprint("contactbook_leave", __name__, url_prefix="", description="Leave requests (xin nghỉ phép)")
blueprints = (blp,)


@blp.route("/students/<int:student_id>/leave-requests", methods=["POST"])
@blp.arguments(LeaveIn)
@blp.response(201, LeaveOut)
@errors(blp, 403, 404, 409, 422, e403="not a guardian of the student (staff)",
        e409="overlaps a pending or approved request of the child")
@login_required
def create_leave(body, student_id):
    """Ask for days off for a child (guardian); the homeroom teacher is notified (category `leave`)."""
    return leave.create(g.user, student_id, body["from_date"], body["to_date"], body["reason"])


@blp.route("/students/<int:student_id>/leave-requests", methods=["GET"])
@blp.arguments(ListArgs, location="query")
@blp.response(200, LeavePage)
@errors(blp, 403, 404)
@login_required
def list_student_leave(args, student_id):
    """A student's leave requests, newest first (guardians, the class's teachers, admins)."""
    return leave.for_student(g.user, student_id, args["limit"], args["cursor"])


@blp.route("/classes/<int:class_id>/leave-requests", methods=["GET"])
@blp.arguments(LeaveListArgs, location="query")
@blp.response(200, LeavePage)
@errors(blp, 403, 404)
@login_required
def list_class_leave(args, class_id):
    """Leave requests of the class's students, newest first; `status=pending` for those to decide."""
    return leave.for_class(g.user, class_id, args["status"], args["limit"], args["cursor"])


@blp.route("/leave-requests/<int:leave_request_id>/decision", methods=["POST"])
@blp.arguments(DecisionIn)
@blp.response(200, LeaveOut)
@errors(blp, 403, 404, 409, 422, e403="sees the student but is not the homeroom teacher or an admin",
        e409="the request is not pending")
@login_required
def decide_leave(body, leave_request_id):
    """Approve or reject (homeroom teacher or admin); the guardians are notified (category `leave`).

    Approved school days read `absent_excused` in attendance unless the teacher posts that day otherwise later.
    """
    return leave.decide(g.user, leave_request_id, body["approved"], body["note"])


@blp.route("/leave-requests/<int:leave_request_id>/cancel", methods=["POST"])
@blp.response(200, LeaveOut)
@errors(blp, 403, 404, 409, e409="the request is not pending")
@login_required
def cancel_leave(leave_request_id):
    """Cancel a pending request (a guardian of the child); the homeroom teacher is told."""
    return leave.cancel(g.user, leave_request_id)
