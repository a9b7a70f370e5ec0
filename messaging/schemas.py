"""Messaging JSON in and out (HTTP bodies and Socket.IO payloads)."""
from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.schemas import ErrorBody, FastSchema, Id, UtcDateTime

from .limits import MAX_ATTACHMENTS, MAX_BODY, MAX_CLIENT_ID, MAX_DIRECT_PARTICIPANTS

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", error="HH:MM (school time).")


# --- out ----------------------------------------------------------------------------------------
class AttachmentOut(Schema):
    id = Id(required=True)
    content_type = fields.String(required=True, metadata={"description": "image/jpeg, image/png, image/webp or application/pdf"})
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    filename = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "download URL (needs the bearer token)"})


class MessageNoticeOut(Schema):
    kind = fields.String(required=True, metadata={"description": "outside_office_hours"})
    text = fields.String(required=True, metadata={"description": "a note to show the sender (Vietnamese)"})
    next_office_hour = UtcDateTime(allow_none=True)
    teacher_id = Id(allow_none=True)


class MessageOut(FastSchema):
    id = Id(required=True)
    conversation_id = Id(required=True)
    sender_id = Id(required=True)
    body = fields.String(required=True, metadata={"description": "empty when deleted"})
    client_id = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    seq = fields.Integer(required=True, metadata={"description": "1, 2, 3, … per conversation, no gaps"})
    edited_at = UtcDateTime(allow_none=True)
    deleted = fields.Boolean(required=True, metadata={"description": "a tombstone: the body and files are gone"})
    attachments = fields.List(fields.Nested(AttachmentOut), required=True)
    notice = fields.Nested(MessageNoticeOut, allow_none=True, metadata={
        "description": "only in the answer to the sender, e.g. the teacher's next office hour"})


class ConversationParticipantOut(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(["teacher", "guardian"]))


class ConversationOut(FastSchema):
    id = Id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["direct", "class"]))
    title = fields.String(required=True)
    student_id = Id(allow_none=True, metadata={"description": "direct conversations: the student they are about"})
    class_id = Id(allow_none=True, metadata={"description": "class channels: the class"})
    announcement_only = fields.Boolean(required=True)
    participants = fields.List(fields.Nested(ConversationParticipantOut), required=True,
                               metadata={"description": "names and roles; never phone numbers"})
    last_message = fields.Nested(MessageOut, allow_none=True)
    unread_count = fields.Integer(required=True)
    last_seq = fields.Integer(required=True)
    updated_at = UtcDateTime(required=True)
    created_at = UtcDateTime(required=True)


class ConversationPage(FastSchema):
    items = fields.List(fields.Nested(ConversationOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class MessagePage(FastSchema):
    items = fields.List(fields.Nested(MessageOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ReadMarkOut(Schema):
    user_id = Id(required=True)
    up_to_seq = fields.Integer(required=True)


class MessageReceiptOut(Schema):
    message_id = Id(required=True)
    seq = fields.Integer(required=True)
    sender_id = Id(required=True)
    seen_by = fields.Integer(required=True, metadata={"description": "members but the sender who read it"})
    of = fields.Integer(required=True, metadata={"description": "members but the sender"})


class ConversationReceiptsOut(FastSchema):
    conversation_id = Id(required=True)
    member_count = fields.Integer(required=True)
    reads = fields.List(fields.Nested(ReadMarkOut), required=True, metadata={
        "description": "each member's read mark (in class channels a guardian sees the teachers' and their own)"})
    items = fields.List(fields.Nested(MessageReceiptOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class MessageReportOut(Schema):
    id = Id(required=True)
    message_id = Id(required=True)
    conversation_id = Id(required=True)
    school_id = Id(required=True)
    reporter_id = Id(required=True)
    sender_id = Id(required=True, attribute="sender_id_snapshot")
    reason = fields.String(required=True)
    body = fields.String(required=True, attribute="body_snapshot", metadata={"description": "the text when reported"})
    created_at = UtcDateTime(required=True)


class MessageReportPage(Schema):
    items = fields.List(fields.Nested(MessageReportOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class OfficeHourSlot(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(min=1, max=7),
                             metadata={"description": "1 = Monday … 7 = Sunday"})
    start = fields.String(required=True, validate=HHMM, metadata={"example": "07:30"})
    end = fields.String(required=True, validate=HHMM, metadata={"example": "11:00"})

    @validates_schema
    def _order(self, data, **_kw):
        if "start" in data and "end" in data and data["start"] >= data["end"]:
            raise ValidationError("start must be before end.", "end")


class OfficeHours(Schema):
    slots = fields.List(fields.Nested(OfficeHourSlot), required=True, validate=validate.Length(max=50))
    timezone = fields.String(dump_only=True, metadata={"description": "the school's timezone the times are in"})


# --- in -----------------------------------------------------------------------------------------
class ConversationIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["direct", "class"]))
    student_id = Id(metadata={"description": "direct: the student the conversation is about"})
    participant_ids = fields.List(Id(), validate=validate.Length(min=1, max=MAX_DIRECT_PARTICIPANTS - 1),
                                  metadata={"description": "direct: the other people (the caller is added)"})
    class_id = Id(metadata={"description": "class: the class whose channel to return"})

    @validates_schema
    def _needs(self, data, **_kw):
        if data.get("kind") == "direct":
            missing = {k: ["Required for a direct conversation."] for k in ("student_id", "participant_ids")
                       if k not in data}
            if missing:
                raise ValidationError(missing)
        if data.get("kind") == "class" and "class_id" not in data:
            raise ValidationError({"class_id": ["Required for a class channel."]})


class ConversationPatch(Schema):
    announcement_only = fields.Boolean(metadata={"description": "class channels; teachers of the class only"})


class MessageIn(Schema):
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CLIENT_ID),
                              metadata={"description": "made by the app (e.g. a UUID); the same one again "
                                                       "returns the stored message"})
    body = fields.String(load_default="", validate=validate.Length(max=MAX_BODY),
                         metadata={"description": f"at most {MAX_BODY} characters; may be empty with attachments"})
    attachments = fields.List(Id(), load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS),
                              metadata={"description": "ids from POST /attachments"})


class MessageEditIn(Schema):
    body = fields.String(required=True, validate=validate.Length(max=MAX_BODY))


class MessageHistoryArgs(Schema):
    before = fields.Integer(validate=validate.Range(min=0), metadata={"description": "seq: older messages, newest first"})
    after = fields.Integer(validate=validate.Range(min=0), metadata={"description": "seq: newer messages, oldest first"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})


class ConversationReadIn(Schema):
    up_to_seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class MessageReportIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class AttachmentUploadIn(Schema):
    file = Upload(required=True, metadata={"description": "JPEG, PNG, WebP or PDF (checked by content)"})


# --- Socket.IO payloads ---------------------------------------------------------------------------
class MessageSendPayload(MessageIn):
    conversation_id = Id(required=True)


class MessageReadPayload(ConversationReadIn):
    conversation_id = Id(required=True)


class TypingPayload(Schema):
    conversation_id = Id(required=True)


class SendErrorBody(ErrorBody):
    retry_after = fields.Integer(metadata={"description": "with `rate_limited`: seconds to wait before sending "
                                                          "again (as HTTP's `Retry-After`)"})


class MessageSendAck(Schema):
    message = fields.Nested(MessageOut, metadata={"description": "the stored message (also when sent before)"})
    error = fields.Nested(SendErrorBody, metadata={"description": "instead of message: what went wrong"})


class MessageReadAck(Schema):
    up_to_seq = fields.Integer(metadata={"description": "the caller's read mark now"})
    error = fields.Nested(ErrorBody)


class MessageEvent(Schema):
    message = fields.Nested(MessageOut, required=True)


class MessageReadEvent(Schema):
    conversation_id = Id(required=True)
    user_id = Id(required=True)
    up_to_seq = fields.Integer(required=True)


class TypingEvent(Schema):
    conversation_id = Id(required=True)
    user_id = Id(required=True)


class ConversationUpdatedEvent(Schema):
    conversation_id = Id(required=True)
    announcement_only = fields.Boolean(required=True)
