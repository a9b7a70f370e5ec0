"""Push through FCM HTTP v1: messages, windows of claims, many requests in flight, errors, retries.

Sending: every worker process keeps one asyncio event loop (a daemon thread, made on first use,
again after a fork) with one ``fcm_http.FcmHttpClient``: up to ``CONNECTIONS`` requests in flight
over keep-alive HTTP/1.1 connections (TLS for fcm.googleapis.com). The bodies are firebase-admin's
own encoding (``messaging._MessagingService.encode_message``), made once per notification content
per window with only the token, badge, id and data block put in per message (``MessageBodies``),
the Authorization header comes from the firebase-admin App's google-auth credentials, and error
answers are decoded by the SDK's own error handling into the same ``FirebaseError`` classes as before (``UnregisteredError``,
``QuotaExceededError`` with its ``Retry-After``, ...). Why this client: the workers are CPU-bound,
and measured by ``benchmarks/push_clients.py --cpu`` against the local FCM server in its own
process it costs ~25-32 µs of CPU per request against ~190-210 µs for aiohttp (the client before)
and about the same as with httptools' parser (so no parser dependency). Why not
``messaging.send_each_async``: its httpx client hands every message of a batch to httpcore's pool
at once, and the pool scans its whole queue for each request: quadratic, a 400-message gather did
not finish in 20 s here. It also binds to the first event loop it meets, retries 500/503 itself
with sleeps, and sends HTTP/2 only over TLS.

Delivery guarantee (exactly one push per device, a resend shown once): one ``PushAttempt`` row
per (notification, device), inserted by the claim (the fan-out writes none). A window of up to
``WINDOW`` attempts is claimed in one statement (``INSERT … ON CONFLICT DO UPDATE … RETURNING``:
``sending``, a claim token, ``claimed_at``) and committed *before* anything is sent; the results
are written in one statement per window, guarded by the claim token. A job's windows go two at a
time (``_send_windows``): while one window's requests are in flight on the loop's thread, the job's
thread records the window before it and claims and encodes the one after it (the messages:
:mod:`notifications.messages`). Requests that never left (the next window could not start, or its
send raised) have their claims handed back at once; a window in flight when the job dies is left
to its claim timeout, as a killed worker's; while the window before it retries inline, its claims
are refreshed with the retried ones. A claim older than
``PUSH_CLAIM_TIMEOUT_SECONDS`` (its worker was killed between claim and answer) is taken over by
the next run that meets it: the push job run again by RQ, a follow-up each job schedules for
claims it saw in flight, or the sweep (``sweep``). The resend carries the same collapse key
(Android ``collapse_key`` and ``tag``, APNs ``apns-collapse-id``; ``n<notification id>`` unless
the notification has its own, e.g. ``conversation:<id>``), so a phone that got both shows one.

Retries: 429/500/503/timeouts/connection errors come back here and are retried with exponential
backoff and jitter, never sooner than FCM's ``Retry-After``, which also pauses the shared token
bucket (``ratelimit.TokenBucket.penalize``): every worker waits it out. A few rounds run inside
the job, longer waits become a scheduled job. UNREGISTERED, SENDER_ID_MISMATCH and
INVALID_ARGUMENT about the token delete the device, and end the attempts of that device that
were waiting to retry (``failed``).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import defaultdict, namedtuple
from email.utils import parsedate_to_datetime

import firebase_admin
import httpx
from firebase_admin import _utils as fb_utils
from firebase_admin import exceptions as fb_exc
from firebase_admin import messaging
from flask import current_app
from google.auth.transport import requests as google_requests
from peewee import fn

from service.bulk import update_many, upsert
from service.db import db, utcnow, write_transaction
from service.prepared import Prepared, any_of

from . import queues
from .fcm_endpoint import fcm_send_url, firebase_app
from .fcm_http import Answer, FcmConnectionError, FcmHttpClient, FcmTimeout
from .messages import MessageBodies, encode_body
from .models import Device, Notification, PushAttempt
from .ratelimit import TokenBucket

log = logging.getLogger("lienlac.notifications.push")


WINDOW = 1000  # attempts claimed, sent and recorded together
CONNECTIONS = 256  # requests in flight per worker process
REQUEST_TIMEOUT = 20.0  # seconds per request; well under PUSH_CLAIM_TIMEOUT_SECONDS
INLINE_ROUNDS = 3  # retry rounds inside one job before handing over to a scheduled job
INLINE_MAX_DELAY = 8.0  # seconds: longer waits become a scheduled job
MAX_TRIES = 8  # sends of one attempt in all, then it is failed
BACKOFF_BASE = 0.5
BACKOFF_MAX = 300.0
CLAIM_TIMEOUT = 60.0
GOOGLE_FCM = "https://fcm.googleapis.com"
FCM_HEADERS = {"Content-Type": "application/json; charset=UTF-8", "X-GOOG-API-FORMAT-VERSION": "2",
               "X-FIREBASE-CLIENT": f"fire-admin-python/{firebase_admin.__version__}"}
GONE = "gone"  # the token is dead: delete the device
RETRY = "retry"
FAILED = "failed"
ACCEPTED = "accepted"


# --- the sender --------------------------------------------------------------------------------
class _Loop:
    """This process's event loop (a daemon thread) and its FCM clients, one per URL."""

    def __init__(self, connections: int):
        self.connections = connections
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fcm-sender", daemon=True)
        self.thread.start()
        self.clients: dict[str, FcmHttpClient] = {}

    def client(self, url: str) -> FcmHttpClient:
        client = self.clients.get(url)
        if client is None:  # made here, used only on the loop's thread
            client = self.clients[url] = FcmHttpClient(url, self.connections, REQUEST_TIMEOUT)
        return client


_loops: dict[int, _Loop] = {}
_loops_lock = threading.Lock()


def _process_loop(connections: int) -> _Loop:
    pid = os.getpid()  # a forked work horse gets a loop of its own: threads do not survive fork
    loop = _loops.get(pid)
    if loop is None:
        with _loops_lock:
            loop = _loops.get(pid)
            if loop is None:
                loop = _loops[pid] = _Loop(connections)
    return loop


def _fcm_error(url: str, status: int, headers, content: bytes) -> fb_exc.FirebaseError:
    """An FCM error answer → the FirebaseError firebase-admin itself would raise for it."""
    request = httpx.Request("POST", url)
    response = httpx.Response(status, headers=list(headers), content=content, request=request)
    error = httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)
    return fb_utils.handle_platform_error_from_httpx(
        error, messaging._MessagingService._build_fcm_error_httpx)  # pylint: disable=protected-access


def _transport_error(exc: BaseException) -> fb_exc.FirebaseError:
    if isinstance(exc, (FcmTimeout, asyncio.TimeoutError)):
        return fb_exc.DeadlineExceededError(f"FCM request timed out: {exc!r}", cause=exc)
    if isinstance(exc, FcmConnectionError):
        return fb_exc.UnavailableError(f"FCM connection failed: {exc!r}", cause=exc)
    return fb_exc.UnknownError(f"FCM request failed: {exc!r}", cause=exc)


@dataclasses.dataclass
class Sender:
    app: firebase_admin.App  # its credentials sign the requests
    bucket: TokenBucket
    description: str
    url: str  # the messages:send URL
    backoff_base: float = BACKOFF_BASE  # seconds; Config.fcm_retry_base_seconds (tests make it short)
    claim_timeout: float = CLAIM_TIMEOUT  # Config.push_claim_timeout_seconds
    connections: int = CONNECTIONS

    def _auth_headers(self) -> dict:
        headers = dict(FCM_HEADERS)
        credential = self.app.credential.get_credential()
        credential.before_request(google_requests.Request(), "POST", self.url, headers)  # refreshes when due
        return headers

    def send_each(self, messages: list[messaging.Message]) -> list:
        """Send every message at once (paced by the shared bucket); one result per message: None
        (accepted) or the FirebaseError."""
        return self.send_bodies([encode_body(m) for m in messages])

    def send_bodies(self, bodies: list[bytes]) -> list:
        """``send_each`` of request bodies already encoded."""
        return self.answers(self.start(bodies)) if bodies else []

    def start(self, bodies: list[bytes]) -> concurrent.futures.Future:
        """Put these requests in flight on the process's loop (paced by the shared bucket) and
        return at once; ``answers`` waits for them."""
        headers = self._auth_headers()
        self.bucket.acquire(len(bodies))
        loop = _process_loop(self.connections)
        url = self.url

        async def send():
            return await loop.client(url).post_all(bodies, headers)

        return asyncio.run_coroutine_threadsafe(send(), loop.loop)

    def answers(self, flight: concurrent.futures.Future) -> list:
        """One result per request of ``flight``: None (accepted) or the FirebaseError."""
        out = []
        for answer in flight.result(REQUEST_TIMEOUT * 3 + 30):
            if isinstance(answer, Answer):
                out.append(None if answer.status == 200 else
                           _fcm_error(self.url, answer.status, answer.headers, answer.body))
            else:
                out.append(_transport_error(answer))
        return out


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
    rate = float(config.fcm_rate_per_second or 0) or 1e9
    bucket = TokenBucket(rate, capacity=max(rate, 1.0), redis=redis, key=f"lienlac:fcm:rate:{project}")
    return Sender(app=app, bucket=bucket, description=description, url=fcm_send_url(endpoint or GOOGLE_FCM, project),
                  backoff_base=config.fcm_retry_base_seconds,
                  claim_timeout=getattr(config, "push_claim_timeout_seconds", CLAIM_TIMEOUT))


def current_sender() -> Sender | None:
    return current_app.extensions.get("lienlac.push")


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
# What a push job reads, two statements whatever the job's size (a list is one parameter): the
# notifications with their users' badges (the unread count, a subquery per row on the inbox index),
# and the devices. PREPAREd once per connection (service.prepared), rows as the driver gives them.
# (Peewee's IN lists of 1,000 cost two statements per kind and 1,000 users, built and planned each time.)
_UNREAD = Notification.alias("unread")
_NOTE_FIELDS = (Notification.id, Notification.user, Notification.announcement, Notification.push_status,
                Notification.title, Notification.body, Notification.data, Notification.category,
                Notification.urgent, Notification.silent, Notification.in_inbox, Notification.collapse_key,
                _UNREAD.select(fn.COUNT(_UNREAD.id)).where((_UNREAD.user == Notification.user) & _UNREAD.in_inbox
                                                          & _UNREAD.read_at.is_null()))
_NOTES = Prepared("push_notes", lambda p: Notification.select(*_NOTE_FIELDS).where(
    any_of(Notification.id, p.ids) & ((Notification.push_status == "pending")
                                      | ((Notification.push_status == "held") & (Notification.push_after <= p.now)))))
_DEVICES = Prepared("push_devices", lambda p: Device.select(Device.id, Device.user, Device.token)
                    .where(any_of(Device.user, p.users)).order_by(Device.id))


_COLUMNS = ["notification", "device_id", "announcement_id", "status", "claim", "tries", "claimed_at", "updated_at"]


def _claim(pairs: list[tuple[Notification, Device]], claim: str, now: dt.datetime,
           timeout: float) -> dict[tuple[int, int], list]:
    """Claim these pairs' attempts for this window in one statement: new rows, ``retry`` rows that
    are due, and ``sending`` rows whose claim is older than ``timeout`` seconds (a dead worker's).

    Returns {(notification_id, device_id): [attempt_id, tries]} of the rows this window now owns.
    Committed before anything is sent. PostgreSQL: the upsert's ``RETURNING`` names them (one
    round trip); SQLite: read back by the claim token.
    """
    table = PushAttempt._meta.table_name
    mark = db.obj.param
    rows = [(n.id, d.id, n.announcement_id, "sending", claim, 1, now, now) for n, d in pairs]
    stale = now - dt.timedelta(seconds=timeout)
    with write_transaction():
        taken = upsert(
            PushAttempt, _COLUMNS, rows, key=["notification", "device_id"],
            update={"status": 'EXCLUDED."status"', "claim": 'EXCLUDED."claim"', "claimed_at": 'EXCLUDED."claimed_at"',
                    "updated_at": 'EXCLUDED."updated_at"', "tries": f'"{table}"."tries" + 1'},
            where=(f'("{table}"."status" = \'retry\' AND "{table}"."next_at" <= EXCLUDED."claimed_at") OR '
                   f'("{table}"."status" = \'sending\' AND COALESCE("{table}"."claimed_at", '
                   f'"{table}"."updated_at") <= {mark})'),
            params=(PushAttempt.claimed_at.db_value(stale),),
            returning=", ".join(f'"{table}"."{c}"' for c in ("id", "notification_id", "device_id", "tries")))
    if taken is None:
        taken = (PushAttempt.select(PushAttempt.id, PushAttempt.notification, PushAttempt.device_id, PushAttempt.tries)
                 .where(PushAttempt.claim == claim).tuples())
    return {(note, device): [attempt, tries] for attempt, note, device, tries in taken}


def _touch(owned: dict, keys, claim: str, another_try: bool = True) -> None:
    """Another round for these attempts: one more try (unless not ``another_try``: still waiting for
    their answers), and the claim is fresh again."""
    ids = sorted(owned[k][0] for k in keys)
    values = {"claimed_at": utcnow(), "updated_at": utcnow()}
    if another_try:
        values["tries"] = PushAttempt.tries + 1
    with write_transaction():
        for start in range(0, len(ids), 1000):
            (PushAttempt.update(**values)
             .where(PushAttempt.id.in_(ids[start:start + 1000]) & (PushAttempt.claim == claim)).execute())


def _release(owned: dict, keys, claim: str) -> None:
    """Claimed attempts not sent after all: due for retry at once, by any run."""
    now = utcnow()
    with write_transaction():
        update_many(PushAttempt, ["id", "claim"], ["status", "next_at", "updated_at"],
                    [(owned[k][0], claim, "retry", now, now) for k in keys])


def _finish(owned: dict, outcomes: dict[tuple[int, int], tuple[str, str | None]], claim: str,
            now: dt.datetime, next_at: dt.datetime | None = None) -> None:
    """Record a window's results in one statement: ACCEPTED, FAILED/GONE (with code) or RETRY (due
    at ``next_at``). Guarded by the claim: a claim another run took over is not overwritten."""
    rows = []
    for key, (status, code) in outcomes.items():
        status = {ACCEPTED: "accepted", RETRY: "retry"}.get(status, "failed")
        rows.append((owned[key][0], claim, status, code, next_at if status == "retry" else None, now))
    with write_transaction():
        update_many(PushAttempt, ["id", "claim"], ["status", "error", "next_at", "updated_at"], rows)


def _forget_devices(device_ids: list[int]) -> None:
    """Dead tokens: delete the devices, and end their attempts that wait to retry (``failed``):
    no run would ever send them, and the announcement's counts must add up."""
    ids = sorted(set(device_ids))
    with write_transaction():
        Device.delete().where(Device.id.in_(ids)).execute()
        (PushAttempt.update(status="failed", error="UNREGISTERED", next_at=None, updated_at=utcnow())
         .where(PushAttempt.device_id.in_(ids) & (PushAttempt.status == "retry")).execute())
    log.info("deleted %d unregistered devices", len(ids))


class _Window:
    """Up to ``WINDOW`` (notification, device) pairs: claimed, in flight, then recorded."""

    def __init__(self, sender: Sender, pairs: list, badges: dict, encoder: "MessageBodies", stats: dict):
        self.sender, self.badges, self.encoder, self.stats = sender, badges, encoder, stats
        self.claim = uuid.uuid4().hex
        t0 = time.monotonic()
        self.owned = _claim(pairs, self.claim, utcnow(), sender.claim_timeout)
        stats["db_ms"] += (time.monotonic() - t0) * 1000
        self.todo = [(n, d) for n, d in pairs if (n.id, d.id) in self.owned]
        self.others = sorted({n.id for n, d in pairs if (n.id, d.id) not in self.owned})  # another run's
        stats["claimed"] += len(self.todo)
        try:
            self.bodies = self._bodies(self.todo)  # encoded while the window before is in flight
        except BaseException:
            self.release()
            raise
        self.flight: concurrent.futures.Future | None = None

    def _bodies(self, todo) -> list[bytes]:
        return [self.encoder.body(n, d.token, self.badges.get(n.user_id, 0)) for n, d in todo]

    def release(self) -> None:
        """Hand back the claims of requests that never reached FCM (the job's retry sends them)."""
        _release(self.owned, [(n.id, d.id) for n, d in self.todo], self.claim)

    def touch(self) -> None:
        """Keep this window's claims fresh while its answers wait behind the window before it."""
        if self.flight is not None:
            _touch(self.owned, [(n.id, d.id) for n, d in self.todo], self.claim, another_try=False)

    def start(self) -> None:
        if self.todo:
            try:
                self.flight = self.sender.start(self.bodies)
            except BaseException:  # e.g. the rate limiter's Redis is away: nothing was sent
                self.release()
                raise

    def answers(self) -> list:
        t0 = time.monotonic()
        try:
            return self.sender.answers(self.flight) if self.todo else []
        except BaseException:
            self.release()  # no answer came back: hand the claims back (a SIGKILL leaves them to time out)
            raise
        finally:
            self.stats["send_ms"] += (time.monotonic() - t0) * 1000

    def record(self, results: list, behind: "_Window | None" = None) -> tuple[list, dt.datetime | None]:
        """Record the answers; retry what may be retried (a few rounds here, then a scheduled job).
        ``behind``: the window in flight meanwhile, whose answers wait for this one: each retry round
        refreshes its claims too, as this window's own (else a few long rounds could age them past
        the claim timeout and another run would send them again). Returns (notification ids to retry
        later, when)."""
        sender, owned, claim, stats, todo = self.sender, self.owned, self.claim, self.stats, self.todo
        rounds = 0
        while todo:
            outcomes, retry, gone_devices, waits = {}, [], [], []
            for (n, d), exc in zip(todo, results):
                key = (n.id, d.id)
                if exc is None:
                    outcomes[key] = (ACCEPTED, None)
                    continue
                kind, code, retry_after = classify(exc)
                if kind == RETRY and owned[key][1] < MAX_TRIES:
                    retry.append((n, d))
                    waits.append(retry_after)
                    outcomes[key] = (RETRY, code)
                else:
                    outcomes[key] = (FAILED if kind != GONE else GONE, code)
                    if kind == GONE:
                        gone_devices.append(d.id)
                    elif kind == RETRY:
                        log.warning("push gave up after %d tries: %s", owned[key][1], code)
            stats["sent"] += sum(1 for s, _ in outcomes.values() if s == ACCEPTED)
            stats["failed"] += sum(1 for s, _ in outcomes.values() if s == FAILED)
            stats["gone"] += len(gone_devices)
            t0 = time.monotonic()
            _finish(owned, {k: v for k, v in outcomes.items() if v[0] != RETRY}, claim, utcnow())
            if gone_devices:
                _forget_devices(gone_devices)
            stats["db_ms"] += (time.monotonic() - t0) * 1000
            if not retry:
                break
            rounds += 1
            tries = max(owned[(n.id, d.id)][1] for n, d in retry)
            retry_after = max((w for w in waits if w is not None), default=None)
            if retry_after:
                sender.bucket.penalize(min(retry_after, 60.0))  # every worker sharing the bucket waits
            delay = backoff(tries, retry_after, sender.backoff_base)
            if rounds > INLINE_ROUNDS or delay > INLINE_MAX_DELAY:
                at = utcnow() + dt.timedelta(seconds=delay)
                _finish(owned, {(n.id, d.id): (RETRY, outcomes[(n.id, d.id)][1]) for n, d in retry}, claim,
                        utcnow(), at)
                stats["retry_later"] += len(retry)
                return [n.id for n, _ in retry], at
            time.sleep(delay)
            for n, d in retry:
                owned[(n.id, d.id)][1] += 1
            _touch(owned, [(n.id, d.id) for n, d in retry], claim)
            if behind is not None:
                behind.touch()
            self.todo = todo = retry
            try:
                self.bodies = self._bodies(todo)
            except BaseException:
                self.release()
                raise
            self.start()
            results = self.answers()
        return [], None


def _send_windows(sender: Sender, pairs: list, badges: dict, stats: dict) -> tuple[list, dt.datetime | None, list]:
    """Claim, send and record ``pairs`` window by window, two at a time: while one window's
    requests are in flight on the loop's thread, this thread records the window before it and
    claims and encodes the window after it. Returns (notification ids to retry later, when, ids
    with pairs another run holds)."""
    encoder = MessageBodies()
    later, later_at, others = [], None, []
    flying = waiting = None  # a window in flight; one claimed, not started yet
    try:
        for start in range(0, len(pairs) + WINDOW, WINDOW):
            if start < len(pairs):
                waiting = _Window(sender, pairs[start:start + WINDOW], badges, encoder, stats)
                others += waiting.others
            results = flying.answers() if flying else None
            done, flying, waiting = flying, waiting, None
            try:
                if flying:
                    flying.start()
            finally:  # answered: recorded even if the next window could not start
                if done:
                    retry_ids, at = done.record(results, behind=flying)
                    if retry_ids:
                        later += retry_ids
                        later_at = max(later_at, at) if later_at else at
    except BaseException:
        if waiting:  # claimed, never sent (a window in flight is left to its claim timeout, as a killed worker's)
            waiting.release()
        raise
    return later, later_at, others


# What the push path reads of a notification and a device: plain tuples (building 500 peewee
# models per job, and reading their fields through descriptors, showed in a worker's profile).
_Note = namedtuple("_Note", "id user_id announcement_id push_status title body data category urgent silent "
                            "in_inbox collapse_key unread")
_Device = namedtuple("_Device", "id user_id token")


def push_notifications(notification_ids, now: dt.datetime | None = None, sender: Sender | None = None) -> dict:
    """Push these notifications to their users' devices (those due; held ones once their time has
    come). Safe to run again and concurrently: claims decide who sends what. Returns counts."""
    sender = sender or current_sender()
    stats = {"claimed": 0, "sent": 0, "failed": 0, "gone": 0, "retry_later": 0, "db_ms": 0.0, "send_ms": 0.0}
    if sender is None or not notification_ids:
        return stats
    now = now or utcnow()
    ids = sorted({int(i) for i in notification_ids})
    notes = [_Note(*row) for row in _NOTES.raw(ids=ids, now=now)]
    if not notes:
        return stats
    held = [n.id for n in notes if n.push_status == "held"]
    if held:
        Notification.update(push_status="pending").where(
            Notification.id.in_(held) & (Notification.push_status == "held")).execute()
    users = sorted({n.user_id for n in notes})
    devices: dict[int, list[_Device]] = defaultdict(list)
    for device in _DEVICES.raw(users=users):
        devices[device[1]].append(_Device(*device))
    pairs = [(n, d) for n in notes for d in devices.get(n.user_id, [])]
    if not pairs:
        return stats
    badges = {n.user_id: n.unread for n in notes}
    later, later_at, others = _send_windows(sender, pairs, badges, stats)
    _follow_up(others, later, later_at, sender.claim_timeout)
    maybe_sweep(sender.claim_timeout)
    stats["db_ms"], stats["send_ms"] = round(stats["db_ms"], 1), round(stats["send_ms"], 1)
    log.info("pushed %s", " ".join(f"{k}={v}" for k, v in stats.items()))
    return stats


def _follow_up(others: list[int], later: list[int], later_at: dt.datetime | None, timeout: float) -> None:
    """Make sure a run comes for what is still open: retries this run scheduled, and, of the
    notifications with pairs this run could not claim (``others``), retries another run scheduled
    that are not due yet (a scheduler may start a job a little early, or this run raced it) and
    claims held by another run (if its worker died, they are stale at ``claimed_at + timeout``).
    A job that claimed all its pairs (the usual case) reads nothing here: what it owns it has
    finished or put in ``later``. (Until issue 14 this read every notification of the job, its
    ``device_id IN (SELECT id FROM device)`` hashing the whole device table each time.)"""
    current = utcnow()
    for start in range(0, len(others), 1000):
        live = Device.select(Device.id).where(Device.id == PushAttempt.device_id)
        open_rows = (PushAttempt.select(PushAttempt.notification, PushAttempt.status, PushAttempt.next_at,
                                        PushAttempt.claimed_at)
                     .where(PushAttempt.notification.in_(others[start:start + 1000])
                            & (((PushAttempt.status == "retry") & (PushAttempt.next_at > current))
                               | (PushAttempt.status == "sending"))
                            & fn.EXISTS(live)).tuples())  # a deleted device's: the sweep ends them
        for note_id, status, next_at, claimed_at in open_rows:
            when = next_at if status == "retry" else (claimed_at or current) + dt.timedelta(seconds=timeout + 0.5)
            later.append(note_id)
            later_at = max(later_at, when) if later_at else when
    if later:
        later = sorted(set(later))
        queues.enqueue("push", later, queue="push", at=later_at,
                       job_id=f"push-later-{later[0]}-{len(later)}-{later_at:%Y%m%dT%H%M%S}")


_swept = {"at": 0.0}


def maybe_sweep(timeout: float) -> int:
    """``sweep`` at most once per claim timeout per process (from the push jobs themselves)."""
    if time.monotonic() - _swept["at"] < timeout:
        return 0
    _swept["at"] = time.monotonic()
    return sweep(timeout)


def sweep(timeout: float = CLAIM_TIMEOUT, now: dt.datetime | None = None, limit: int = 5000) -> int:
    """Push jobs for the notifications whose attempts nobody will finish otherwise: ``sending``
    claims older than ``timeout`` (a killed worker's) and ``retry`` attempts overdue by as much
    (their job was lost). Returns how many notifications were handed to push jobs."""
    now = now or utcnow()
    stale = now - dt.timedelta(seconds=timeout)
    abandoned = (((PushAttempt.status == "sending") & (PushAttempt.claimed_at <= stale))
                 | ((PushAttempt.status == "retry") & (PushAttempt.next_at <= stale)))
    live = Device.select(Device.id)
    with write_transaction():  # their device is gone (unregistered, logged out): nobody can send them
        (PushAttempt.update(status="failed", error="DEVICE_GONE", next_at=None, updated_at=now)
         .where(abandoned & PushAttempt.device_id.not_in(live)).execute())
    ids = [n for (n,) in PushAttempt.select(PushAttempt.notification).distinct()
           .where(abandoned).limit(limit).tuples()]
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        queues.enqueue("push", part, queue="push", job_id=f"push-sweep-{part[0]}-{len(part)}-{now:%Y%m%dT%H%M}")
    if ids:
        log.warning("push sweep: %d notifications with stale claims or overdue retries", len(ids))
    return len(ids)
