"""Gate devices (school admins) and their check-ins (the devices themselves, by API key)."""
from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from service.accounts.logic import login_required

from .. import policy
from ..logic import checkins
from ..schemas import CheckinBatchIn, CheckinResultOut, GateDeviceCreated, GateDeviceIn, GateDeviceList
from ._common import errors

blp = Blueprint("contactbook_gates", __name__, url_prefix="",
                description="Gate devices and check-ins (smart attendance)")
blueprints = (blp,)


@blp.route("/schools/<int:school_id>/gate-devices", methods=["POST"])
@blp.arguments(GateDeviceIn)
@blp.response(201, GateDeviceCreated)
@errors(blp, 403, 404, 422)
@login_required
def create_device(body, school_id):
    """Register a gate device (school admin). The answer holds its API key: shown this once."""
    return checkins.register_device(g.user, school_id, body["name"])


@blp.route("/schools/<int:school_id>/gate-devices", methods=["GET"])
@blp.response(200, GateDeviceList)
@errors(blp, 403, 404)
@login_required
def list_devices(school_id):
    """The school's live gate devices, without keys (school admin)."""
    return {"items": checkins.list_devices(g.user, school_id)}


@blp.route("/gate-devices/<int:device_id>", methods=["DELETE"])
@blp.response(204)
@errors(blp, 403, 404)
@login_required
def delete_device(device_id):
    """Revoke a gate device: its key stops working at once (school admin)."""
    checkins.revoke_device(g.user, device_id)
    return "", 204


@blp.route("/checkins", methods=["POST"])
@blp.doc(security=[{"deviceKey": []}])
@policy.device_required
@blp.arguments(CheckinBatchIn)
@blp.response(200, CheckinResultOut)
@errors(blp, 401, 422, e422="malformed events, or more than 1,000; nothing was stored")
def post_checkins(body):
    """A gate device's batch of events (header `X-Device-Key`, no user token).

    Each (device, `event_id`) is stored once: replays and late batches are counted in `duplicates`.
    The day's first `in` marks the child `present`, or `late` after the school's start time, unless a
    teacher set the day; guardians are told "arrived 07:05" / "left 16:40" (category `attendance`).
    Events of a student of another school are refused in `rejected`, nothing stored for them.
    """
    return checkins.receive(g.device, body["events"])
