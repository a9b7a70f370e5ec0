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

from ..db import db, is_postgres, utcnow, write_transaction
from ..errors import Unauthorized, ValidationError
from .models import OtpCode, RefreshToken, RevokedFamily, User
from ..signals import logged_out

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
    return ok


def find_user_by_phone(phone: str) -> User | None:
    return User.get_or_none(User.phone == normalize_phone(phone))


def login_with_password(phone: str, password: str) -> User:
    user = find_user_by_phone(phone)
    if user is None:
        _hasher.hash(password)  # the same cost as checking a real account's password
        raise Unauthorized("Wrong phone number or password.")
    if not check_password(user, password) or not user.is_active:
        raise Unauthorized("Wrong phone number or password.")
    return user


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


def verify_otp(phone: str, code: str, now: dt.datetime | None = None) -> User:
    """Check a code; five wrong tries lock it. A number seen for the first time gets an account."""
    phone = normalize_phone(phone)
    now = now or utcnow()
    failure = Unauthorized("The code is wrong or has expired.")
    with write_transaction():
        # the row is locked so that concurrent wrong guesses each count (no lost attempts)
        otp = _for_update(OtpCode.select().where((OtpCode.phone == phone) & OtpCode.consumed_at.is_null())
                          .order_by(OtpCode.id.desc())).first()
        if otp is None or otp.locked or otp.attempts >= OTP_MAX_TRIES or otp.expires_at < now:
            raise failure
        good = _otp_matches(otp.code_hash, phone, (code or "").strip())
        if not good:
            attempts = otp.attempts + 1
            OtpCode.update(attempts=attempts, locked=attempts >= OTP_MAX_TRIES).where(
                OtpCode.id == otp.id).execute()
    # the failed attempt above is committed before we answer
    if not good:
        raise failure
    with write_transaction():
        updated = OtpCode.update(consumed_at=now).where(
            (OtpCode.id == otp.id) & OtpCode.consumed_at.is_null() & (OtpCode.locked == False)).execute()  # noqa: E712
        if not updated:  # a concurrent verify used it first
            raise failure
        user = User.get_or_none(User.phone == phone)
        if user is None:
            try:
                with db.atomic():  # savepoint: the roster may create the same number concurrently
                    user = User.create(phone=phone, name="")
            except IntegrityError:
                user = User.get(User.phone == phone)
    if not user.is_active:
        raise failure
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
        raise failure
    access, lifetime = issue_access_token(user.id, row.family, now)
    return {"access_token": access, "refresh_token": new_refresh, "expires_in": lifetime, "user": user}


def logout(user: User, family: str, device_token: str | None = None) -> None:
    with write_transaction():
        revoke_family(family, user.id, "logout")
    try:  # the session has ended whatever a receiver does; its failure must not turn logout into a 500
        logged_out.send(user, user_id=user.id, device_token=device_token)
    except Exception as exc:  # noqa: BLE001 - no traceback: its text could carry the device token
        log.error("logged_out receiver failed: %s", type(exc).__name__, extra={"user_id": user.id})


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


def user_from_token(token: str) -> tuple[User, dict]:
    claims = decode_access_token(token)
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("The access token is not valid.") from exc
    user = User.get_or_none(User.id == user_id)
    if user is None or not user.is_active:
        raise Unauthorized("The access token is not valid.")
    if RevokedFamily.get_or_none(RevokedFamily.family == claims["fam"]) is not None:
        raise Unauthorized("The session has ended.")
    return user, claims


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
                   keep_family: str | None = None) -> User:
    """``PATCH /me``: a new name and/or password; a new password ends the user's other sessions."""
    with write_transaction():
        if name is not None:
            User.update(name=name).where(User.id == user.id).execute()
        if password is not None:
            set_password(user.id, password)
            revoke_other_sessions(user.id, keep_family)
    return User.get_by_id(user.id)
