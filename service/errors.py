"""The error envelope of API.md for every error: ``{"error": {"code", "message", "fields"?}}``."""
from __future__ import annotations

import logging

import peewee
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("lienlac.errors")

CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "validation_error",
    415: "validation_error",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from logic or views; becomes the envelope with this status."""

    status = 400
    code = "validation_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 fields: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code or CODES.get(self.status, self.code)
        self.fields = fields
        self.headers = headers or {}


class ValidationError(ApiError):
    status = 422
    code = "validation_error"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"

    def __init__(self, message: str = "Not found", **kw):
        super().__init__(message, **kw)


class Conflict(ApiError):
    status = 409
    code = "conflict"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class Unavailable(ApiError):
    """A dependency the answer needs is down (e.g. Redis for sign-in counting): try again later."""

    status = 503
    code = "unavailable"


def envelope(status: int, message: str, code: str | None = None, fields: dict | None = None):
    body = {"error": {"code": code or CODES.get(status, "error" if status >= 500 else "bad_request"),
                      "message": message}}
    if fields:
        body["error"]["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


def _flatten_marshmallow(messages) -> dict:
    """flask-smorest nests errors by location ({"json": {...}}); the client wants the fields."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    out: dict = {}
    for location, errors in messages.items():
        if location in ("json", "query", "form", "files", "path", "headers") and isinstance(errors, dict):
            out.update(errors)
        else:
            out[location] = errors
    return out


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response = envelope(exc.status, exc.message, exc.code, exc.fields)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        fields = None
        data = getattr(exc, "data", None) or {}
        if status == 400 and data.get("messages") == {"json": ["Invalid JSON body."]}:  # webargs
            message = "The request body is not valid JSON."
        elif "messages" in data:  # webargs / flask-smorest validation failure
            fields = _flatten_marshmallow(data["messages"])
            message = "The request has invalid fields."
            status = 422 if status in (400, 422) else status
        elif status == 400:
            message = "The request body is not valid JSON." if "JSON" in (exc.description or "") else (
                exc.description or "Bad request")
        elif status == 429:
            message = "Too many requests; try again later."
        else:
            message = exc.description or exc.name
        response = envelope(status, message, fields=fields)
        if status == 429:
            retry = (exc.get_response().headers.get("Retry-After") if hasattr(exc, "get_response") else None)
            # flask-limiter's RateLimitExceeded (it has .limit): the limiter's after_request hook sets the
            # real Retry-After; a default here would win over it (it keeps the larger of the two)
            if retry or getattr(exc, "limit", None) is None:
                response.headers["Retry-After"] = retry or "60"
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(peewee.OperationalError)
    @app.errorhandler(peewee.InterfaceError)
    def _database_error(exc: Exception):
        from .db import connection_lost

        if not connection_lost(exc):
            return _unexpected(exc)
        # PostgreSQL ended the connection mid-request (a failover, pg_terminate_backend): whatever
        # the request's transaction did is rolled back; the same request again gets a new connection
        log.warning("database connection lost during the request: 503")
        response = envelope(503, "The database connection was lost; try again.", code="unavailable")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return envelope(500, "Internal server error", code="internal_error")
