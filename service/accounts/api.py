"""HTTP: login, OTP, token refresh, logout, /me and claiming a child with an invite code."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, pre_load, validate

from . import logic as accounts
from ..roster import logic as roster
from ..roster import queries as roster_queries
from .logic import login_required
from ..schemas import ErrorEnvelope, FastSchema, Id

auth_blp = Blueprint("auth", __name__, url_prefix="/auth", description="Sign in and tokens")
me_blp = Blueprint("me", __name__, url_prefix="", description="The signed-in user")
blueprints = (auth_blp, me_blp)


class LoginIn(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256), load_only=True)


class OtpRequestIn(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32))


class OtpVerifyIn(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32))
    code = fields.String(required=True, validate=validate.Regexp(r"^\s*\d{6}\s*$", error="Six digits."))


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class LogoutIn(Schema):
    refresh_token = fields.String(validate=validate.Length(max=200))
    device_token = fields.String(validate=validate.Length(max=4096))


class UserOut(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)


class TokensOut(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "access token lifetime, seconds"})
    user = fields.Nested(UserOut, required=True)


class RoleOut(Schema):
    role = fields.String(required=True, validate=validate.OneOf(["admin", "teacher", "cafeteria", "guardian"]))
    school_id = Id(required=True)
    class_ids = fields.List(Id(), required=True)


class ChildOut(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    class_id = Id(allow_none=True, attribute="school_class_id")
    school_id = Id(required=True)


class MeOut(FastSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)
    roles = fields.List(fields.Nested(RoleOut), required=True)
    children = fields.List(fields.Nested(ChildOut), required=True)


class MeUpdateIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    password = fields.String(validate=validate.Length(min=8, max=256), load_only=True)
    current_password = fields.String(validate=validate.Length(min=1, max=256), load_only=True, metadata={
        "description": "required with `password` unless `otp_code` is given"})
    otp_code = fields.String(validate=validate.Regexp(r"^\s*\d{6}\s*$", error="Six digits."), load_only=True,
                             metadata={"description": "instead of `current_password`: a code just sent by "
                                                      "`POST /auth/otp/request` to the user's phone"})

    @pre_load
    def _strip_name(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            data = {**data, "name": data["name"].strip()}
        return data


class ClaimIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=4, max=40))


def _me(user):
    roles, children = roster_queries.me_view(user.id)  # a hot path: three queries (roster.roles_of's answer)
    return {"id": user.id, "name": user.name, "phone": user.phone, "roles": roles, "children": children}


@auth_blp.route("/login", methods=["POST"])
@auth_blp.arguments(LoginIn)
@auth_blp.response(200, TokensOut)
@auth_blp.alt_response(401, schema=ErrorEnvelope, description="wrong phone or password")
@auth_blp.alt_response(429, schema=ErrorEnvelope, description="too many attempts, or the number is locked; "
                                                              "see Retry-After")
@auth_blp.alt_response(503, schema=ErrorEnvelope, description="sign-in briefly unavailable")
@auth_blp.doc(security=[])
def login(body):
    """Sign in with phone number and password."""
    user = accounts.login_with_password(body["phone"], body["password"])
    return accounts.start_session(user)


@auth_blp.route("/otp/request", methods=["POST"])
@auth_blp.arguments(OtpRequestIn)
@auth_blp.response(202)
@auth_blp.alt_response(429, schema=ErrorEnvelope, description="too many codes asked, or the number is "
                                                              "locked; see Retry-After")
@auth_blp.alt_response(503, schema=ErrorEnvelope, description="sign-in briefly unavailable")
@auth_blp.doc(security=[])
def otp_request(body):
    """Send a 6-digit sign-in code by SMS (valid 5 minutes, 5 tries)."""
    accounts.request_otp(body["phone"], accounts.sms_sender())
    return "", 202


@auth_blp.route("/otp/verify", methods=["POST"])
@auth_blp.arguments(OtpVerifyIn)
@auth_blp.response(200, TokensOut)
@auth_blp.alt_response(401, schema=ErrorEnvelope, description="wrong, expired or locked code")
@auth_blp.alt_response(429, schema=ErrorEnvelope, description="too many attempts, or the number is locked; "
                                                              "see Retry-After")
@auth_blp.alt_response(503, schema=ErrorEnvelope, description="sign-in briefly unavailable")
@auth_blp.doc(security=[])
def otp_verify(body):
    """Sign in with the SMS code; a number seen for the first time gets an account."""
    user = accounts.verify_otp(body["phone"], body["code"])
    return accounts.start_session(user)


@auth_blp.route("/refresh", methods=["POST"])
@auth_blp.arguments(RefreshIn)
@auth_blp.response(200, TokensOut)
@auth_blp.alt_response(401, schema=ErrorEnvelope, description="unknown, used or revoked refresh token")
@auth_blp.alt_response(429, schema=ErrorEnvelope, description="too many refreshes from this address; see Retry-After")
@auth_blp.doc(security=[])
def refresh(body):
    """Trade a refresh token for a new pair. A refresh token works once; reusing one ends the session."""
    return accounts.refresh_session(body["refresh_token"])


@auth_blp.route("/logout", methods=["POST"])
@auth_blp.arguments(LogoutIn, required=False)
@auth_blp.response(204)
@login_required
def logout(body):
    """End this session (its refresh tokens) and drop this device's push token if given."""
    body = body or {}
    accounts.logout(g.user, g.token_claims["fam"], body.get("device_token"))
    return "", 204


@me_blp.route("/me")
class Me(MethodView):
    @me_blp.response(200, MeOut)
    @login_required
    def get(self):
        """Who am I: roles per school and, for a guardian, the children."""
        return _me(g.user)

    @me_blp.arguments(MeUpdateIn)
    @me_blp.response(200, MeOut)
    @me_blp.alt_response(403, schema=ErrorEnvelope, description="`current_password` or `otp_code` is wrong")
    @me_blp.alt_response(422, schema=ErrorEnvelope, description="invalid, or `password` without "
                                                                "`current_password`/`otp_code`")
    @me_blp.alt_response(429, schema=ErrorEnvelope, description="too many wrong passwords/codes for this phone")
    @login_required
    def patch(self, body):
        """Change my name or password. A new password needs `current_password` (or `otp_code`) and ends
        my other sessions and their sockets; this one stays."""
        g.user = accounts.update_profile(g.user, name=body.get("name"), password=body.get("password"),
                                         keep_family=g.token_claims["fam"],
                                         current_password=body.get("current_password"),
                                         otp_code=body.get("otp_code"))
        return _me(g.user)


@me_blp.route("/guardians/claim", methods=["POST"])
@me_blp.arguments(ClaimIn)
@me_blp.response(200, MeOut)
@me_blp.alt_response(404, schema=ErrorEnvelope, description="unknown or expired code")
@me_blp.alt_response(409, schema=ErrorEnvelope, description="code already used by someone else")
@me_blp.alt_response(429, schema=ErrorEnvelope, description="too many claims; see Retry-After")
@login_required
def claim(body):
    """Link a child to my account with the invite code the school gave."""
    roster.claim_invite(g.user.id, body["code"])
    return _me(g.user)


def apply_rate_limits(app, limiter, config) -> None:
    """Login and OTP: per phone number and per client address. Refresh: per client address.
    Invite claims and announcements: per signed-in user (per address without a valid token).

    A limit answers 429 with ``Retry-After``. If Redis is configured but down the limiter counts
    per process; sign-in itself then answers 503 (``accounts.check_lockout``).
    """
    from .logic import decode_access_token, normalize_phone
    from ..errors import ApiError
    from flask import request
    from flask_limiter.util import get_remote_address

    def phone_key() -> str:
        body = request.get_json(silent=True)
        raw = str(body.get("phone", "")) if isinstance(body, dict) else ""
        try:
            return "phone:" + normalize_phone(raw)
        except ApiError:
            return "phone:" + raw[:32]

    def user_key() -> str:
        """The token's user (signature and expiry checked, no database read); else the address."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                return "user:" + str(decode_access_token(token.strip())["sub"])
            except ApiError:
                pass
        return "addr:" + (get_remote_address() or "")

    limits = {"auth.login": config.login_rate_limit, "auth.otp_request": config.otp_rate_limit,
              "auth.otp_verify": config.login_rate_limit}
    ip_limit = config.extra.get("ip_rate_limit", "60 per minute")
    for endpoint, limit in limits.items():
        view = app.view_functions[endpoint]
        # flask-limiter checks decorated limits only when its wrapper runs (its before_request hook
        # applies application/default limits only), so the wrapper must replace the registered view.
        # Both limits are registered under the view's name; the innermost wrapper checks them all.
        view = limiter.limit(limit, key_func=phone_key, scope=endpoint + ":phone")(view)
        view = limiter.limit(ip_limit, scope=endpoint + ":ip")(view)
        app.view_functions[endpoint] = view
    app.view_functions["auth.refresh"] = limiter.limit(config.refresh_rate_limit, scope="auth.refresh:ip")(
        app.view_functions["auth.refresh"])
    per_user = {"me.claim": config.claim_rate_limit,
                "announcements.create_announcement": config.announcement_rate_limit}
    for endpoint, limit in per_user.items():
        if endpoint in app.view_functions:  # a domain package may be absent
            app.view_functions[endpoint] = limiter.limit(limit, key_func=user_key, scope=endpoint + ":user")(
                app.view_functions[endpoint])
