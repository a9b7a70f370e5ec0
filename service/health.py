"""/healthz (the process is alive) and /readyz (database and Redis reachable).

A load balancer routes traffic only to a ready process; /readyz answers 503 with the failing
check (``{"status": "unavailable", "checks": {"database": "ok", "redis": "error: ConnectionError"}}``).
"""
from flask import Blueprint, current_app, jsonify
from redis import Redis

from .db import db

bp = Blueprint("health", __name__)

CHECK_TIMEOUT_SECONDS = 2


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


def _probe_redis() -> Redis | None:
    """A client of its own with short timeouts: a probe must answer even when Redis hangs."""
    url = current_app.config["LIENLAC"].redis_url
    if not url:
        return None
    client = current_app.extensions.get("lienlac.health_redis")
    if client is None:
        client = Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                socket_timeout=CHECK_TIMEOUT_SECONDS)
        current_app.extensions["lienlac.health_redis"] = client
    return client


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        db.connect(reuse_if_open=True)
        db.execute_sql("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report any failure as not ready
        checks["database"] = f"error: {type(exc).__name__}"
    redis = _probe_redis()
    if redis is not None:
        try:
            redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), (200 if ok else 503)
