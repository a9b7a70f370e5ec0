"""Structured logging: one JSON line per request and per job, with a request id.

Only fields named here are written: never a token, password, OTP or message body.
"""
from __future__ import annotations

import json
import re
import logging
import sys
import time
import uuid

from flask import Flask, current_app, g, request
from werkzeug.exceptions import HTTPException

_EXTRA_KEYS = ("request_id", "method", "path", "status", "ms", "user_id", "job", "to_suffix", "event")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
               "logger": record.name, "msg": record.getMessage()}
        for key in _EXTRA_KEYS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger("lienlac")
    if any(getattr(h, "_lienlac", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._lienlac = True
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


#: URL variables that are secrets (e.g. ``DELETE /devices/{token}``, a push token): logged as ``<redacted>``
SECRET_URL_VARIABLES = frozenset({"token", "device_token", "code"})
_RULE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


def logged_path() -> str:
    """The request path, with secret URL variables replaced by ``<redacted>`` (rebuilt from the route)."""
    rule, args = request.url_rule, request.view_args or {}
    if rule is None:  # 405 (or a failed match): find the route the path belongs to under any method
        adapter = current_app.url_map.bind("localhost")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            try:
                rule, args = adapter.match(request.path, method=method, return_rule=True)
                break
            except HTTPException:
                continue
    if rule is None or not SECRET_URL_VARIABLES.intersection(args or {}):
        return request.path
    return _RULE_VARIABLE.sub(
        lambda m: "<redacted>" if m.group(1) in SECRET_URL_VARIABLES else str(args.get(m.group(1), "")), rule.rule)


def init_request_logging(app: Flask) -> None:
    log = logging.getLogger("lienlac.request")

    @app.before_request
    def _start():
        g.request_started = time.monotonic()
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex

    @app.after_request
    def _finish(response):
        started = g.get("request_started")
        if started is None:
            return response
        response.headers["X-Request-Id"] = g.request_id
        user = g.get("user")
        log.info("request", extra={
            "request_id": g.request_id, "method": request.method, "path": logged_path(),
            "status": response.status_code, "ms": round((time.monotonic() - started) * 1000, 1),
            "user_id": getattr(user, "id", None)})
        return response
