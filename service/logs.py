"""Structured logging: one JSON line per request and per job, with a request id.

Only fields named here are written: never a token, password, OTP or message body.
"""
from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from flask import Flask, g, request

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
        rule = request.url_rule
        # a token in the path (a calendar feed, a device) is a secret: log the route instead
        path = rule.rule if rule is not None and any("token" in arg for arg in rule.arguments) else request.path
        log.info("request", extra={
            "request_id": g.request_id, "method": request.method, "path": path,
            "status": response.status_code, "ms": round((time.monotonic() - started) * 1000, 1),
            "user_id": getattr(user, "id", None)})
        return response
