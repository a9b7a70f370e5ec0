"""Messaging tables: conversations, their messages, read marks, attachments, reports, office hours.

Membership of a ``class`` conversation is not stored: it is the class's teachers and the
guardians of its students, read from the roster at the moment it is needed, so it follows the
roster without sync jobs. ``direct`` conversations store their participants.
"""
from __future__ import annotations

import peewee as pw

from service.db import BaseModel, utcnow
from service.accounts.models import User
from service.roster.models import School, SchoolClass, Student

KINDS = ("direct", "class")


class Conversation(BaseModel):
    id = pw.BigAutoField()
    kind = pw.CharField(max_length=10)  # direct | class
    school = pw.ForeignKeyField(School, on_delete="CASCADE")
    # the class channel: at most one per class
    school_class = pw.ForeignKeyField(SchoolClass, null=True, unique=True, on_delete="CASCADE")
    # a direct conversation is about one student between a set of people: sha256 of "student:sorted ids"
    student = pw.ForeignKeyField(Student, null=True, on_delete="CASCADE")
    participant_key = pw.CharField(max_length=64, null=True, unique=True)
    title = pw.CharField(max_length=200, default="")
    announcement_only = pw.BooleanField(default=False)
    last_seq = pw.BigIntegerField(default=0)  # incremented under the row lock with each message
    last_message_at = pw.DateTimeField(null=True)
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow, index=True)  # last activity: list order


class Participant(BaseModel):
    """A member of a direct conversation."""

    id = pw.BigAutoField()
    conversation = pw.ForeignKeyField(Conversation, backref="participants", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    joined_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "conversation_participant"
        indexes = ((("conversation", "user"), True),)


class Message(BaseModel):
    id = pw.BigAutoField()
    conversation = pw.ForeignKeyField(Conversation, backref="messages", on_delete="CASCADE")
    seq = pw.BigIntegerField()
    sender = pw.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    client_id = pw.CharField(max_length=100)
    body = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    edited_at = pw.DateTimeField(null=True)
    deleted_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "chat_message"
        indexes = ((("conversation", "seq"), True), (("sender", "client_id"), True))


class ReadMark(BaseModel):
    """How far a member has read a conversation (never decreases)."""

    id = pw.BigAutoField()
    conversation = pw.ForeignKeyField(Conversation, on_delete="CASCADE")
    user = pw.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    up_to_seq = pw.BigIntegerField(default=0)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "conversation_read_mark"
        indexes = ((("conversation", "user"), True),)


class Attachment(BaseModel):
    """An uploaded file; ``message`` is set when a message takes it (once)."""

    id = pw.BigAutoField()
    uploader = pw.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    message = pw.ForeignKeyField(Message, null=True, backref="attachments", on_delete="SET NULL")
    content_type = pw.CharField(max_length=100)
    size = pw.BigIntegerField()
    filename = pw.CharField(max_length=200, default="")
    storage_key = pw.CharField(max_length=300)
    sha256 = pw.CharField(max_length=64)
    created_at = pw.DateTimeField(default=utcnow)
    deleted_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "message_attachment"


class MessageReport(BaseModel):
    """A member reports a message to the school admin; the text is kept as it was."""

    id = pw.BigAutoField()
    message = pw.ForeignKeyField(Message, on_delete="CASCADE", backref="+")
    conversation = pw.ForeignKeyField(Conversation, on_delete="CASCADE", backref="+")
    school = pw.ForeignKeyField(School, on_delete="CASCADE", backref="+")
    reporter = pw.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    reason = pw.TextField()
    body_snapshot = pw.TextField(default="")
    sender_id_snapshot = pw.BigIntegerField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("message", "reporter"), True), (("school", "id"), False))


class OfficeHour(BaseModel):
    """A weekly slot when a teacher answers families (school-local time, ISO weekday 1 = Monday)."""

    id = pw.BigAutoField()
    teacher = pw.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    weekday = pw.SmallIntegerField()
    start_minute = pw.SmallIntegerField()  # minutes after local midnight
    end_minute = pw.SmallIntegerField()

    class Meta:
        indexes = ((("teacher", "weekday", "start_minute"), True),)


MODELS = [Conversation, Participant, Message, ReadMark, Attachment, MessageReport, OfficeHour]
