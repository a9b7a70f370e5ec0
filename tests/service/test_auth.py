"""Accounts over HTTP: phone login, OTP, rotating refresh tokens, logout, /me, claiming a child,
rate limits (memory and Redis storage) and no secrets in the logs. Real database, both backends."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re

import jwt
import pytest

from service.accounts import logic as accounts
from service.roster import logic as roster
from service import db as dbmod
from service.app import create_app
from service.db import utcnow
from service.logs import JsonFormatter
from service.accounts.models import OtpCode, RefreshToken, RevokedFamily, User
from service.roster.models import StudentGuardian
from service.signals import logged_out

from ..support.errors import assert_error

API = "/api/v1"
PASSWORD = "mat-khau-123"  # the factories' default


# --- helpers -------------------------------------------------------------------------------
def national(phone: str) -> str:
    """+84912345678 → 0912345678"""
    assert phone.startswith("+84")
    return "0" + phone[3:]


def spaced(phone: str) -> str:
    """+84912345678 → 84 912 345 678"""
    digits = phone[3:]
    return f"84 {digits[:3]} {digits[3:6]} {digits[6:]}"


def login(client, phone, password=PASSWORD, **kw):
    return client.post(f"{API}/auth/login", json={"phone": phone, "password": password}, **kw)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def last_code(app, phone):
    sent_to, text = app.extensions["lienlac.sms"].outbox[-1]
    assert sent_to == phone
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


def request_code(client, app, phone, **kw):
    r = client.post(f"{API}/auth/otp/request", json={"phone": phone}, **kw)
    assert r.status_code == 202, r.get_data(as_text=True)
    return last_code(app, accounts.normalize_phone(phone))


def verify(client, phone, code, **kw):
    return client.post(f"{API}/auth/otp/verify", json={"phone": phone, "code": code}, **kw)


def refresh(client, token):
    return client.post(f"{API}/auth/refresh", json={"refresh_token": token})


def wrong_code(code):
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- phone numbers and password login -------------------------------------------------------
def test_phone_formats_are_one_account(client, make):
    user = make.user("Nguyễn Văn An")
    ids = set()
    for form in (user.phone, national(user.phone), spaced(user.phone), "+84 " + user.phone[3:]):
        r = login(client, form)
        assert r.status_code == 200, (form, r.json)
        ids.add(r.json["user"]["id"])
    assert ids == {str(user.id)}
    # the roster normalises too: the same person created twice is one row
    assert roster.ensure_user(national(user.phone), "x").id == user.id
    assert User.select().where(User.phone == user.phone).count() == 1


def test_garbage_phone_is_422_with_field(client):
    garbage_values = ["hello", "0912abc345", "12345", "0000000000", "+84 12", "0912345678x",
                      "0912 345 678 999", 912345678, None, ""]
    for garbage in garbage_values:
        for path, body in (("/auth/login", {"phone": garbage, "password": "whatever"}),
                           ("/auth/otp/request", {"phone": garbage}),
                           ("/auth/otp/verify", {"phone": garbage, "code": "123456"})):
            r = client.post(API + path, json=body)
            err = assert_error(r, 422, "validation_error")
            assert "phone" in err["fields"], (garbage, path, err)
    assert OtpCode.select().count() == 0
    assert not client.application.extensions["lienlac.sms"].outbox


def test_password_login_and_wrong_password(client, make, app):
    user = make.user("Trần Thị Bình")
    r = login(client, national(user.phone))
    assert r.status_code == 200
    body = r.json
    assert set(body) == {"access_token", "refresh_token", "expires_in", "user"}
    assert body["expires_in"] == app.config["LIENLAC"].access_token_seconds == 900
    assert body["user"] == {"id": str(user.id), "name": "Trần Thị Bình", "phone": user.phone}
    me = client.get(f"{API}/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json["id"] == str(user.id)

    wrong = assert_error(login(client, user.phone, "not-the-password"), 401, "unauthorized")
    unknown = assert_error(login(client, "0987654321", "not-the-password"), 401, "unauthorized")
    assert wrong["message"] == unknown["message"]  # nothing tells which numbers have accounts
    assert RefreshToken.select().count() == 1  # failures start no session

    # an account without a password (OTP-only) cannot log in with any password
    otp_only = User.create(phone="+84987000111", name="")
    assert_error(login(client, otp_only.phone, ""), 422, "validation_error")
    assert_error(login(client, otp_only.phone, "anything"), 401, "unauthorized")
    # a deactivated account neither
    User.update(is_active=False).where(User.id == user.id).execute()
    assert_error(login(client, user.phone), 401, "unauthorized")


def test_missing_fields_are_422(client):
    err = assert_error(client.post(f"{API}/auth/login", json={"phone": "0912345678"}), 422, "validation_error")
    assert "password" in err["fields"]
    err = assert_error(client.post(f"{API}/auth/otp/verify", json={"phone": "0912345678", "code": "12ab56"}),
                       422, "validation_error")
    assert "code" in err["fields"]


# --- OTP ------------------------------------------------------------------------------------
def test_otp_first_login_creates_account_and_code_is_hashed(client, app):
    phone = "+84912000777"
    assert User.get_or_none(User.phone == phone) is None
    before = utcnow()
    code = request_code(client, app, national(phone))
    assert re.fullmatch(r"\d{6}", code)
    row = OtpCode.get(OtpCode.phone == phone)
    assert code not in row.code_hash and row.code_hash != code
    for value in row.__data__.values():
        assert code not in str(value)
    assert dt.timedelta(minutes=5) - dt.timedelta(seconds=1) <= row.expires_at - before <= dt.timedelta(
        minutes=5, seconds=5)

    r = verify(client, spaced(phone), code)  # any format of the same number
    assert r.status_code == 200, r.json
    assert set(r.json) == {"access_token", "refresh_token", "expires_in", "user"}
    user = User.get(User.phone == phone)
    assert r.json["user"] == {"id": str(user.id), "name": "", "phone": phone}
    assert User.select().where(User.phone == phone).count() == 1
    me = client.get(f"{API}/me", headers=bearer(r.json["access_token"]))
    assert me.json == {"id": str(user.id), "name": "", "phone": phone, "roles": [], "children": []}

    # a code works once
    assert_error(verify(client, phone, code), 401, "unauthorized")
    # a second OTP login finds the same account
    code2 = request_code(client, app, phone)
    r2 = verify(client, phone, code2)
    assert r2.status_code == 200 and r2.json["user"]["id"] == str(user.id)
    assert User.select().count() == 1


def test_otp_existing_account(client, app, make):
    user = make.user("Lê Văn Cường")
    code = request_code(client, app, user.phone)
    r = verify(client, national(user.phone), code)
    assert r.status_code == 200 and r.json["user"]["id"] == str(user.id)


def test_otp_five_wrong_tries_lock_the_code(client, app):
    phone = "+84912000888"
    code = request_code(client, app, phone)
    for attempt in range(1, 6):
        assert_error(verify(client, phone, wrong_code(code)), 401, "unauthorized")
        row = OtpCode.get(OtpCode.phone == phone)
        assert row.attempts == attempt
    assert row.locked
    assert_error(verify(client, phone, code), 401, "unauthorized")  # the right code is dead too
    assert User.get_or_none(User.phone == phone) is None
    # four wrong tries do not lock: the right code still works
    code = request_code(client, app, phone)
    for _ in range(4):
        assert_error(verify(client, phone, wrong_code(code)), 401, "unauthorized")
    assert verify(client, phone, code).status_code == 200


def test_otp_expired_code_fails(client, app):
    phone = "+84912000999"
    code = request_code(client, app, phone)
    OtpCode.update(expires_at=utcnow() - dt.timedelta(seconds=1)).where(OtpCode.phone == phone).execute()
    assert_error(verify(client, phone, code), 401, "unauthorized")
    assert User.get_or_none(User.phone == phone) is None


def test_new_code_replaces_the_previous_one(client, app):
    phone = "+84912000555"
    first = request_code(client, app, phone)
    second = request_code(client, app, phone)
    if first != second:
        assert_error(verify(client, phone, first), 401, "unauthorized")
    assert verify(client, phone, second).status_code == 200


# --- refresh tokens ----------------------------------------------------------------------------
def test_refresh_rotates_and_reuse_revokes_the_family(client, make):
    user = make.user()
    t0 = login(client, user.phone).json
    other = login(client, user.phone).json  # a second device: another family

    r1 = refresh(client, t0["refresh_token"])
    assert r1.status_code == 200
    t1 = r1.json
    assert set(t1) == {"access_token", "refresh_token", "expires_in", "user"}
    assert t1["refresh_token"] != t0["refresh_token"] and t1["access_token"] != t0["access_token"]
    assert t1["user"]["id"] == str(user.id)
    assert client.get(f"{API}/me", headers=bearer(t1["access_token"])).status_code == 200

    t2 = refresh(client, t1["refresh_token"]).json
    assert client.get(f"{API}/me", headers=bearer(t2["access_token"])).status_code == 200

    # the old token stops working... and presenting it (a thief or a replay) ends the whole family
    assert_error(refresh(client, t0["refresh_token"]), 401, "unauthorized")
    assert_error(refresh(client, t2["refresh_token"]), 401, "unauthorized")  # the newest one too
    for access in (t0["access_token"], t1["access_token"], t2["access_token"]):
        assert_error(client.get(f"{API}/me", headers=bearer(access)), 401, "unauthorized")
    family = jwt.decode(t2["access_token"], options={"verify_signature": False})["fam"]
    assert RevokedFamily.get(RevokedFamily.family == family).reason == "reuse"

    # the other device is untouched
    assert client.get(f"{API}/me", headers=bearer(other["access_token"])).status_code == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_refresh_garbage_and_expired(client, make):
    user = make.user()
    assert_error(refresh(client, "x" * 40), 401, "unauthorized")
    assert_error(client.post(f"{API}/auth/refresh", json={}), 422, "validation_error")
    tokens = login(client, user.phone).json
    RefreshToken.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    assert_error(refresh(client, tokens["refresh_token"]), 401, "unauthorized")
    # an access token is not a refresh token, and a refresh token is not a bearer token
    assert refresh(client, tokens["access_token"]).status_code in (401, 422)
    assert_error(client.get(f"{API}/me", headers=bearer(tokens["refresh_token"])), 401, "unauthorized")


# --- logout ---------------------------------------------------------------------------------
def test_logout_ends_the_session_and_signals_the_device(client, make):
    user = make.user()
    tokens = login(client, user.phone).json
    other = login(client, user.phone).json
    received = []

    def receiver(sender, **kw):
        received.append(kw)

    logged_out.connect(receiver)
    try:
        r = client.post(f"{API}/auth/logout", json={"device_token": "fcm-device-token-abc"},
                        headers=bearer(tokens["access_token"]))
    finally:
        logged_out.disconnect(receiver)
    assert r.status_code == 204 and r.get_data() == b""
    assert received == [{"user_id": user.id, "device_token": "fcm-device-token-abc"}]
    assert_error(client.get(f"{API}/me", headers=bearer(tokens["access_token"])), 401, "unauthorized")
    assert_error(refresh(client, tokens["refresh_token"]), 401, "unauthorized")
    family = jwt.decode(tokens["access_token"], options={"verify_signature": False})["fam"]
    assert RefreshToken.select().where((RefreshToken.family == family)
                                       & RefreshToken.revoked_at.is_null()).count() == 0
    # logging out one device leaves the others signed in
    assert client.get(f"{API}/me", headers=bearer(other["access_token"])).status_code == 200
    # without a body it works too (no device token to drop)
    received.clear()
    logged_out.connect(receiver)
    try:
        assert client.post(f"{API}/auth/logout", headers=bearer(other["access_token"])).status_code == 204
    finally:
        logged_out.disconnect(receiver)
    assert received == [{"user_id": user.id, "device_token": None}]
    assert_error(client.post(f"{API}/auth/logout"), 401, "unauthorized")


def test_logout_survives_a_failing_receiver(client, make):
    user = make.user()
    tokens = login(client, user.phone).json

    def broken(sender, **kw):
        raise RuntimeError("push store is down")

    logged_out.connect(broken)
    try:
        r = client.post(f"{API}/auth/logout", json={"device_token": "t"}, headers=bearer(tokens["access_token"]))
    finally:
        logged_out.disconnect(broken)
    assert r.status_code == 204
    assert_error(client.get(f"{API}/me", headers=bearer(tokens["access_token"])), 401, "unauthorized")


# --- access tokens ----------------------------------------------------------------------------
def test_bad_access_tokens_are_401(client, make, app):
    user = make.user()
    tokens = login(client, user.phone).json
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    secret = app.config["LIENLAC"].secret_key

    expired = accounts.issue_access_token(user.id, claims["fam"], now=utcnow() - dt.timedelta(hours=1))[0]
    past = jwt.encode({**claims, "exp": int(utcnow().replace(tzinfo=dt.timezone.utc).timestamp()) - 5}, secret,
                      algorithm="HS256")
    head, payload, sig = tokens["access_token"].split(".")
    tampered_claims = {**claims, "sub": str(user.id + 1)}
    tampered = ".".join([head, jwt.utils.base64url_encode(json.dumps(tampered_claims).encode()).decode(), sig])
    other_secret = jwt.encode(claims, "not-our-secret-but-long-enough-for-hs256-keys", algorithm="HS256")
    none_alg = jwt.encode(claims, None, algorithm="none")
    not_access = jwt.encode({**claims, "typ": "refresh"}, secret, algorithm="HS256")
    no_family = jwt.encode({k: v for k, v in claims.items() if k != "fam"}, secret, algorithm="HS256")

    for token in (expired, past, tampered, other_secret, none_alg, not_access, no_family, "garbage"):
        err = assert_error(client.get(f"{API}/me", headers=bearer(token)), 401, "unauthorized")
        assert token not in json.dumps(err)
    assert_error(client.get(f"{API}/me"), 401, "unauthorized")
    assert_error(client.get(f"{API}/me", headers={"Authorization": tokens["access_token"]}), 401, "unauthorized")
    assert_error(client.get(f"{API}/me", headers={"Authorization": "Basic " + tokens["access_token"]}),
                 401, "unauthorized")
    assert_error(client.get(f"{API}/me", headers={"Authorization": "Bearer "}), 401, "unauthorized")
    # ...and the genuine one still works
    assert client.get(f"{API}/me", headers=bearer(tokens["access_token"])).status_code == 200


def test_short_lived_access_token_expires(database_url, make_config):
    import time

    app = create_app(make_config(database_url, access_token_seconds=3))
    try:
        with app.app_context(), dbmod.connection():
            user = roster.ensure_user("+84912000444", "A", PASSWORD)
        client = app.test_client()
        tokens = login(client, user.phone).json
        assert tokens["expires_in"] == 3
        assert client.get(f"{API}/me", headers=bearer(tokens["access_token"])).status_code == 200
        time.sleep(3.1)
        assert_error(client.get(f"{API}/me", headers=bearer(tokens["access_token"])), 401, "unauthorized")
        assert refresh(client, tokens["refresh_token"]).status_code == 200  # the refresh token outlives it
    finally:
        _close_pool()


# --- /me and claiming a child ------------------------------------------------------------------
def test_me_shape_for_teacher_and_guardian(client, make):
    fam = make.family()
    school, klass, student = fam["school"], fam["klass"], fam["student"]
    r = client.get(f"{API}/me", headers=make.headers(fam["teacher"]))
    assert r.json == {"id": str(fam["teacher"].id), "name": fam["teacher"].name, "phone": fam["teacher"].phone,
                      "roles": [{"role": "teacher", "school_id": str(school.id), "class_ids": [str(klass.id)]}],
                      "children": []}
    r = client.get(f"{API}/me", headers=make.headers(fam["guardian"]))
    assert r.json["roles"] == [{"role": "guardian", "school_id": str(school.id), "class_ids": [str(klass.id)]}]
    child = r.json["children"][0]
    assert {k: child[k] for k in ("id", "name", "class_id")} == {
        "id": str(student.id), "name": student.name, "class_id": str(klass.id)}


def test_patch_me_name_and_password(client, make):
    user = make.user("Cũ")
    tokens = login(client, user.phone).json
    other = login(client, user.phone).json
    h = bearer(tokens["access_token"])

    r = client.patch(f"{API}/me", json={"name": "  Phạm Thị Dung  "}, headers=h)
    assert r.status_code == 200 and r.json["name"] == "Phạm Thị Dung"
    assert client.get(f"{API}/me", headers=h).json["name"] == "Phạm Thị Dung"

    for bad in ({"name": "   "}, {"password": "short"}, {"name": "Mới", "password": "short"}):
        assert_error(client.patch(f"{API}/me", json=bad, headers=h), 422, "validation_error")
    assert User.get_by_id(user.id).name == "Phạm Thị Dung"  # nothing changed

    r = client.patch(f"{API}/me", json={"password": "mat-khau-moi-456", "current_password": PASSWORD}, headers=h)
    assert r.status_code == 200
    assert_error(login(client, user.phone, PASSWORD), 401, "unauthorized")
    assert login(client, user.phone, "mat-khau-moi-456").status_code == 200
    # the session that changed the password goes on; the other sessions end
    assert client.get(f"{API}/me", headers=h).status_code == 200
    assert refresh(client, tokens["refresh_token"]).status_code == 200
    assert_error(client.get(f"{API}/me", headers=bearer(other["access_token"])), 401, "unauthorized")
    assert_error(refresh(client, other["refresh_token"]), 401, "unauthorized")
    assert_error(client.patch(f"{API}/me", json={"name": "X"}), 401, "unauthorized")


def test_claim_child_with_invite_code(client, make):
    fam = make.family()
    admin = make.admin(fam["school"])
    code, _row = roster.create_invite(fam["student"].id, admin.id, relationship="father")
    parent = make.user("Bố")
    h = make.headers(parent)
    assert client.get(f"{API}/me", headers=h).json["children"] == []

    r = client.post(f"{API}/guardians/claim", json={"code": code}, headers=h)
    assert r.status_code == 200, r.json
    assert [c["id"] for c in r.json["children"]] == [str(fam["student"].id)]
    me = client.get(f"{API}/me", headers=h).json
    assert [c["id"] for c in me["children"]] == [str(fam["student"].id)]
    assert {"role": "guardian", "school_id": str(fam["school"].id), "class_ids": [str(fam["klass"].id)]} in me["roles"]
    link = StudentGuardian.get((StudentGuardian.guardian == parent.id) & (StudentGuardian.student == fam["student"].id))
    assert link.relationship == "father"

    # the same guardian again (also typed in lower case without the dash): idempotent
    r = client.post(f"{API}/guardians/claim", json={"code": code.lower().replace("-", "")}, headers=h)
    assert r.status_code == 200 and len(r.json["children"]) == 1
    assert StudentGuardian.select().where(StudentGuardian.guardian == parent.id).count() == 1

    stranger = make.user("Người lạ")
    assert_error(client.post(f"{API}/guardians/claim", json={"code": code}, headers=make.headers(stranger)),
                 409, "conflict")
    assert not StudentGuardian.select().where(StudentGuardian.guardian == stranger.id).exists()
    assert_error(client.post(f"{API}/guardians/claim", json={"code": "ZZZZZ-ZZZZZ"}, headers=h), 404, "not_found")
    assert_error(client.post(f"{API}/guardians/claim", json={"code": code}), 401, "unauthorized")


def test_expired_invite_is_404(client, make):
    fam = make.family()
    code, _ = roster.create_invite(fam["student"].id, None, now=utcnow() - dt.timedelta(days=31))
    parent = make.user()
    assert_error(client.post(f"{API}/guardians/claim", json={"code": code}, headers=make.headers(parent)),
                 404, "not_found")


# --- rate limits ------------------------------------------------------------------------------
def _close_pool():
    obj = dbmod.db.obj
    if not dbmod.db.is_closed():
        dbmod.db.close()
    if hasattr(obj, "close_all"):
        obj.close_all()


@pytest.fixture
def limited_app(database_url, make_config):
    """An app whose login/OTP limits are small: 3 a minute per phone, 5 a minute per address."""
    built = []

    def build(**overrides):
        values = dict(login_rate_limit="3 per minute", otp_rate_limit="3 per minute",
                      extra={"ip_rate_limit": "5 per minute"})
        values.update(overrides)
        app = create_app(make_config(database_url, **values), web=False)
        built.append(app)
        return app

    yield build
    _close_pool()


def _ip(n):
    return {"environ_base": {"REMOTE_ADDR": f"10.0.0.{n}"}}


def assert_rate_limited(response, max_seconds=60):
    err = assert_error(response, 429, "rate_limited")
    retry = response.headers.get("Retry-After")
    assert retry is not None and retry.isdigit(), dict(response.headers)
    assert 1 <= int(retry) <= max_seconds, retry
    return err


def test_login_limit_per_phone_across_addresses(limited_app):
    app = limited_app()
    client = app.test_client()
    with app.app_context(), dbmod.connection():
        user = roster.ensure_user("+84912000111", "A", PASSWORD)
    # the same number in three formats, from three addresses: one phone, 3 a minute
    for n, form in enumerate((user.phone, national(user.phone), spaced(user.phone)), 1):
        assert login(client, form, "wrong-password", **_ip(n)).status_code == 401
    assert_rate_limited(login(client, user.phone, PASSWORD, **_ip(4)))  # even the right password waits
    # other numbers from a fresh address are not affected
    with app.app_context(), dbmod.connection():
        other = roster.ensure_user("+84912000112", "B", PASSWORD)
    assert login(client, other.phone, **_ip(5)).status_code == 200


def test_login_limit_per_address_across_phones(limited_app):
    app = limited_app()
    client = app.test_client()
    phones = [f"+8491200{n:04d}" for n in range(6)]
    for phone in phones[:5]:
        assert login(client, phone, "wrong-password", **_ip(9)).status_code == 401
    assert_rate_limited(login(client, phones[5], "wrong-password", **_ip(9)))
    # the same new number from another address goes through
    assert login(client, phones[5], "wrong-password", **_ip(10)).status_code == 401


def test_otp_request_limits(limited_app):
    app = limited_app()
    client = app.test_client()
    outbox = app.extensions["lienlac.sms"].outbox
    phone = "+84912000321"
    for n in range(3):
        assert client.post(f"{API}/auth/otp/request", json={"phone": phone}, **_ip(20 + n)).status_code == 202
    assert_rate_limited(client.post(f"{API}/auth/otp/request", json={"phone": national(phone)}, **_ip(30)))
    assert len(outbox) == 3  # no SMS for the refused request
    # per address: 5 different numbers, the 6th is refused
    for n in range(5):
        assert client.post(f"{API}/auth/otp/request", json={"phone": f"+8491300{n:04d}"}, **_ip(40)).status_code == 202
    assert_rate_limited(client.post(f"{API}/auth/otp/request", json={"phone": "+84913009999"}, **_ip(40)))
    # OTP guesses are limited per phone as well (on top of the 5-tries lock)
    for n in range(3):
        assert verify(client, phone, "000000", **_ip(50 + n)).status_code == 401
    assert_rate_limited(verify(client, phone, "000000", **_ip(60)))


def test_retry_after_follows_the_window(limited_app):
    app = limited_app(login_rate_limit="2 per 10 seconds")
    client = app.test_client()
    for n in range(2):
        assert login(client, "+84912000222", "x", **_ip(70 + n)).status_code == 401
    r = login(client, "+84912000222", "x", **_ip(72))
    assert_rate_limited(r, max_seconds=10)  # the real window, not a fixed default


def test_limit_is_shared_by_two_web_processes_through_redis(limited_app, redis_url):
    first = limited_app(redis_url=redis_url)
    second = limited_app(redis_url=redis_url)
    a, b = first.test_client(), second.test_client()
    phone = "+84912000333"
    assert login(a, phone, "x", **_ip(80)).status_code == 401
    assert login(b, phone, "x", **_ip(81)).status_code == 401
    assert login(a, phone, "x", **_ip(82)).status_code == 401
    assert_rate_limited(login(b, phone, "x", **_ip(83)))
    assert_rate_limited(login(a, phone, "x", **_ip(84)))
    # per address too
    for n in range(5):
        client = (a, b)[n % 2]
        assert login(client, f"+8491400{n:04d}", "x", **_ip(90)).status_code == 401
    assert_rate_limited(login(a, "+84914009999", "x", **_ip(90)))


# --- no secrets in the logs -----------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_KEYS}
        self.lines.append(f"{self.format(record)} {record.msg!r} {record.args!r} {extra!r}")


_STANDARD_RECORD_KEYS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _appears(secret: str, text: str) -> bool:
    if secret.isdigit():  # an OTP: as a number of its own (timestamps are full of digits)
        return re.search(rf"(?<![\d.]){secret}(?![\d.])", text) is not None
    return secret in text


def test_no_tokens_passwords_or_codes_in_the_log(client, app, make):
    capture = _Capture()
    logger = logging.getLogger("lienlac")
    old_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    secrets_seen = []
    try:
        user = make.user(password="Bi-mat-Rat-Dai-987")
        secrets_seen.append("Bi-mat-Rat-Dai-987")
        t = login(client, user.phone, "Bi-mat-Rat-Dai-987").json
        assert login(client, user.phone, "Sai-mat-khau-654").status_code == 401
        secrets_seen.append("Sai-mat-khau-654")
        code = request_code(client, app, user.phone)
        assert verify(client, user.phone, wrong_code(code)).status_code == 401
        t2 = verify(client, user.phone, code).json
        t3 = refresh(client, t["refresh_token"]).json
        assert refresh(client, t["refresh_token"]).status_code == 401  # reuse: logged as a warning
        assert client.patch(f"{API}/me", json={"password": "Mat-khau-moi-321", "current_password": "Bi-mat-Rat-Dai-987"},
                            headers=bearer(t2["access_token"])).status_code == 200
        secrets_seen.append("Mat-khau-moi-321")
        client.post(f"{API}/auth/logout", json={"device_token": "device-secret-token-xyz"},
                    headers=bearer(t2["access_token"]))
        for tokens in (t, t2, t3):
            secrets_seen += [tokens["access_token"], tokens["refresh_token"]]
        secrets_seen += [code, wrong_code(code), "device-secret-token-xyz"]
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
    text = "\n".join(capture.lines)
    # the capture works: requests, the SMS and the reuse warning were logged
    assert '"sms queued"' in text and "refresh token reuse" in text and '"/api/v1/auth/login"' in text
    for secret in secrets_seen:
        assert not _appears(secret, text), secret
