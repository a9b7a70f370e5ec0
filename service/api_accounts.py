"""HTTP: login, OTP, token refresh, logout, /me and claiming a child with an invite code."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, pre_load, validate

from . import logic as accounts
from ..roster import logic as roster
from .logic import login_required
from ..schemas import ErrorEnvelope, Id

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


class MeOut(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)
    roles = fields.List(fields.Nested(RoleOut), required=True)
    children = fields.List(fields.Nested(ChildOut), required=True)


class MeUpdateIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    password = fields.String(validate=validate.Length(min=8, max=256), load_only=True)

    @pre_load
    def _strip_name(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            data = {**data, "name": data["name"].strip()}
        return data


class ClaimIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=4, max=40))


def _me(user):
    return {"id": user.id, "name": user.name, "phone": user.phone, "roles": roster.roles_of(user.id),
            "children": roster.children_of(user.id)}


@auth_blp.route("/login", methods=["POST"])
@auth_blp.arguments(LoginIn)
@auth_blp.response(200, TokensOut)
@auth_blp.alt_response(401, schema=ErrorEnvelope, description="wrong phone or password")
@auth_blp.alt_response(429, schema=ErrorEnvelope, description="too many attempts; see Retry-After")
@auth_blp.doc(security=[])
def login(body):
    """Sign in with phone number and password."""
    user = accounts.login_with_password(body["phone"], body["password"])
    return accounts.start_session(user)


@auth_blp.route("/otp/request", methods=["POST"])
@auth_blp.arguments(OtpRequestIn)
@auth_blp.response(202)
@auth_blp.alt_response(429, schema=ErrorEnvelope, description="too many codes asked; see Retry-After")
@auth_blp.doc(security=[])
def otp_request(body):
    """Send a 6-digit sign-in code by SMS (valid 5 minutes, 5 tries)."""
    accounts.request_otp(body["phone"], accounts.sms_sender())
    return "", 202


@auth_blp.route("/otp/verify", methods=["POST"])
@auth_blp.arguments(OtpVerifyIn)
@auth_blp.response(200, TokensOut)
@auth_blp.alt_response(401, schema=ErrorEnvelope, description="wrong, expired or locked code")
@auth_blp.doc(security=[])
def otp_verify(body):
    """Sign in with the SMS code; a number seen for the first time gets an account."""
    user = accounts.verify_otp(body["phone"], body["code"])
    return accounts.start_session(user)


@auth_blp.route("/refresh", methods=["POST"])
@auth_blp.arguments(RefreshIn)
@auth_blp.response(200, TokensOut)
@auth_blp.alt_response(401, schema=ErrorEnvelope, description="unknown, used or revoked refresh token")
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
    @login_required
    def patch(self, body):
        """Change my name or password (a new password ends my other sessions)."""
        g.user = accounts.update_profile(g.user, name=body.get("name"), password=body.get("password"),
                                         keep_family=g.token_claims["fam"])
        return _me(g.user)


@me_blp.route("/guardians/claim", methods=["POST"])
@me_blp.arguments(ClaimIn)
@me_blp.response(200, MeOut)
@me_blp.alt_response(404, schema=ErrorEnvelope, description="unknown or expired code")
@me_blp.alt_response(409, schema=ErrorEnvelope, description="code already used by someone else")
@login_required
def claim(body):
    """Link a child to my account with the invite code the school gave."""
    roster.claim_invite(g.user.id, body["code"])
    return _me(g.user)


def apply_rate_limits(app, limiter, config) -> None:
    """Login and OTP: per phone number and per client address."""
    from .logic import normalize_phone
    from ..errors import ApiError
    from flask import request

    def phone_key() -> str:
        body = request.get_json(silent=True)
        raw = str(body.get("phone", "")) if isinstance(body, dict) else ""
        try:
            return "phone:" + normalize_phone(raw)
        except ApiError:
            return "phone:" + raw[:32]

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
