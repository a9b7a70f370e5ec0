"""/healthz and /readyz: what a load balancer and an orchestrator probe."""
from __future__ import annotations

import contextlib

from service import db as dbmod
from service.app import create_app

from ..support.servers import free_port


@contextlib.contextmanager
def probe_client(config):
    app = create_app(config, web=False)
    try:
        yield app.test_client()
    finally:
        if hasattr(dbmod.db.obj, "close_all"):
            dbmod.db.obj.close_all()
        elif not dbmod.db.is_closed():
            dbmod.db.close()


def test_ready_with_database_and_redis(database_url, redis_url, make_config):
    with probe_client(make_config(database_url, redis_url=redis_url)) as client:
        assert client.get("/healthz").json == {"status": "ok"}
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_embedded_default_checks_the_database_only(database_url, make_config):
    with probe_client(make_config(database_url)) as client:
        r = client.get("/readyz")
        assert (r.status_code, r.json["checks"]) == (200, {"database": "ok"})


def test_not_ready_when_redis_is_unreachable(database_url, make_config):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with probe_client(make_config(database_url, redis_url=closed)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json["status"] == "unavailable"
        assert r.json["checks"]["database"] == "ok"
        assert r.json["checks"]["redis"].startswith("error: ")
        assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_not_ready_when_the_database_is_unreachable(make_config):
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    with probe_client(make_config(closed)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json["checks"]["database"].startswith("error: ")
        assert client.get("/healthz").status_code == 200
