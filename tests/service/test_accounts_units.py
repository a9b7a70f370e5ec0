"""service.accounts logic with injected time: phone numbers, OTP expiry and lock, token lifetimes."""
from __future__ import annotations

import datetime as dt
import re
import threading

import pytest

from service.accounts import logic as accounts
from service import db as dbmod
from service.db import utcnow
from service.errors import Unauthorized, ValidationError
from service.accounts.models import OtpCode, RefreshToken, User


class Outbox:
    """An SMS sender that keeps what it was given (the SmsSender protocol)."""

    def __init__(self):
        self.sent = []

    def send(self, phone, text):
        self.sent.append((phone, text))

    def code(self):
        return re.search(r"\b(\d{6})\b", self.sent[-1][1]).group(1)


@pytest.mark.parametrize("raw, expected", [
    ("0912345678", "+84912345678"),
    ("+84912345678", "+84912345678"),
    ("84 912 345 678", "+84912345678"),
    ("84912345678", "+84912345678"),
    (" 091-234-5678 ", "+84912345678"),
    ("(091) 234 5678", "+84912345678"),
    ("0084912345678", "+84912345678"),
    ("843456789", "+84843456789"),      # Vinaphone 084 typed without its 0: national, not +84 3456789
    ("0843456789", "+84843456789"),
    ("024 3825 1234", "+842438251234"),  # Hà Nội landline
    ("+1 415 555 2671", "+14155552671"),
])
def test_normalize_phone(raw, expected):
    assert accounts.normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", None, 84912345678, "hello", "0912abc345", "0912345678x",
                                 "++84912345678", "12", "0000000000", "+8491000001", "0912 345 678 999"])
def test_normalize_phone_rejects(raw):
    with pytest.raises(ValidationError) as info:
        accounts.normalize_phone(raw)
    assert info.value.status == 422 and "phone" in info.value.fields


def test_otp_expires_after_five_minutes(app):
    sms = Outbox()
    t0 = dt.datetime(2026, 11, 25, 7, 0, 0)
    accounts.request_otp("0912000001", sms, now=t0)
    row = OtpCode.get()
    assert row.expires_at - row.created_at == dt.timedelta(minutes=5)
    with pytest.raises(Unauthorized):
        accounts.verify_otp("0912000001", sms.code(), now=t0 + dt.timedelta(minutes=5, seconds=1))
    accounts.request_otp("0912000001", sms, now=t0)
    user = accounts.verify_otp("0912000001", sms.code(), now=t0 + dt.timedelta(minutes=4, seconds=59))
    assert user.phone == "+84912000001"
    with pytest.raises(Unauthorized):  # once
        accounts.verify_otp("0912000001", sms.code(), now=t0 + dt.timedelta(minutes=4, seconds=59))


def test_otp_lock_and_stored_hash(app):
    sms = Outbox()
    accounts.request_otp("+84912000002", sms)
    code = sms.code()
    row = OtpCode.get()
    assert code not in row.code_hash
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    for _ in range(accounts.OTP_MAX_TRIES):
        with pytest.raises(Unauthorized):
            accounts.verify_otp("+84912000002", wrong)
    with pytest.raises(Unauthorized):
        accounts.verify_otp("+84912000002", code)
    row = OtpCode.get()
    assert row.locked and row.attempts == accounts.OTP_MAX_TRIES and row.consumed_at is None
    assert not User.select().exists()


def test_concurrent_wrong_guesses_all_count(app):
    """Parallel guesses must not lose attempt updates (row lock on PostgreSQL, write lock on SQLite)."""
    sms = Outbox()
    accounts.request_otp("+84912000003", sms)
    code = sms.code()
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 4)]
    barrier = threading.Barrier(len(wrong))
    errors = []

    def guess(value):
        with app.app_context():
            dbmod.db.connect(reuse_if_open=True)
            try:
                barrier.wait(5)
                accounts.verify_otp("+84912000003", value)
            except Unauthorized:
                pass
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                dbmod.db.close()

    threads = [threading.Thread(target=guess, args=(w,)) for w in wrong]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert OtpCode.get().attempts == len(wrong)


def test_access_token_lifetime_and_refresh_expiry(app):
    user = User.create(phone="+84912000004", name="A")
    t0 = utcnow() - dt.timedelta(days=31)
    session = accounts.start_session(user, now=t0)
    with pytest.raises(Unauthorized, match="expired"):
        accounts.user_from_token(session["access_token"])
    with pytest.raises(Unauthorized):  # refresh tokens live 30 days
        accounts.refresh_session(session["refresh_token"])
    fresh = accounts.start_session(user)
    later = accounts.refresh_session(fresh["refresh_token"], now=utcnow() + dt.timedelta(days=29))
    assert later["refresh_token"] != fresh["refresh_token"]


def test_deactivated_user_cannot_refresh(app):
    user = User.create(phone="+84912000005", name="A")
    session = accounts.start_session(user)
    User.update(is_active=False).where(User.id == user.id).execute()
    with pytest.raises(Unauthorized):
        accounts.refresh_session(session["refresh_token"])
    with pytest.raises(Unauthorized):
        accounts.user_from_token(session["access_token"])
    # no new refresh token was created for the failed attempt
    assert RefreshToken.select().count() == 1


def test_revoke_other_sessions(app):
    user = User.create(phone="+84912000006", name="A")
    keep, drop1, drop2 = (accounts.start_session(user) for _ in range(3))
    fam = accounts.decode_access_token(keep["access_token"])["fam"]
    assert accounts.revoke_other_sessions(user.id, fam) == 2
    accounts.user_from_token(keep["access_token"])
    for s in (drop1, drop2):
        with pytest.raises(Unauthorized):
            accounts.user_from_token(s["access_token"])
