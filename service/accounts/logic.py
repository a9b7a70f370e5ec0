"""Accounts: phone numbers, passwords, OTP login, JWT access tokens and rotating refresh tokens."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from typing import Protocol

import jwt
import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from peewee import IntegrityError

from .. import jobs, realtime
from ..db import db, is_postgres, on_commit, utcnow, write_transaction
from ..errors import Forbidden, RateLimited, Unauthorized, Unavailable, ValidationError
from ..signals import logged_out
from . import sessioncache
from .models import OtpCode, RefreshToken, RevokedFamily, User

log = logging.getLogger("lienlac.accounts")
_hasher = PasswordHasher()

OTP_LIFETIME = dt.timedelta(minutes=5)
OTP_MAX_TRIES = 5
JWT_ALGORITHM = "HS256"


# --- phone numbers -------------------------------------------------------------------------
_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-]+$")


def _bad_phone() -> ValidationError:
    return ValidationError("Not a phone number.", fields={"phone": ["Not a phone number."]})


def normalize_phone(raw: str) -> str:
    """Vietnamese ``0912 345 678``, ``+84 912 345 678`` and ``84912345678`` are one number (E.164).

    Only digits, spaces, ``()``, ``.``, ``-`` and a leading ``+`` are accepted (phonenumbers would
    otherwise read letters as keypad digits and drop a trailing extension), and the number must be
    a valid one for its country.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not _PHONE_CHARS.match(text):
        raise _bad_phone()
    digits = re.sub(r"\D", "", text)
    # "84 912 345 678" is international without the "+"; a national number without its leading 0
    # may start with 84 too (Vinaphone 084...), but has at most 10 digits.
    if not text.startswith("+") and digits.startswith("84") and len(digits) >= 11:
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException as exc:
        raise _bad_phone() from exc
    if not phonenumbers.is_valid_number(number):
        raise _bad_phone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- passwords ------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        _hasher.hash(password)  # same cost whether or not the account has a password
        return False
    try:
        ok = _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if ok and _hasher.check_needs_rehash(user.password_hash):
        User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
        sessioncache.invalidate(users=[user.id])
    return ok


def find_user_by_phone(phone: str) -> User | None:
    return User.get_or_none(User.phone == normalize_phone(phone))


def login_with_password(phone: str, password: str, now: float | None = None) -> User:
    phone = normalize_phone(phone)
    check_lockout(phone, now)
    user = User.get_or_none(User.phone == phone)
    if user is None:
        _hasher.hash(password)  # the same cost as checking a real account's password
        record_failure(phone, now)
        raise Unauthorized("Wrong phone number or password.")
    if not check_password(user, password) or not user.is_active:
        record_failure(phone, now)
        raise Unauthorized("Wrong phone number or password.")
    clear_failures(phone)
    return user


# --- cumulative lockout per phone -------------------------------------------------------------
# The per-minute limits (flask-limiter) slow guessing down but renew forever; this counts every
# failed password and OTP code of a phone number over a long window (24 h by default) and locks
# the number's sign-in for a long period when the count is reached. Shared through Redis when it
# is configured; if Redis is then unreachable, sign-in answers 503 (never a per-process count a
# guesser could spread across processes). Without Redis (one embedded process): in memory.
# Times are unix seconds, injectable for tests.
def _memory() -> tuple[dict[str, list[float]], dict[str, float]]:
    """This app's in-process counts (no Redis): failure times and lock ends by phone."""
    return current_app.extensions.setdefault("lienlac.lockout", ({}, {}))


def _lockout_settings():
    cfg = current_app.config["LIENLAC"]
    return cfg.auth_lockout_failures, cfg.auth_failure_window_seconds, cfg.auth_lockout_seconds


def _redis_or_none():
    return jobs.redis_connection()


def _unavailable(exc: Exception) -> Unavailable:
    log.error("sign-in counting unavailable: %s", type(exc).__name__)
    return Unavailable("Sign-in is unavailable right now; try again in a moment.",
                       headers={"Retry-After": "30"})


def _lock_keys(phone: str) -> tuple[str, str]:
    return f"lienlac:authfail:{phone}", f"lienlac:authlock:{phone}"


def check_lockout(phone: str, now: float | None = None) -> None:
    """429 while the phone is locked; 503 when Redis is configured but unreachable."""
    import time as _time

    now = _time.time() if now is None else now
    redis = _redis_or_none()
    if redis is not None:
        try:
            until = redis.get(_lock_keys(phone)[1])
        except Exception as exc:  # noqa: BLE001 - redis.exceptions.RedisError and socket errors
            raise _unavailable(exc) from None
        until = float(until) if until else 0.0
    else:
        until = _memory()[1].get(phone, 0.0)
    if until > now:
        retry = max(1, int(until - now + 0.999))
        raise RateLimited("Too many failed attempts for this phone number; try again later.",
                          headers={"Retry-After": str(retry)})


def record_failure(phone: str, now: float | None = None) -> None:
    """Count a failed password or OTP code for ``phone``; reaching the limit locks the number."""
    import time as _time

    now = _time.time() if now is None else now
    limit, window, lock_seconds = _lockout_settings()
    fail_key, lock_key = _lock_keys(phone)
    redis = _redis_or_none()
    if redis is not None:
        try:
            pipe = redis.pipeline()
            pipe.zadd(fail_key, {uuid.uuid4().hex: now})
            pipe.zremrangebyscore(fail_key, "-inf", now - window)
            pipe.zcard(fail_key)
            pipe.expire(fail_key, int(window) + 1)
            count = pipe.execute()[2]
            if count >= limit:
                pipe = redis.pipeline()
                pipe.set(lock_key, repr(now + lock_seconds), ex=int(lock_seconds) + int(window) + 1)
                pipe.delete(fail_key)
                pipe.execute()
        except Exception as exc:  # noqa: BLE001
            raise _unavailable(exc) from None
    else:
        failures, locks = _memory()
        stamps = [t for t in failures.get(phone, []) if t > now - window] + [now]
        failures[phone] = stamps
        count = len(stamps)
        if count >= limit:
            locks[phone] = now + lock_seconds
            failures.pop(phone, None)
    if count >= limit:
        log.warning("sign-in locked for a phone after repeated failures", extra={"to_suffix": phone[-3:]})


def clear_failures(phone: str) -> None:
    """A successful sign-in starts the count again (a lock in force stays)."""
    redis = _redis_or_none()
    if redis is not None:
        try:
            redis.delete(_lock_keys(phone)[0])
        except Exception as exc:  # noqa: BLE001
            raise _unavailable(exc) from None
    else:
        _memory()[0].pop(phone, None)


# --- OTP ------------------------------------------------------------------------------------
class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class LogSmsSender:
    """Default sender: writes that a code was sent (never the code) to the log.

    The code itself is kept in ``outbox`` (in memory, this process only) so a developer running
    the embedded default, and the tests, can read it; production plugs in an SMS gateway.
    """

    def __init__(self):
        self.outbox: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.outbox.append((phone, text))
        del self.outbox[:-100]
        log.info("sms queued", extra={"to_suffix": phone[-3:]})


def sms_sender() -> SmsSender:
    return current_app.extensions["lienlac.sms"]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _otp_hash(phone: str, code: str, salt: str | None = None) -> str:
    """Keyed hash of an OTP: a million codes are trivial to try against a plain hash, not without the key.

    (HMAC rather than argon2: the check runs inside a write transaction holding the code's row lock.)
    """
    salt = salt or secrets.token_hex(8)
    mac = hmac.new(_secret().encode(), f"otp:{salt}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()
    return f"{salt}${mac}"


def _otp_matches(stored: str, phone: str, code: str) -> bool:
    salt, _, _mac = stored.partition("$")
    return bool(salt) and hmac.compare_digest(stored, _otp_hash(phone, code, salt))


def request_otp(phone: str, sender: SmsSender, now: dt.datetime | None = None) -> None:
    """Issue a 6-digit code valid 5 minutes; earlier unused codes for the number stop working."""
    phone = normalize_phone(phone)
    check_lockout(phone)
    now = now or utcnow()
    code = f"{secrets.randbelow(1_000_000):06d}"
    with write_transaction():
        OtpCode.update(consumed_at=now).where(
            (OtpCode.phone == phone) & OtpCode.consumed_at.is_null()).execute()
        OtpCode.create(phone=phone, code_hash=_otp_hash(phone, code), created_at=now,
                       expires_at=now + OTP_LIFETIME)
    sender.send(phone, f"Ma xac thuc Lienlac cua ban: {code}. Hieu luc 5 phut.")


def _for_update(query):
    """Lock the selected rows on PostgreSQL; SQLite's IMMEDIATE write transaction already serialises."""
    return query.for_update() if is_postgres() else query


def _consume_otp(phone: str, code: str, now: dt.datetime) -> bool:
    """Use the phone's current code if ``code`` is it; five wrong tries lock it. Every failure counts
    toward the phone's lockout."""
    with write_transaction():
        # the row is locked so that concurrent wrong guesses each count (no lost attempts)
        otp = _for_update(OtpCode.select().where((OtpCode.phone == phone) & OtpCode.consumed_at.is_null())
                          .order_by(OtpCode.id.desc())).first()
        usable = not (otp is None or otp.locked or otp.attempts >= OTP_MAX_TRIES or otp.expires_at < now)
        good = usable and _otp_matches(otp.code_hash, phone, (code or "").strip())
        if usable and not good:
            attempts = otp.attempts + 1
            OtpCode.update(attempts=attempts, locked=attempts >= OTP_MAX_TRIES).where(
                OtpCode.id == otp.id).execute()
    # the failed attempt above is committed before we answer
    if good:
        with write_transaction():
            good = bool(OtpCode.update(consumed_at=now).where(
                (OtpCode.id == otp.id) & OtpCode.consumed_at.is_null()
                & (OtpCode.locked == False)).execute())  # noqa: E712 - else a concurrent verify used it first
    if not good:
        record_failure(phone)
    return good


def verify_otp(phone: str, code: str, now: dt.datetime | None = None) -> User:
    """Check a code; five wrong tries lock it. A number seen for the first time gets an account."""
    phone = normalize_phone(phone)
    check_lockout(phone)
    now = now or utcnow()
    failure = Unauthorized("The code is wrong or has expired.")
    if not _consume_otp(phone, code, now):
        raise failure
    with write_transaction():
        user = User.get_or_none(User.phone == phone)
        if user is None:
            try:
                with db.atomic():  # savepoint: the roster may create the same number concurrently
                    user = User.create(phone=phone, name="")
            except IntegrityError:
                user = User.get(User.phone == phone)
    if not user.is_active:
        raise failure
    clear_failures(phone)
    return user


# --- tokens ---------------------------------------------------------------------------------
def _secret() -> str:
    return current_app.config["LIENLAC"].secret_key


def issue_access_token(user_id: int, family: str, now: dt.datetime | None = None) -> tuple[str, int]:
    cfg = current_app.config["LIENLAC"]
    now = now or utcnow()
    lifetime = cfg.access_token_seconds
    claims = {"sub": str(user_id), "fam": family, "typ": "access", "jti": uuid.uuid4().hex,
              "iat": now.replace(tzinfo=dt.timezone.utc),
              "exp": now.replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=lifetime)}
    return jwt.encode(claims, _secret(), algorithm=JWT_ALGORITHM), lifetime


def _new_refresh(user_id: int, family: str, now: dt.datetime) -> str:
    cfg = current_app.config["LIENLAC"]
    token = secrets.token_urlsafe(48)
    RefreshToken.create(token_hash=_digest(token), user=user_id, family=family, created_at=now,
                        expires_at=now + dt.timedelta(seconds=cfg.refresh_token_seconds))
    return token


def start_session(user: User, now: dt.datetime | None = None) -> dict:
    """A login: a new token family, an access token and its first refresh token."""
    now = now or utcnow()
    family = str(uuid.uuid4())
    with write_transaction():
        refresh = _new_refresh(user.id, family, now)
    access, lifetime = issue_access_token(user.id, family, now)
    return {"access_token": access, "refresh_token": refresh, "expires_in": lifetime, "user": user}


def revoke_family(family: str, user_id: int, reason: str, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    RefreshToken.update(revoked_at=now).where(
        (RefreshToken.family == family) & RefreshToken.revoked_at.is_null()).execute()
    RevokedFamily.insert(family=family, user=user_id, revoked_at=now, reason=reason).on_conflict_ignore().execute()
    sessioncache.invalidate(families=[family])  # every web process forgets it once this commits


def refresh_session(token: str, now: dt.datetime | None = None) -> dict:
    """Rotate: the presented token is used up; presenting a used token again revokes its family."""
    now = now or utcnow()
    failure = Unauthorized("The refresh token is not valid.")
    reused = False
    with write_transaction():
        row = RefreshToken.get_or_none(RefreshToken.token_hash == _digest(token or ""))
        if row is None or row.revoked_at is not None or row.expires_at < now:
            raise failure
        claimed = RefreshToken.update(used_at=now).where(
            (RefreshToken.id == row.id) & RefreshToken.used_at.is_null()
            & RefreshToken.revoked_at.is_null()).execute()
        if not claimed:
            reused = True
            revoke_family(row.family, row.user_id, "reuse", now)
            log.warning("refresh token reuse; family revoked", extra={"user_id": row.user_id})
        else:
            user = User.get_or_none(User.id == row.user_id)
            if user is None or not user.is_active:
                raise failure
            new_refresh = _new_refresh(row.user_id, row.family, now)
    if reused:
        _disconnect(row.user_id, family=row.family)
        raise failure
    access, lifetime = issue_access_token(user.id, row.family, now)
    return {"access_token": access, "refresh_token": new_refresh, "expires_in": lifetime, "user": user}


def logout(user: User, family: str, device_token: str | None = None) -> None:
    with write_transaction():
        revoke_family(family, user.id, "logout")
    _disconnect(user.id, family=family)
    try:  # the session has ended whatever a receiver does; its failure must not turn logout into a 500
        logged_out.send(user, user_id=user.id, device_token=device_token)
    except Exception as exc:  # noqa: BLE001 - no traceback: its text could carry the device token
        log.error("logged_out receiver failed: %s", type(exc).__name__, extra={"user_id": user.id})


def _disconnect(user_id: int, family: str | None = None, keep_family: str | None = None) -> None:
    """After a revocation committed: its sockets go too, on every web process."""
    realtime.disconnect_sessions(user_id, family=family, keep_family=keep_family)


def decode_access_token(token: str) -> dict:
    try:
        claims = jwt.decode(token, _secret(), algorithms=[JWT_ALGORITHM],
                            options={"require": ["exp", "sub", "fam"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("The access token is not valid.")
    return claims


def _user_from_row(row: dict) -> User:
    """A ``User`` as ``User.get`` would give it (nothing dirty), from a cached row: a fresh instance per use."""
    user = User(__no_default__=1, **row)
    user._dirty.clear()
    return user


def _live_session(user_id: int, family: str) -> tuple[User | None, str | None]:
    """``(user, None)`` for a live session (active account, family not revoked), else ``(None, why)``
    with why ``"user"`` or ``"ended"``. From this process's session cache when it holds the family
    (no statement); otherwise two primary-key reads, and the session is cached if alive."""
    cache = sessioncache.current_cache()
    generation = None
    if cache is not None:
        entry = cache.get(family)
        if entry is not None and entry.user_id == user_id:
            return _user_from_row(entry.row), None
        generation = cache.generation()  # before reading: an invalidation from now on wins
    user = User.get_or_none(User.id == user_id)
    if user is None or not user.is_active:
        return None, "user"
    if RevokedFamily.select().where(RevokedFamily.family == family).exists():
        return None, "ended"
    if cache is not None:
        cache.put(family, user_id, user.__data__, generation)
    return user, None


def user_from_token(token: str) -> tuple[User, dict]:
    claims = decode_access_token(token)
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("The access token is not valid.") from exc
    user, why = _live_session(user_id, str(claims["fam"]))
    if why == "ended":
        raise Unauthorized("The session has ended.")
    if user is None:
        raise Unauthorized("The access token is not valid.")
    return user, claims


def socket_identity(token: str) -> tuple[int, str, float]:
    """For the socket server: ``(user_id, family, expiry as unix time)`` of a valid access token."""
    user, claims = user_from_token(token)
    return user.id, str(claims["fam"]), float(claims["exp"])


def session_is_live(user_id: int, family: str) -> bool:
    """The account is active and the session (token family) not revoked: from the session cache, else
    two primary-key reads."""
    return _live_session(int(user_id), str(family))[0] is not None


def authenticate_request() -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Sign in first: Authorization: Bearer <access_token>.")
    user, claims = user_from_token(token.strip())
    g.user = user
    g.token_claims = claims
    return user


def login_required(view):
    """Views under it find the caller in ``g.user``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        authenticate_request()
        return view(*args, **kwargs)

    wrapper._lienlac_auth = True
    return wrapper


def current_user() -> User:
    return g.user


def set_password(user_id: int, password: str) -> None:
    User.update(password_hash=hash_password(password)).where(User.id == user_id).execute()
    sessioncache.invalidate(users=[user_id])


def revoke_other_sessions(user_id: int, keep_family: str | None, reason: str = "password",
                          now: dt.datetime | None = None) -> int:
    """End every session of the user but ``keep_family`` (e.g. after a password change)."""
    now = now or utcnow()
    families = {r.family for r in RefreshToken.select(RefreshToken.family).where(
        (RefreshToken.user == user_id) & RefreshToken.revoked_at.is_null())}
    families.discard(keep_family)
    for family in families:
        revoke_family(family, user_id, reason, now)
    return len(families)


def update_profile(user: User, name: str | None = None, password: str | None = None,
                   keep_family: str | None = None, current_password: str | None = None,
                   otp_code: str | None = None) -> User:
    """``PATCH /me``: a new name and/or password.

    A new password needs proof beyond the access token: ``current_password``, or ``otp_code`` (a
    code from ``POST /auth/otp/request`` for the user's phone, used up here). Missing → 422,
    wrong → 403 (never 401: the app would take it for an expired token); a wrong proof counts
    toward the phone's sign-in lockout, like a wrong login. Then every other session ends, its
    sockets included; the caller's stays.
    """
    if password is not None:
        _check_password_change_proof(user, current_password, otp_code)
    with write_transaction():
        if name is not None:
            User.update(name=name).where(User.id == user.id).execute()
            sessioncache.invalidate(users=[user.id])
        if password is not None:
            set_password(user.id, password)
            revoke_other_sessions(user.id, keep_family)
    if password is not None:
        _disconnect(user.id, keep_family=keep_family)
    return User.get_by_id(user.id)


def _check_password_change_proof(user: User, current_password: str | None, otp_code: str | None) -> None:
    if not current_password and not otp_code:
        message = "Give your current password (or a code sent by SMS) to change the password."
        raise ValidationError(message, fields={"current_password": [message]})
    phone = user.phone
    if phone:
        check_lockout(phone)
    if current_password:
        ok = check_password(user, current_password)
        if not ok and phone:
            record_failure(phone)
    else:
        ok = bool(phone) and _consume_otp(phone, otp_code, utcnow())
    if not ok:
        raise Forbidden("The current password or code is wrong.")
    if phone:
        clear_failures(phone)


def deactivate_user(user_id: int, now: dt.datetime | None = None) -> None:
    """Lock an account out: it can no longer sign in, its sessions end and its sockets drop at once."""
    with write_transaction():
        User.update(is_active=False).where(User.id == user_id).execute()
        sessioncache.invalidate(users=[user_id])
        end_all_sessions(user_id, reason="deactivated", now=now)


def end_all_sessions(user_id: int, reason: str, now: dt.datetime | None = None) -> None:
    """Revoke every session of the user; their sockets drop once the caller's transaction commits."""
    revoke_other_sessions(user_id, None, reason=reason, now=now)
    sessioncache.invalidate(users=[user_id])  # a family without a live refresh token too
    on_commit(_disconnect, user_id)
