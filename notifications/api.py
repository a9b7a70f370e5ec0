"""HTTP: devices, the inbox, preferences and announcements (paths fixed by API.md "Notifications")."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.accounts.logic import login_required
from service.errors import NotFound
from service.schemas import ErrorEnvelope

from . import announcements, logic
from .schemas import (AnnouncementCreated, AnnouncementIn, AnnouncementOut, DeviceIn, DeviceOut, DeviceTokenIn, InboxArgs,
                      MarkedOut, NotificationPage, PreferencesIn, PreferencesOut, UnreadCountOut)

devices_blp = Blueprint("devices", __name__, url_prefix="/devices", description="Push notification devices")
inbox_blp = Blueprint("inbox", __name__, url_prefix="/notifications", description="The notification inbox")
prefs_blp = Blueprint("preferences", __name__, url_prefix="/me", description="Notification preferences")
ann_blp = Blueprint("announcements", __name__, url_prefix="/announcements",
                    description="School announcements (thông báo) to families")
blueprints = (devices_blp, inbox_blp, prefs_blp, ann_blp)

_MAX_ID = 2**63 - 1


def _id(value: str) -> int:
    """Ids are opaque strings to the client; anything that is not one of ours is simply not found."""
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= _MAX_ID:
        raise NotFound("Not found.")
    return int(value)


# --- devices -------------------------------------------------------------------------------------
@devices_blp.route("", methods=["POST"])
@devices_blp.arguments(DeviceIn)
@devices_blp.response(200, DeviceOut)
@login_required
def register_device(body):
    """Register this app install's FCM token (upsert; a token registered on another account moves here)."""
    return logic.register_device(g.user.id, body["token"], body["platform"], body.get("locale"))


@devices_blp.route("/<string:token>", methods=["DELETE"])
@devices_blp.response(204)
@devices_blp.alt_response(404, schema=ErrorEnvelope, description="not one of the caller's devices")
@login_required
def delete_device(token):
    """Stop pushes to this token. (The token is in the path: request logs redact it; the app may prefer
    `DELETE /devices` with the token in the body.)"""
    logic.remove_device(g.user.id, token)
    return "", 204


@devices_blp.route("", methods=["DELETE"])
@devices_blp.arguments(DeviceTokenIn)
@devices_blp.response(204)
@devices_blp.alt_response(404, schema=ErrorEnvelope, description="not one of the caller's devices")
@login_required
def delete_device_by_body(body):
    """Stop pushes to this token, given in the body `{token}` (kept out of URLs altogether)."""
    logic.remove_device(g.user.id, body["token"])
    return "", 204


# --- inbox ---------------------------------------------------------------------------------------
@inbox_blp.route("", methods=["GET"])
@inbox_blp.arguments(InboxArgs, location="query")
@inbox_blp.response(200, NotificationPage)
@login_required
def list_notifications(args):
    """The caller's inbox, newest first (``unread=1``: unread only)."""
    return logic.inbox(g.user.id, args["unread"], args["limit"], args["cursor"])


@inbox_blp.route("/unread-count", methods=["GET"])
@inbox_blp.response(200, UnreadCountOut)
@login_required
def unread_count():
    """How many inbox notifications are unread (the app badge)."""
    return {"unread": logic.unread_count(g.user.id)}


@inbox_blp.route("/<notification_id>/read", methods=["POST"])
@inbox_blp.response(204)
@inbox_blp.alt_response(404, schema=ErrorEnvelope, description="not one of the caller's notifications")
@login_required
def mark_read(notification_id):
    """Mark one notification read (idempotent)."""
    logic.mark_read(g.user.id, _id(notification_id))
    return "", 204


@inbox_blp.route("/read-all", methods=["POST"])
@inbox_blp.response(200, MarkedOut)
@login_required
def mark_all_read():
    """Mark every notification of the caller read."""
    return {"marked": logic.mark_all_read(g.user.id)}


# --- preferences ---------------------------------------------------------------------------------
@prefs_blp.route("/preferences")
class Preferences(MethodView):
    @prefs_blp.response(200, PreferencesOut)
    @login_required
    def get(self):
        """My notification preferences (defaults: every category on, no quiet hours, Vietnamese)."""
        return logic.preferences(g.user.id)

    @prefs_blp.arguments(PreferencesIn)
    @prefs_blp.response(200, PreferencesOut)
    @login_required
    def put(self, body):
        """Change my preferences. Quiet hours are the school's local time; pushes wait until they end
        (the inbox fills at once); urgent announcements ignore them."""
        kwargs = {}
        if "quiet_hours" in body:
            kwargs["quiet_hours"] = body["quiet_hours"]
        return logic.set_preferences(g.user.id, body.get("categories"), language=body.get("language"), **kwargs)


# --- announcements -------------------------------------------------------------------------------
@ann_blp.route("", methods=["POST"])
@ann_blp.arguments(AnnouncementIn)
@ann_blp.response(202, AnnouncementCreated)
@ann_blp.alt_response(403, schema=ErrorEnvelope, description="not a school admin or homeroom teacher")
@ann_blp.alt_response(404, schema=ErrorEnvelope, description="a school, class or guardian the caller cannot reach")
@ann_blp.alt_response(422, schema=ErrorEnvelope, description="invalid, or nobody in the audience")
@login_required
def create_announcement(body):
    """Announce to families: a whole school, grades, classes or named guardians (admin), or a homeroom
    teacher's own classes. Delivered in the background: inbox for all, push to their phones."""
    ann = announcements.create(g.user.id, body["title"], body["body"], body["audience"], body["send_at"],
                               body["requires_ack"], body["urgent"], body["remind_after_minutes"])
    return {"id": ann.id, "status": ann.status}


@ann_blp.route("/<announcement_id>", methods=["GET"])
@ann_blp.response(200, AnnouncementOut)
@ann_blp.alt_response(404, schema=ErrorEnvelope, description="neither its sender's staff nor a recipient")
@login_required
def get_announcement(announcement_id):
    """An announcement; its sender (and the school admin) also get the delivery counts."""
    return announcements.view(g.user.id, _id(announcement_id))


@ann_blp.route("/<announcement_id>/cancel", methods=["POST"])
@ann_blp.response(200, AnnouncementCreated)
@ann_blp.alt_response(404, schema=ErrorEnvelope, description="not an announcement the caller sent or may manage")
@ann_blp.alt_response(409, schema=ErrorEnvelope, description="already being sent")
@login_required
def cancel_announcement(announcement_id):
    """Cancel a scheduled or queued announcement before it goes out."""
    ann = announcements.cancel(g.user.id, _id(announcement_id))
    return {"id": ann.id, "status": ann.status}


@ann_blp.route("/<announcement_id>/ack", methods=["POST"])
@ann_blp.response(204)
@ann_blp.alt_response(404, schema=ErrorEnvelope, description="not sent to the caller")
@ann_blp.alt_response(409, schema=ErrorEnvelope, description="the announcement does not ask for it")
@login_required
def acknowledge(announcement_id):
    """Confirm I have read an announcement that asks for it (marks it read too)."""
    announcements.acknowledge(g.user.id, _id(announcement_id))
    return "", 204
