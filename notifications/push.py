"""Push through firebase-admin (FCM HTTP v1): messages, batches, errors, retries, the rate ceiling.

Delivery guarantee: one ``PushAttempt`` row per (notification, device), claimed (``sending``)
in its own committed transaction *before* the request to FCM and marked ``accepted`` after. A
job that dies and runs again skips every claimed row, so FCM never gets the same notification
for the same device twice (at most once; a job killed between claim and mark loses at most
that one batch's pushes, which stay ``sending``, and the inbox still has the notification).

Retries: the SDK's own urllib3 retry is narrowed to one immediate retry of a 500/503 (it
otherwise sleeps 0/1/2/4 s per message inside ``send_each``'s threads and honours 429
Retry-After there). Everything else comes back here: 429/500/503/timeouts are retried by this
module with exponential backoff and full jitter, never sooner than FCM's ``Retry-After`` (which
also pauses the shared rate bucket), a few rounds inside the job, then as a scheduled job.
UNREGISTERED, SENDER_ID_MISMATCH and INVALID_ARGUMENT about the token delete the device.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import random
import time
import uuid
from collections import defaultdict
from email.utils import parsedate_to_datetime

import firebase_admin
import requests
from firebase_admin import exceptions as fb_exc
from firebase_admin import messaging
from flask import current_app
from peewee import fn
from urllib3.util.retry import Retry

from service.bulk import insert_ignore
from service.db import utcnow, write_transaction

from . import queues
from .fcm_endpoint import firebase_app
from .models import Device, Notification, PushAttempt
from .ratelimit import TokenBucket

log = logging.getLogger("lienlac.notifications.push")


BATCH = 500  # send_each's limit
INLINE_ROUNDS = 3  # retry rounds inside one job before handing over to a scheduled job
INLINE_MAX_DELAY = 8.0  # seconds: longer waits become a scheduled job
MAX_TRIES = 8  # sends of one attempt in all, then it is failed
BACKOFF_BASE = 0.5
BACKOFF_MAX = 300.0
TITLE_MAX, BODY_MAX = 120, 400  # the push is the signal; the inbox has the full text
GOOGLE_FCM = "https://fcm.googleapis.com"
GONE = "gone"  # the token is dead: delete the device
RETRY = "retry"
FAILED = "failed"
ACCEPTED = "accepted"


# --- the sender --------------------------------------------------------------------------------
@dataclasses.dataclass
class Sender:
    app: firebase_admin.App
    bucket: TokenBucket
    description: str
    backoff_base: float = BACKOFF_BASE  # seconds; Config.fcm_retry_base_seconds (tests make it short)

    def send_each(self, messages: list[messaging.Message]) -> list:
        """One result per message: None (accepted) or the FirebaseError."""
        if not messages:
            return []
        self.bucket.acquire(len(messages))
        response = messaging.send_each(messages, app=self.app)
        return [None if r.success else r.exception for r in response.responses]


def sdk_retry() -> Retry:
    """The SDK's inner retry, narrowed: one immediate retry of 500/503, no Retry-After sleeps."""
    return Retry(total=3, connect=1, read=1, status=1, status_forcelist=[500, 503], allowed_methods=None,
                 backoff_factor=0, raise_on_status=False, respect_retry_after_header=False)


def _tune_sdk_retries(app: firebase_admin.App, endpoint: str | None) -> None:
    svc = messaging._get_messaging_service(app)  # pylint: disable=protected-access
    session = svc._client.session  # pylint: disable=protected-access
    for prefix in filter(None, (GOOGLE_FCM, endpoint and endpoint.rstrip("/"))):
        session.mount(prefix, requests.adapters.HTTPAdapter(pool_connections=100, pool_maxsize=BATCH,
                                                            max_retries=sdk_retry()))


def make_sender(config, redis=None) -> Sender | None:
    """From the configuration: a credentials file, else FCM_ENDPOINT + FIREBASE_PROJECT_ID, else None."""
    cred_file, endpoint, project = config.firebase_credentials, config.fcm_endpoint, config.firebase_project_id
    if cred_file:
        if not project:
            with open(cred_file, encoding="utf-8") as fh:
                project = json.load(fh).get("project_id")
        description = f"FCM project {project} ({'endpoint ' + endpoint if endpoint else 'Google'})"
    elif endpoint and project:
        description = f"FCM project {project} at {endpoint} (anonymous credentials)"
    else:
        return None
    name = "lienlac-" + hashlib.sha256(f"{cred_file}|{endpoint}|{project}".encode()).hexdigest()[:16]
    try:
        app = firebase_admin.get_app(name)
    except ValueError:
        app = firebase_app(project, endpoint=endpoint, credentials_file=cred_file, name=name)
    _tune_sdk_retries(app, endpoint)
    rate = float(config.fcm_rate_per_second or 0) or 1e9
    bucket = TokenBucket(rate, capacity=max(rate, 1.0), redis=redis,
                         key=f"lienlac:fcm:rate:{project}")
    return Sender(app=app, bucket=bucket, description=description, backoff_base=config.fcm_retry_base_seconds)


def current_sender() -> Sender | None:
    return current_app.extensions.get("lienlac.push")


# --- messages ----------------------------------------------------------------------------------
def _clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def push_data(note: Notification) -> dict[str, str]:
    """The FCM data block: string values only (see mobile_api_docs/PUSH.md)."""
    data = json.loads(note.data or "{}")
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        out[str(key)] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                            separators=(",", ":"))
    out.update({"notification_id": str(note.id), "category": note.category})
    if note.urgent:
        out["urgent"] = "1"
    if note.silent:
        out["silent"] = "1"
    if not note.in_inbox:
        out["inbox"] = "0"
    return out


def build_message(note: Notification, token: str, badge: int) -> messaging.Message:
    title, body = _clip(note.title, TITLE_MAX), _clip(note.body, BODY_MAX)
    silent, urgent = note.silent and not note.urgent, note.urgent
    channel = "urgent" if urgent else ("silent" if silent else "default")
    android = messaging.AndroidConfig(
        priority="normal" if silent else "high",
        collapse_key=note.collapse_key,
        notification=messaging.AndroidNotification(
            channel_id=channel, tag=note.collapse_key, notification_count=badge,
            sound=None if silent else "default", default_sound=None if silent else True,
            priority="low" if silent else ("max" if urgent else "high")))
    headers = {"apns-priority": "5" if silent else "10", "apns-push-type": "alert"}
    if note.collapse_key:
        headers["apns-collapse-id"] = note.collapse_key[:64]
    level = "time-sensitive" if urgent else ("passive" if silent else "active")
    apns = messaging.APNSConfig(headers=headers, payload=messaging.APNSPayload(aps=messaging.Aps(
        badge=badge, sound=None if silent else "default", thread_id=note.category,
        custom_data={"interruption-level": level})))
    message = messaging.Message(notification=messaging.Notification(title=title, body=body),
                                data=push_data(note), android=android, apns=apns)
    message.token = token  # set after __init__: firebase-admin 7.7 warns on token= in favour of fid=
    return message


# --- outcomes ----------------------------------------------------------------------------------
def _retry_after(exc) -> float | None:
    response = getattr(exc, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def classify(exc) -> tuple[str, str, float | None]:
    """An FCM error → (GONE | RETRY | FAILED, error code, Retry-After seconds or None)."""
    if isinstance(exc, messaging.UnregisteredError):
        return GONE, "UNREGISTERED", None
    if isinstance(exc, messaging.SenderIdMismatchError):
        return GONE, "SENDER_ID_MISMATCH", None
    if isinstance(exc, fb_exc.InvalidArgumentError):
        # FCM answers INVALID_ARGUMENT both for a malformed token and for a malformed message
        text = str(exc).lower()
        return (GONE if "registration token" in text or "token" in text else FAILED), "INVALID_ARGUMENT", None
    if isinstance(exc, fb_exc.ResourceExhaustedError):  # QuotaExceededError: 429
        return RETRY, "QUOTA_EXCEEDED", _retry_after(exc)
    if isinstance(exc, fb_exc.UnavailableError):
        return RETRY, "UNAVAILABLE", _retry_after(exc)
    if isinstance(exc, fb_exc.InternalError):
        return RETRY, "INTERNAL", _retry_after(exc)
    if isinstance(exc, (fb_exc.DeadlineExceededError, fb_exc.UnknownError)):
        return RETRY, type(exc).__name__.replace("Error", "").upper()[:40], None
    return FAILED, (getattr(exc, "code", None) or type(exc).__name__)[:40], None


def backoff(tries: int, retry_after: float | None = None, base: float = BACKOFF_BASE, rng=random) -> float:
    """Exponential backoff with (half) jitter, never shorter than Retry-After."""
    ceiling = min(BACKOFF_MAX, base * (2 ** max(0, tries - 1)))
    delay = rng.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


# --- pushing notifications ---------------------------------------------------------------------
def unread_counts(user_ids) -> dict[int, int]:
    ids = list(user_ids)
    out: dict[int, int] = {}
    for start in range(0, len(ids), 1000):
        query = (Notification.select(Notification.user, fn.COUNT(Notification.id).alias("n"))
                 .where(Notification.user.in_(ids[start:start + 1000]) & Notification.in_inbox
                        & Notification.read_at.is_null())
                 .group_by(Notification.user))
        out.update({row.user_id: row.n for row in query})
    return out


def _claim(pairs: list[tuple[Notification, Device]], claim: str, now: dt.datetime) -> dict[tuple[int, int], list]:
    """Claim the attempt rows of these pairs for this run: new rows, and due ``retry`` rows.

    Returns {(notification_id, device_id): [attempt_id, tries]} of the rows this run now owns.
    Committed before anything is sent.
    """
    note_ids = sorted({n.id for n, _ in pairs})
    device_ids = sorted({d.id for _, d in pairs})
    rows = [(n.id, d.id, n.announcement_id, "sending", claim, 1, now) for n, d in pairs]
    with write_transaction():
        insert_ignore(PushAttempt, ["notification", "device_id", "announcement_id", "status", "claim", "tries",
                                    "updated_at"], rows)
        (PushAttempt.update(status="sending", claim=claim, tries=PushAttempt.tries + 1, updated_at=now)
         .where(PushAttempt.notification.in_(note_ids) & PushAttempt.device_id.in_(device_ids)
                & (PushAttempt.status == "retry") & (PushAttempt.next_at <= now))
         .execute())
    wanted = {(n.id, d.id) for n, d in pairs}
    owned = {}
    for row in (PushAttempt.select(PushAttempt.id, PushAttempt.notification, PushAttempt.device_id,
                                   PushAttempt.tries)
                .where(PushAttempt.claim == claim).namedtuples()):
        key = (row.notification, row.device_id)
        if key in wanted:
            owned[key] = [row.id, row.tries]
    return owned


def _record(attempt_ids: list[int], now: dt.datetime, **changes) -> None:
    for start in range(0, len(attempt_ids), 500):
        (PushAttempt.update(updated_at=now, **changes)
         .where(PushAttempt.id.in_(attempt_ids[start:start + 500])).execute())


def _release(attempt_ids: list[int]) -> None:
    """Claimed attempts not sent after all: due for retry at once, by any run."""
    with write_transaction():
        for start in range(0, len(attempt_ids), 500):
            (PushAttempt.update(status="retry", next_at=utcnow(), updated_at=utcnow())
             .where(PushAttempt.id.in_(attempt_ids[start:start + 500]) & (PushAttempt.status == "sending"))
             .execute())


def _finish(owned: dict, outcomes: dict[tuple[int, int], tuple[str, str | None]], now: dt.datetime,
            next_at: dt.datetime | None = None) -> None:
    """Record results: ACCEPTED, FAILED/GONE (with code) or RETRY (due at ``next_at``)."""
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for key, (status, code) in outcomes.items():
        groups[({ACCEPTED: "accepted", RETRY: "retry"}.get(status, "failed"), code)].append(owned[key][0])
    with write_transaction():
        for (status, code), attempt_ids in groups.items():
            _record(sorted(attempt_ids), now, status=status, error=code,
                    next_at=next_at if status == "retry" else None)


def push_notifications(notification_ids, now: dt.datetime | None = None, sender: Sender | None = None) -> dict:
    """Push these notifications to their users' devices (those due; held ones once their time has
    come). Safe to run again and concurrently: claims decide who sends what. Returns counts."""
    sender = sender or current_sender()
    stats = {"sent": 0, "failed": 0, "gone": 0, "retry_later": 0, "db_ms": 0.0, "send_ms": 0.0}
    if sender is None or not notification_ids:
        return stats
    now = now or utcnow()
    ids = sorted({int(i) for i in notification_ids})
    notes = list(Notification.select().where(
        Notification.id.in_(ids) & ((Notification.push_status == "pending")
                                    | ((Notification.push_status == "held") & (Notification.push_after <= now)))))
    if not notes:
        return stats
    held = [n.id for n in notes if n.push_status == "held"]
    if held:
        Notification.update(push_status="pending").where(
            Notification.id.in_(held) & (Notification.push_status == "held")).execute()
    users = sorted({n.user_id for n in notes})
    devices: dict[int, list[Device]] = defaultdict(list)
    for start in range(0, len(users), 1000):
        for device in Device.select().where(Device.user.in_(users[start:start + 1000])).order_by(Device.id):
            devices[device.user_id].append(device)
    pairs = [(n, d) for n in notes for d in devices.get(n.user_id, [])]
    if not pairs:
        return stats
    badges = unread_counts(users)
    later: list[int] = []
    later_at: dt.datetime | None = None
    for start in range(0, len(pairs), BATCH):
        batch = pairs[start:start + BATCH]
        claim = uuid.uuid4().hex
        t0 = time.monotonic()
        owned = _claim(batch, claim, utcnow())
        stats["db_ms"] += (time.monotonic() - t0) * 1000
        todo = [(n, d) for n, d in batch if (n.id, d.id) in owned]
        rounds = 0
        while todo:
            t0 = time.monotonic()
            try:
                messages = [build_message(n, d.token, badges.get(n.user_id, 0)) for n, d in todo]
                results = sender.send_each(messages)
            except BaseException:
                # nothing of this round reached FCM's answer: hand the claims back so the job's
                # retry sends them (a SIGKILL cannot do this; those stay claimed: at most once)
                _release(sorted(owned[(n.id, d.id)][0] for n, d in todo))
                raise
            stats["send_ms"] += (time.monotonic() - t0) * 1000
            outcomes, retry, gone_devices, waits = {}, [], [], []
            for (n, d), exc in zip(todo, results):
                if exc is None:
                    outcomes[(n.id, d.id)] = (ACCEPTED, None)
                    continue
                kind, code, retry_after = classify(exc)
                if kind == RETRY and owned[(n.id, d.id)][1] < MAX_TRIES:
                    retry.append((n, d))
                    waits.append(retry_after)
                    outcomes[(n.id, d.id)] = (RETRY, code)
                else:
                    outcomes[(n.id, d.id)] = (FAILED if kind != GONE else GONE, code)
                    if kind == GONE:
                        gone_devices.append(d.id)
                    elif kind == RETRY:
                        log.warning("push gave up after %d tries: %s", owned[(n.id, d.id)][1], code)
            stats["sent"] += sum(1 for s, _ in outcomes.values() if s == ACCEPTED)
            stats["failed"] += sum(1 for s, _ in outcomes.values() if s == FAILED)
            stats["gone"] += len(gone_devices)
            done = {k: v for k, v in outcomes.items() if v[0] != RETRY}
            t0 = time.monotonic()
            _finish(owned, done, utcnow())
            stats["db_ms"] += (time.monotonic() - t0) * 1000
            if gone_devices:
                Device.delete().where(Device.id.in_(sorted(set(gone_devices)))).execute()
                log.info("deleted %d unregistered devices", len(set(gone_devices)))
            if not retry:
                break
            rounds += 1
            tries = max(owned[(n.id, d.id)][1] for n, d in retry)
            retry_after = max((w for w in waits if w is not None), default=None)
            if retry_after:
                sender.bucket.penalize(min(retry_after, 60.0))
            delay = backoff(tries, retry_after, sender.backoff_base)
            if rounds > INLINE_ROUNDS or delay > INLINE_MAX_DELAY:
                at = utcnow() + dt.timedelta(seconds=delay)
                _finish(owned, {(n.id, d.id): (RETRY, outcomes[(n.id, d.id)][1]) for n, d in retry}, utcnow(), at)
                later.extend(n.id for n, _ in retry)
                later_at = max(later_at, at) if later_at else at
                stats["retry_later"] += len(retry)
                break
            time.sleep(delay)
            for n, d in retry:
                owned[(n.id, d.id)][1] += 1
            _record(sorted(owned[(n.id, d.id)][0] for n, d in retry), utcnow(), tries=PushAttempt.tries + 1)
            todo = retry
    # retries another run scheduled that are not due yet (a scheduler may start a job a little
    # early, or this run raced it): make sure a run comes for them when they are due
    waiting = (PushAttempt.select(PushAttempt.notification, PushAttempt.next_at)
               .where(PushAttempt.notification.in_(ids) & (PushAttempt.status == "retry")
                      & (PushAttempt.next_at > utcnow())).tuples())
    for note_id, next_at in waiting:
        later.append(note_id)
        later_at = max(later_at, next_at) if later_at else next_at
    if later:
        queues.enqueue("push", sorted(set(later)), queue="low", at=later_at,
                       job_id=f"push-retry-{uuid.uuid4().hex}")
    stats["db_ms"], stats["send_ms"] = round(stats["db_ms"], 1), round(stats["send_ms"], 1)
    log.info("pushed %s", " ".join(f"{k}={v}" for k, v in stats.items()))
    return stats
