"""Notice texts, in Vietnamese (the default) and English: ``notify(texts=...)`` picks each
recipient's language from their preferences. Times are the school's local ``HH:MM``."""
from __future__ import annotations

import datetime as dt

from .common import fmt_date

STATUS_VI = {"present": "có mặt", "late": "đi học muộn", "absent_excused": "vắng có phép",
             "absent_unexcused": "vắng không phép"}
STATUS_EN = {"present": "present", "late": "late", "absent_excused": "absent (excused)",
             "absent_unexcused": "absent (unexcused)"}


def attendance(name: str, day: dt.date, status: str, note: str = "") -> dict:
    extra_vi = f" Ghi chú: {note}" if note else ""
    extra_en = f" Note: {note}" if note else ""
    return {"vi": (f"Điểm danh: {name}", f"{name} {STATUS_VI[status]} ngày {fmt_date(day)}.{extra_vi}"),
            "en": (f"Attendance: {name}", f"{name} was {STATUS_EN[status]} on {fmt_date(day)}.{extra_en}")}


def arrived(name: str, hhmm: str, late: bool) -> dict:
    return {"vi": (f"{name} đã đến trường", f"{name} đã đến trường lúc {hhmm}" + (" (muộn)." if late else ".")),
            "en": (f"{name} arrived at school", f"{name} arrived at {hhmm}" + (" (late)." if late else "."))}


def left(name: str, hhmm: str) -> dict:
    return {"vi": (f"{name} đã ra về", f"{name} đã rời trường lúc {hhmm}."),
            "en": (f"{name} left school", f"{name} left at {hhmm}.")}


def _span(from_date: dt.date, to_date: dt.date) -> str:
    return fmt_date(from_date) if from_date == to_date else f"{fmt_date(from_date)} – {fmt_date(to_date)}"


def leave_asked(name: str, from_date: dt.date, to_date: dt.date, reason: str) -> dict:
    span = _span(from_date, to_date)
    return {"vi": (f"Đơn xin nghỉ: {name}", f"{span}: {reason}"),
            "en": (f"Leave request: {name}", f"{span}: {reason}")}


def leave_decided(name: str, from_date: dt.date, to_date: dt.date, approved: bool, note: str = "") -> dict:
    span = _span(from_date, to_date)
    vi = "đã được duyệt" if approved else "không được duyệt"
    en = "approved" if approved else "rejected"
    return {"vi": (f"Đơn xin nghỉ {vi}", f"Đơn xin nghỉ của {name} ({span}) {vi}." + (f" {note}" if note else "")),
            "en": (f"Leave request {en}", f"The leave request for {name} ({span}) was {en}."
                   + (f" {note}" if note else ""))}


def leave_cancelled(name: str, from_date: dt.date, to_date: dt.date) -> dict:
    span = _span(from_date, to_date)
    return {"vi": ("Đơn xin nghỉ đã huỷ", f"Phụ huynh đã huỷ đơn xin nghỉ của {name} ({span})."),
            "en": ("Leave request cancelled", f"The guardian cancelled the leave request for {name} ({span}).")}
