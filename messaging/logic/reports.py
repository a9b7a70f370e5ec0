"""Reporting a message to the school admin, and the admin's list of reports."""
from __future__ import annotations

import datetime as dt
import logging

import peewee as pw

import notifications
from service.db import write_transaction
from service.errors import NotFound, ValidationError
from service.pagination import paginate_by_id
from service.roster import logic as roster

from .. import policy
from ..models import Conversation, Message, MessageReport
from .clock import now

log = logging.getLogger("lienlac.messaging")


def report_message(user_id: int, conv: Conversation, message_id, reason: str,
                   when: dt.datetime | None = None) -> tuple[MessageReport, bool]:
    """A member reports someone else's message to the school admin (once per message and member)."""
    msg = (Message.get_or_none((Message.id == int(message_id)) & (Message.conversation == conv.id))
           if policy.valid_id(message_id) else None)
    if msg is None:
        raise NotFound("No such message.")
    if msg.sender_id == user_id:
        raise ValidationError("You cannot report your own message.", fields={"message_id": ["Your own message."]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say what is wrong.", fields={"reason": ["Required."]})
    existing = MessageReport.get_or_none((MessageReport.message == msg.id) & (MessageReport.reporter == user_id))
    if existing is not None:
        return existing, False
    try:
        with write_transaction():
            report = MessageReport.create(message=msg.id, conversation=conv.id, school=conv.school_id,
                                          reporter=user_id, reason=reason, body_snapshot=msg.body,
                                          sender_id_snapshot=msg.sender_id, created_at=when or now())
    except pw.IntegrityError:
        return MessageReport.get((MessageReport.message == msg.id) & (MessageReport.reporter == user_id)), False
    try:
        admins = [row.user_id for row in roster.staff_query(conv.school_id, "admin")]
        if admins:
            notifications.notify(admins, "message", "Tin nhắn bị báo cáo",
                                 "Một phụ huynh hoặc giáo viên đã báo cáo một tin nhắn.",
                                 data={"type": "message_report", "id": str(report.id)})
    except Exception:  # noqa: BLE001 - the report is stored; admins also list them
        log.exception("report notification failed")
    return report, True


def reports_for_school(user_id: int, school_id, limit: int = 50, cursor: str | None = None) -> dict:
    school_id = policy.require_report_reader(user_id, school_id)
    return paginate_by_id(MessageReport.select().where(MessageReport.school == school_id), MessageReport.id,
                          limit, cursor, newest_first=True)
