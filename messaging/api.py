"""HTTP: conversations, messages, read receipts, attachments, reports and office hours."""
from __future__ import annotations

import io

from flask import current_app, g, send_file
from flask_smorest import Blueprint

from service.accounts.logic import login_required
from service import schemas as service_schemas
from service.db import is_postgres, one_snapshot
from service.schemas import ErrorEnvelope, ListArgs

from .logic import attachments, conversations, edits, history, list_json, office_hours, reports, sending
from .logic import receipts as read_receipts
from .schemas import (AttachmentOut, ConversationIn, ConversationOut, ConversationPage, ConversationPatch,
                      MessageHistoryArgs, MessageEditIn, MessageIn, MessageOut, MessagePage, OfficeHours, ConversationReadIn,
                      ConversationReceiptsOut, MessageReportIn, MessageReportOut, MessageReportPage, AttachmentUploadIn)

blp = Blueprint("messaging", __name__, url_prefix="/conversations",
                description="Conversations between families and teachers, and class channels")
files_blp = Blueprint("messaging_attachments", __name__, url_prefix="/attachments",
                      description="Files sent in conversations")
office_blp = Blueprint("messaging_office_hours", __name__, url_prefix="/me/office-hours",
                       description="A teacher's office hours for families")
reports_blp = Blueprint("messaging_reports", __name__, url_prefix="/schools",
                        description="Messages reported to the school admin")
blueprints = (blp, files_blp, office_blp, reports_blp)

NOT_FOUND = "not a conversation of the caller"


def _conv(conversation_id):
    return conversations.conversation_for(g.user.id, conversation_id)


# --- conversations ------------------------------------------------------------------------------
@blp.route("", methods=["GET"])
@blp.arguments(ListArgs, location="query")
@blp.response(200, ConversationPage)
@login_required
def list_conversations(args):
    """The caller's conversations (direct and class channels), most recently active first."""
    if service_schemas.CHECK_FAST_DUMP and is_postgres():
        return _checked_list(args)
    body = list_json.page_json(g.user.id, args["limit"], args["cursor"])  # PostgreSQL builds the JSON
    if body is None:
        return conversations.list_conversations(g.user.id, args["limit"], args["cursor"])
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


def _checked_list(args):
    """The tests (``LIENLAC_CHECK_FAST_DUMP``): the database-built page must be, byte for byte, what
    the Python path gives. Both read one snapshot (a REPEATABLE READ transaction), so a message sent
    meanwhile by concurrent traffic (the fault tests) cannot tell them apart. A first read, outside
    it, creates the caller's missing class channels (a write that would conflict inside it)."""
    list_json.page_json(g.user.id, args["limit"], args["cursor"])
    with one_snapshot():
        body = list_json.page_json(g.user.id, args["limit"], args["cursor"])
        if body is None:  # (attachments served from elsewhere: the Python path only)
            return conversations.list_conversations(g.user.id, args["limit"], args["cursor"])
        expected = current_app.json.response(ConversationPage().dump(
            conversations.list_conversations(g.user.id, args["limit"], args["cursor"]))).get_data()
    if body != expected:
        raise AssertionError(f"list_json differs from the Python path:\n{body!r}\n{expected!r}")
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


@blp.route("", methods=["POST"])
@blp.arguments(ConversationIn)
@blp.response(201, ConversationOut, description="created")
@blp.alt_response(200, schema=ConversationOut, description="the same people about the same student: the existing one")
@blp.alt_response(403, schema=ErrorEnvelope, description="the caller's role may not talk with families (e.g. cafeteria)")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such student or class for the caller")
@blp.alt_response(422, schema=ErrorEnvelope, description="participants who are not the student's guardians or teachers")
@login_required
def open_conversation(body):
    """Open a direct conversation about a student (or get a class channel with ``kind: "class"``)."""
    if body["kind"] == "class":
        conv, created = conversations.class_conversation(g.user.id, body["class_id"]), False
    else:
        conv, created = conversations.open_direct(g.user.id, body["student_id"], body["participant_ids"])
    view = conversations.conversation_views(g.user.id, [conv])[0]
    return view, (201 if created else 200)


@blp.route("/<conversation_id>", methods=["GET"])
@blp.response(200, ConversationOut)
@blp.alt_response(404, schema=ErrorEnvelope, description=NOT_FOUND)
@login_required
def get_conversation(conversation_id):
    """One conversation."""
    return conversations.conversation_views(g.user.id, [_conv(conversation_id)])[0]


@blp.route("/<conversation_id>", methods=["PATCH"])
@blp.arguments(ConversationPatch)
@blp.response(200, ConversationOut)
@blp.alt_response(403, schema=ErrorEnvelope, description="only the class's teachers")
@blp.alt_response(404, schema=ErrorEnvelope, description=NOT_FOUND)
@login_required
def update_conversation(body, conversation_id):
    """Make a class channel announcement-only (only teachers post) or open again."""
    conv = conversations.update_conversation(g.user.id, _conv(conversation_id), body)
    return conversations.conversation_views(g.user.id, [conv])[0]


# --- messages -----------------------------------------------------------------------------------
@blp.route("/<conversation_id>/messages", methods=["GET"])
@blp.arguments(MessageHistoryArgs, location="query")
@blp.response(200, MessagePage)
@blp.alt_response(404, schema=ErrorEnvelope, description=NOT_FOUND)
@login_required
def list_messages(args, conversation_id):
    """History: newest first (``before=<seq>`` for older), or oldest first ``after=<seq>`` (offline catch-up)."""
    return history.history(_conv(conversation_id), args.get("before"), args.get("after"), args["limit"], args["cursor"])


@blp.route("/<conversation_id>/messages", methods=["POST"])
@blp.arguments(MessageIn)
@blp.response(201, MessageOut, description="stored and delivered")
@blp.alt_response(200, schema=MessageOut, description="this client_id was sent before: the stored message")
@blp.alt_response(403, schema=ErrorEnvelope, description="an announcement-only channel (guardians may not post)")
@blp.alt_response(404, schema=ErrorEnvelope, description=NOT_FOUND)
@blp.alt_response(409, schema=ErrorEnvelope, description="this client_id was used for another conversation")
@blp.alt_response(422, schema=ErrorEnvelope, description="empty or too long body, or a bad attachment")
@blp.alt_response(429, schema=ErrorEnvelope, description="too many messages from the caller (HTTP and Socket.IO "
                                                         "together, `MESSAGE_RATE_LIMIT`): wait `Retry-After` seconds")
@login_required
def send_message(body, conversation_id):
    """Send a message; it reaches every connected member (``message:new``) and pushes to the others."""
    view, created = sending.send(g.user.id, conversation_id, body["client_id"], body["body"], body["attachments"])
    return view, (201 if created else 200)


@blp.route("/<conversation_id>/messages/<message_id>", methods=["PATCH"])
@blp.arguments(MessageEditIn)
@blp.response(200, MessageOut)
@blp.alt_response(403, schema=ErrorEnvelope, description="not the sender, or more than 15 minutes ago")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such message")
@blp.alt_response(409, schema=ErrorEnvelope, description="the message was deleted")
@login_required
def edit_message(body, conversation_id, message_id):
    """Edit one's own message within 15 minutes (``message:updated`` goes to the room)."""
    return edits.edit_message(g.user.id, _conv(conversation_id), message_id, body["body"])


@blp.route("/<conversation_id>/messages/<message_id>", methods=["DELETE"])
@blp.response(200, MessageOut, description="the tombstone")
@blp.alt_response(403, schema=ErrorEnvelope, description="not the sender, or more than 15 minutes ago")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such message")
@login_required
def delete_message(conversation_id, message_id):
    """Delete one's own message within 15 minutes: a tombstone (``deleted: true``, empty body) stays."""
    return edits.delete_message(g.user.id, _conv(conversation_id), message_id)


@blp.route("/<conversation_id>/messages/<message_id>/report", methods=["POST"])
@blp.arguments(MessageReportIn)
@blp.response(201, MessageReportOut, description="reported")
@blp.alt_response(200, schema=MessageReportOut, description="reported before by the caller")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such message")
@blp.alt_response(422, schema=ErrorEnvelope, description="one's own message")
@login_required
def report_message(body, conversation_id, message_id):
    """Report a message to the school admin."""
    report, created = reports.report_message(g.user.id, _conv(conversation_id), message_id, body["reason"])
    return report, (201 if created else 200)


# --- receipts -----------------------------------------------------------------------------------
@blp.route("/<conversation_id>/read", methods=["POST"])
@blp.arguments(ConversationReadIn)
@blp.response(204)
@blp.alt_response(404, schema=ErrorEnvelope, description=NOT_FOUND)
@login_required
def mark_read(body, conversation_id):
    """Everything up to ``up_to_seq`` is read (the mark never goes back); ``message:read`` goes to the room."""
    read_receipts.mark_read(g.user.id, _conv(conversation_id), body["up_to_seq"])
    return "", 204


@blp.route("/<conversation_id>/receipts", methods=["GET"])
@blp.arguments(MessageHistoryArgs, location="query")
@blp.response(200, ConversationReceiptsOut)
@blp.alt_response(404, schema=ErrorEnvelope, description=NOT_FOUND)
@login_required
def receipts(args, conversation_id):
    """Read marks and, per message (paged like the history), "seen by N of M"."""
    return read_receipts.receipts(g.user.id, _conv(conversation_id), args.get("before"), args.get("after"),
                          args["limit"], args["cursor"])


# --- attachments --------------------------------------------------------------------------------
@files_blp.route("", methods=["POST"])
@files_blp.arguments(AttachmentUploadIn, location="files")
@files_blp.response(201, AttachmentOut)
@files_blp.alt_response(422, schema=ErrorEnvelope, description="empty, larger than the upload limit, or not a JPEG, PNG, "
                                                            "WebP or PDF")
@files_blp.alt_response(413, schema=ErrorEnvelope, description="a request far over the upload limit (more than 64 KiB "
                                                            "over): refused before it is read")
@files_blp.alt_response(403, schema=ErrorEnvelope, description="an account with no role in a school and no linked child")
@files_blp.alt_response(429, schema=ErrorEnvelope, description="the caller's upload quota for the last 24 hours is used "
                                                            "(`UPLOAD_QUOTA_BYTES_PER_DAY`): wait `Retry-After` seconds")
@login_required
def upload(files):
    """Upload a file (multipart field ``file``) to send with a message (``attachments: [id]``).

    A file not sent with a message within a day (`UNSENT_ATTACHMENT_SECONDS`) is deleted."""
    upload = files["file"]
    limit = current_app.config["LIENLAC"].max_upload_bytes
    data = upload.stream.read(limit + 1)
    return history.attachment_view(attachments.store_attachment(g.user.id, data, upload.filename))


@files_blp.route("/<attachment_id>", methods=["GET"])
@files_blp.response(200, description="the file's bytes with its content type")
@files_blp.alt_response(404, schema=ErrorEnvelope, description="not the caller's to see")
@login_required
def download(attachment_id):
    """Download a file: the uploader, or the members of the conversation it was sent to."""
    att = attachments.attachment_for(g.user.id, attachment_id)
    response = send_file(io.BytesIO(attachments.attachment_bytes(att)), mimetype=att.content_type,
                         download_name=att.filename or f"attachment-{att.id}", as_attachment=False)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- office hours -------------------------------------------------------------------------------
@office_blp.route("", methods=["GET"])
@office_blp.response(200, OfficeHours)
@login_required
def get_office_hours():
    """The caller's weekly office hours (teachers), in the school's time."""
    return office_hours.office_hours(g.user.id)


@office_blp.route("", methods=["PUT"])
@office_blp.arguments(OfficeHours)
@office_blp.response(200, OfficeHours)
@office_blp.alt_response(403, schema=ErrorEnvelope, description="not a teacher")
@login_required
def put_office_hours(body):
    """Set the weekly office hours; a family's message outside them pushes silently and tells them the next slot."""
    office_hours.set_office_hours(g.user.id, body["slots"])
    return office_hours.office_hours(g.user.id)


# --- reports (admin) ----------------------------------------------------------------------------
@reports_blp.route("/<school_id>/message-reports", methods=["GET"])
@reports_blp.arguments(ListArgs, location="query")
@reports_blp.response(200, MessageReportPage)
@reports_blp.alt_response(403, schema=ErrorEnvelope, description="not the school's admin")
@reports_blp.alt_response(404, schema=ErrorEnvelope, description="a school the caller does not belong to")
@login_required
def list_reports(args, school_id):
    """Messages reported in the school's conversations, newest first (school admin)."""
    return reports.reports_for_school(g.user.id, school_id, args["limit"], args["cursor"])

