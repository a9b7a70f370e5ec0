"""Issue 7 (accounts side): password change needs proof, cumulative sign-in lockout, sign-in fails closed
without Redis, rate limits on refresh/claims/announcements, push tokens kept out of logs, national ids."""
from __future__ import annotations

import contextlib
import logging
import re
import time

import pytest

from service.accounts import logic as accounts
from service.roster import logic as roster
from service.logs import JsonFormatter
from service.accounts.models import User
from service.roster.models import Student

from ..support.apps import running_app
from ..support.errors import assert_error
from ..support.servers import free_port

API = "/api/v1"
PASSWORD = "mat-khau-123"  # the factories' default


def bearer(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_429(response):
    assert_error(response, 429, "rate_limited")
    retry = response.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and int(retry) >= 1, dict(response.headers)
    return int(retry)


def login(client, phone, password=PASSWORD):
    return client.post(f"{API}/auth/login", json={"phone": phone, "password": password})


def otp_request(client, phone):
    return client.post(f"{API}/auth/otp/request", json={"phone": phone})


def otp_verify(client, phone, code):
    return client.post(f"{API}/auth/otp/verify", json={"phone": phone, "code": code})


def last_code(app) -> str:
    _to, text = app.extensions["lienlac.sms"].outbox[-1]
    return re.search(r"\b(\d{6})\b", text).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.fixture
def build(database_url, make_config):
    """Apps on this test's database with config overrides (no socket server)."""
    with contextlib.ExitStack() as stack:
        def make(**overrides):
            return stack.enter_context(running_app(make_config(database_url, **overrides), web=False))
        yield make


# --- PATCH /me {password} ----------------------------------------------------------------------------
def test_password_change_needs_the_current_password(client, make):
    user = make.user("Chị Mai")
    mine, other = login(client, user.phone).json, login(client, user.phone).json
    h = bearer(mine["access_token"])

    # a stolen access token alone changes nothing
    err = assert_error(client.patch(f"{API}/me", json={"password": "ke-trom-doi-mat-khau"}, headers=h),
                       422, "validation_error")
    assert "current_password" in err["fields"]
    assert_error(client.patch(f"{API}/me", json={"password": "ke-trom-doi-mat-khau", "current_password": "doan-mo"},
                              headers=h), 403, "forbidden")
    assert_error(client.patch(f"{API}/me", json={"name": "Kẻ trộm", "password": "ke-trom-doi-mat-khau",
                                                 "current_password": "doan-mo"}, headers=h), 403, "forbidden")
    assert User.get_by_id(user.id).name == "Chị Mai"
    assert login(client, user.phone).status_code == 200
    assert client.get(f"{API}/me", headers=bearer(other["access_token"])).status_code == 200  # nobody logged out

    r = client.patch(f"{API}/me", json={"password": "mat-khau-moi-456", "current_password": PASSWORD}, headers=h)
    assert r.status_code == 200
    assert login(client, user.phone, "mat-khau-moi-456").status_code == 200
    assert client.get(f"{API}/me", headers=h).status_code == 200  # this session stays
    assert_error(client.get(f"{API}/me", headers=bearer(other["access_token"])), 401, "unauthorized")


def test_password_change_with_a_fresh_otp_code(app, client, make):
    user = roster.ensure_user(make.phone(), "Anh Tuấn")  # signed up by OTP: no password yet
    assert otp_request(client, user.phone).status_code == 202
    session = otp_verify(client, user.phone, last_code(app)).json
    h = bearer(session["access_token"])
    assert otp_request(client, user.phone).status_code == 202
    code = last_code(app)
    assert_error(client.patch(f"{API}/me", json={"password": "mat-khau-dau-tien", "otp_code": wrong(code)},
                              headers=h), 403, "forbidden")
    r = client.patch(f"{API}/me", json={"password": "mat-khau-dau-tien", "otp_code": code}, headers=h)
    assert r.status_code == 200, r.json
    assert login(client, user.phone, "mat-khau-dau-tien").status_code == 200
    # the code is used up
    assert_error(client.patch(f"{API}/me", json={"password": "mat-khau-thu-hai", "otp_code": code}, headers=h),
                 403, "forbidden")


# --- cumulative lockout --------------------------------------------------------------------------------
def _lockout_app(build, redis_url=None, **overrides):
    values = dict(redis_url=redis_url, auth_lockout_failures=6, auth_failure_window_seconds=86400,
                  auth_lockout_seconds=3600, login_rate_limit="1000 per minute", otp_rate_limit="1000 per minute")
    values.update(overrides)
    return build(**values)


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "memory"])
def test_otp_guessing_locks_the_phone_instead_of_renewing_forever(build, redis_url, with_redis):
    app = _lockout_app(build, redis_url if with_redis else None)
    client = app.test_client()
    user = roster.ensure_user("+84912777001", "Hiệu trưởng B")
    # five tries per code, then a new code: without a cumulative count this never ends
    for _ in range(2):
        assert otp_request(client, user.phone).status_code == 202
        code = last_code(app)
        for _ in range(3):
            assert_error(otp_verify(client, user.phone, wrong(code)), 401, "unauthorized")
    # six failures within the window: the number is locked, even with the right code or password
    retry = assert_429(otp_request(client, user.phone))
    assert 3000 < retry <= 3600
    assert_429(otp_verify(client, user.phone, code))
    assert_429(login(client, user.phone))
    # other numbers are not affected
    assert otp_request(client, "+84912777002").status_code == 202


def test_wrong_passwords_lock_the_phone_and_the_lock_ends(build, redis_url):
    app = _lockout_app(build, redis_url)
    client = app.test_client()
    user = roster.ensure_user("+84912777003", "Cô Lan", PASSWORD)
    for _ in range(6):
        assert_error(login(client, user.phone, "sai-mat-khau"), 401, "unauthorized")
    assert_429(login(client, user.phone))
    # with injected time: locked until the period ends, then the count starts again
    now = time.time()
    with pytest.raises(accounts.RateLimited):
        accounts.login_with_password(user.phone, PASSWORD, now=now + 3590)
    assert accounts.login_with_password(user.phone, PASSWORD, now=now + 3610).id == user.id


def test_failures_older_than_the_window_do_not_count(build, redis_url):
    _lockout_app(build, redis_url)
    phone = "+84912777004"
    t0 = time.time()
    for i in range(5):
        accounts.record_failure(phone, now=t0 + i)
    accounts.record_failure(phone, now=t0 + 86400 + 10)  # the first five have left the window
    accounts.check_lockout(phone, now=t0 + 86400 + 11)
    for i in range(5):
        accounts.record_failure(phone, now=t0 + 86400 + 20 + i)
    with pytest.raises(accounts.RateLimited):
        accounts.check_lockout(phone, now=t0 + 86400 + 30)


def test_a_successful_sign_in_starts_the_count_again(build, redis_url):
    app = _lockout_app(build, redis_url)
    client = app.test_client()
    user = roster.ensure_user("+84912777005", "Thầy Hùng", PASSWORD)
    for _ in range(5):
        login(client, user.phone, "sai")
    assert login(client, user.phone).status_code == 200
    for _ in range(5):
        login(client, user.phone, "sai")
    assert login(client, user.phone).status_code == 200


def test_wrong_current_password_on_patch_me_counts_toward_the_lockout(build, redis_url):
    app = _lockout_app(build, redis_url)
    client = app.test_client()
    user = roster.ensure_user("+84912777006", "Chị Vy", PASSWORD)
    h = bearer(login(client, user.phone).json["access_token"])
    for _ in range(6):
        assert_error(client.patch(f"{API}/me", json={"password": "mat-khau-moi-1", "current_password": "doan"},
                                  headers=h), 403, "forbidden")
    assert_429(client.patch(f"{API}/me", json={"password": "mat-khau-moi-1", "current_password": PASSWORD}, headers=h))
    assert accounts.check_password(User.get_by_id(user.id), PASSWORD)


def test_sign_in_fails_closed_when_redis_is_configured_but_down(build):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = build(redis_url=dead)
    client = app.test_client()
    user = roster.ensure_user("+84912777007", "Cô Hoa", PASSWORD)
    for response in (login(client, user.phone), login(client, user.phone, "sai"), otp_request(client, user.phone),
                     otp_verify(client, user.phone, "123456")):
        assert_error(response, 503, "unavailable")
    assert app.extensions["lienlac.sms"].outbox == []  # no code sent either


# --- rate limits -----------------------------------------------------------------------------------------
def test_refresh_is_rate_limited_per_address(build):
    app = build(refresh_rate_limit="2 per minute")
    client = app.test_client()
    user = roster.ensure_user("+84912777010", "A", PASSWORD)
    token = login(client, user.phone).json["refresh_token"]
    token = client.post(f"{API}/auth/refresh", json={"refresh_token": token}).json["refresh_token"]
    assert client.post(f"{API}/auth/refresh", json={"refresh_token": "x" * 20}).status_code == 401
    assert_429(client.post(f"{API}/auth/refresh", json={"refresh_token": token}))
    other = client.post(f"{API}/auth/refresh", json={"refresh_token": token},
                        environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 200


def test_invite_claims_are_rate_limited_per_user(build):
    app = build(claim_rate_limit="2 per minute")
    client = app.test_client()
    a = roster.ensure_user("+84912777011", "A")
    b = roster.ensure_user("+84912777012", "B")
    ha, hb = bearer(accounts.start_session(a)["access_token"]), bearer(accounts.start_session(b)["access_token"])
    for _ in range(2):
        assert client.post(f"{API}/guardians/claim", json={"code": "KHONG-CO"}, headers=ha).status_code == 404
    assert_429(client.post(f"{API}/guardians/claim", json={"code": "KHONG-CO"}, headers=ha))
    assert client.post(f"{API}/guardians/claim", json={"code": "KHONG-CO"}, headers=hb).status_code == 404


def test_announcements_are_rate_limited_per_user(build):
    from ..support.factories import Factory

    app = build(announcement_rate_limit="1 per minute")
    client = app.test_client()
    make = Factory(app)
    fam = make.family()
    admin = make.admin(fam["school"])
    h = bearer(accounts.start_session(admin)["access_token"])
    body = {"title": "Họp phụ huynh", "body": "Thứ bảy 8 giờ.",
            "audience": {"school_id": str(fam["school"].id)}}
    first = client.post(f"{API}/announcements", json=body, headers=h)
    assert first.status_code in (202, 422), first.json  # the limit counts requests, valid or not
    assert_429(client.post(f"{API}/announcements", json=body, headers=h))
    # reading is not limited
    assert client.get(f"{API}/me", headers=h).status_code == 200


# --- push tokens never logged -----------------------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{self.format(record)} {record.msg!r} {record.args!r} {record.__dict__!r}")


def test_a_device_token_never_appears_in_the_logs(app, client, make):
    token = "fcm-device-token-" + "Zq9" * 30
    user = make.user()
    h = make.headers(user)
    capture = _Capture()
    # ours at DEBUG; every other library at INFO (peewee's DEBUG query log prints parameters by design)
    loggers = [(logging.getLogger("lienlac"), logging.DEBUG), (logging.getLogger(), logging.INFO)]
    old = [lg.level for lg, _ in loggers]
    for lg, level in loggers:
        lg.addHandler(capture)
        lg.setLevel(level)
    try:
        assert client.post(f"{API}/devices", json={"token": token, "platform": "android"}, headers=h).status_code == 200
        assert client.get(f"{API}/devices/{token}", headers=h).status_code == 405  # no route match: still redacted
        assert client.delete(f"{API}/devices/{token}", headers=h).status_code == 204
        assert client.delete(f"{API}/devices/{token}", headers=h).status_code == 404
        # the same with the token in the body
        assert client.post(f"{API}/devices", json={"token": token, "platform": "ios"}, headers=h).status_code == 200
        assert client.delete(f"{API}/devices", json={"token": token}, headers=h).status_code == 204
        assert client.delete(f"{API}/devices", json={"token": token}, headers=h).status_code == 404
        assert_error(client.delete(f"{API}/devices", json={}, headers=h), 422, "validation_error")
        assert client.post(f"{API}/auth/logout", json={"device_token": token}, headers=h).status_code == 204
    finally:
        for (lg, _), level in zip(loggers, old):
            lg.removeHandler(capture)
            lg.setLevel(level)
    text = "\n".join(capture.lines)
    assert '"/api/v1/devices/<redacted>"' in text  # the request lines were captured, without the token
    assert token not in text and token[-20:] not in text


# --- no answer reveals another school's data -------------------------------------------------------------------
def test_a_national_id_used_in_another_school_is_a_generic_conflict(client, make):
    school_a, school_b = make.school("Trường A"), make.school("Trường B")
    theirs = roster.create_student(school_b.id, "Học sinh trường B", national_id="079215000001")
    mine = roster.create_student(school_a.id, "Học sinh trường A", national_id="079215000002")
    admin_a = make.admin(school_a)
    h = make.headers(admin_a)

    cross_patch = client.patch(f"{API}/students/{mine.id}", json={"national_id": "079215000001"}, headers=h)
    cross_post = client.post(f"{API}/schools/{school_a.id}/students",
                             json={"name": "Mới", "national_id": "079215000001"}, headers=h)
    roster.create_student(school_a.id, "Bạn cùng trường", national_id="079215000003")
    own_patch = client.patch(f"{API}/students/{mine.id}", json={"national_id": "079215000003"}, headers=h)
    for r in (cross_patch, cross_post, own_patch):
        assert_error(r, 409, "conflict")
    # the same answer whether the id is used here or in another school, and it names nobody
    assert cross_patch.json == cross_post.json == own_patch.json
    text = cross_patch.get_data(as_text=True).lower()
    for leak in ("exist", "already", "student", "trường b", str(theirs.id), str(school_b.id)):
        assert leak not in text, leak
    assert Student.get_by_id(mine.id).national_id == "079215000002"
