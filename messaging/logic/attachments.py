"""Attachments: uploads (type, size, daily quota), who may download them, the purge of files never sent."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging

from flask import current_app

from service import jobs
from service.db import is_postgres, utcnow
from service.errors import RateLimited, ValidationError

from .. import policy
from .. import storage as storage_mod
from ..limits import PURGE_SLOT, UPLOAD_QUOTA_WINDOW
from ..models import Attachment
from .clock import now

log = logging.getLogger("lienlac.messaging")


def _check_upload_quota(user_id: int, size: int, ts: dt.datetime) -> None:
    """At most ``upload_quota_bytes_per_day`` uploaded by one user over the last 24 hours (files
    deleted since, sent or not, still count); over it, 429 with the wait until enough has aged out."""
    quota = current_app.config["LIENLAC"].upload_quota_bytes_per_day
    since = ts - UPLOAD_QUOTA_WINDOW
    rows = list(Attachment.select(Attachment.size, Attachment.created_at)
                .where((Attachment.uploader == user_id) & (Attachment.created_at > since))
                .order_by(Attachment.created_at))
    used = sum(r.size for r in rows)
    if used + size <= quota:
        return
    free_at = ts + UPLOAD_QUOTA_WINDOW
    for row in rows:  # the oldest uploads leave the window first
        used -= row.size
        if used + size <= quota:
            free_at = row.created_at + UPLOAD_QUOTA_WINDOW
            break
    retry_after = max(1, int((free_at - ts).total_seconds()) + 1)
    raise RateLimited(f"You have uploaded {quota} bytes in the last 24 hours; try again later.",
                      headers={"Retry-After": str(retry_after)})


def store_attachment(user_id: int, data: bytes, filename: str | None, when: dt.datetime | None = None) -> Attachment:
    """Keep an uploaded file (JPEG, PNG, WebP or PDF by its content; at most ``max_upload_bytes``).

    Only people of a school upload (a staff role or a linked child; others 403), within their
    daily quota (429). A file never sent is deleted after ``unsent_attachment_seconds``
    (``purge_unsent_attachments``)."""
    policy.require_uploader(user_id)
    limit = current_app.config["LIENLAC"].max_upload_bytes
    if not data:
        raise ValidationError("The file is empty.", fields={"file": ["Empty file."]})
    if len(data) > limit:
        raise ValidationError(f"The file is larger than {limit} bytes.", fields={"file": [f"At most {limit} bytes."]})
    content_type = storage_mod.sniff(data)
    if content_type is None:
        raise ValidationError("Only JPEG, PNG, WebP images and PDF documents can be sent.",
                              fields={"file": ["Not a JPEG, PNG, WebP or PDF file."]})
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "").strip()[:200]
    ts = when or now()
    _check_upload_quota(user_id, len(data), ts)
    key = storage_mod.new_key(ts)
    store = storage_mod.storage()
    store.put(key, data, content_type)
    try:
        att = Attachment.create(uploader=user_id, content_type=content_type, size=len(data), filename=name,
                                storage_key=key, sha256=hashlib.sha256(data).hexdigest(), created_at=ts)
    except Exception:
        store.delete(key)
        raise
    _schedule_purge()
    return att


def _schedule_purge() -> None:
    """A purge job for when this upload expires (wall clock: RQ's scheduler runs on it)."""
    ttl = dt.timedelta(seconds=current_app.config["LIENLAC"].unsent_attachment_seconds)
    try:
        schedule_purge(utcnow() + ttl)
    except Exception:  # noqa: BLE001 - the file is stored; a later upload's purge deletes it if unsent
        log.warning("could not schedule the purge of unsent attachments", exc_info=True)


def schedule_purge(expires_at: dt.datetime) -> str:
    """Make sure a purge runs once a file uploaded now has expired (``expires_at``, naive UTC, wall clock).

    One job per hour: the job id names the hour after ``expires_at``, so the uploads of an hour
    share one job (idempotent, from any process), and each run deletes every expired file, those
    of an earlier hour whose job was lost included.
    """
    interval = int(PURGE_SLOT.total_seconds())
    slot = int(expires_at.replace(tzinfo=dt.timezone.utc).timestamp()) // interval + 1
    at = dt.datetime.fromtimestamp(slot * interval, dt.timezone.utc).replace(tzinfo=None)
    return jobs.enqueue("messaging.jobs.purge_unsent_attachments", queue="low",
                        job_id=f"messaging-purge-attachments-{slot}", at=at, retry=(3, [60, 600, 3600]))


def attachment_for(user_id: int, attachment_id) -> Attachment:
    """The uploader until it is sent; then the members of the conversation it was sent to. 404 otherwise."""
    att = Attachment.get_or_none(Attachment.id == int(attachment_id)) if policy.valid_id(attachment_id) else None
    return policy.require_may_see_attachment(user_id, att)


def attachment_bytes(att: Attachment) -> bytes:
    return storage_mod.storage().get(att.storage_key)


def claimable(user_id: int, attachment_ids: list[int]) -> list[Attachment]:
    """The caller's uploaded files not sent yet, locked, in the order given; 422 otherwise."""
    query = Attachment.select().where(Attachment.id.in_(attachment_ids) & (Attachment.uploader == user_id)
                                      & Attachment.message.is_null() & Attachment.deleted_at.is_null())
    atts = list(query.for_update() if is_postgres() else query)
    if len(atts) != len(attachment_ids):
        raise ValidationError("An attachment is not yours to send or was sent already.",
                              fields={"attachments": ["Upload each file first; a file is sent once."]})
    order = {a: i for i, a in enumerate(attachment_ids)}
    return sorted(atts, key=lambda a: order[a.id])


def purge_unsent_attachments(when: dt.datetime | None = None, batch: int = 500) -> int:
    """Delete the files uploaded more than ``unsent_attachment_seconds`` ago and never sent.

    The row stays, marked deleted (it still counts toward the uploader's quota and can no longer be
    sent: ``claimable`` skips deleted rows); the bytes go. Each row is marked with a
    conditional update, so a file being sent at this moment is either sent or purged, never both.
    Returns how many were deleted.
    """
    ts = when or now()
    cutoff = ts - dt.timedelta(seconds=current_app.config["LIENLAC"].unsent_attachment_seconds)
    store = storage_mod.storage()
    purged = 0
    while True:
        rows = list(Attachment.select(Attachment.id, Attachment.storage_key)
                    .where(Attachment.message.is_null() & Attachment.deleted_at.is_null()
                           & (Attachment.created_at < cutoff))
                    .order_by(Attachment.id).limit(batch))
        for row in rows:
            marked = Attachment.update(deleted_at=ts).where(
                (Attachment.id == row.id) & Attachment.message.is_null() & Attachment.deleted_at.is_null()).execute()
            if marked:
                store.delete(row.storage_key)
                purged += 1
        if len(rows) < batch:
            return purged
