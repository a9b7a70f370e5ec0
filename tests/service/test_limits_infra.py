"""Rate limiting behind a load balancer and with Redis unreachable."""
from tests.support.servers import free_port

from service.app import create_app


def _login(client, phone, addr=None, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    environ = {"REMOTE_ADDR": addr} if addr else {}
    return client.post("/api/v1/auth/login", json={"phone": phone, "password": "wrong"},
                       headers=headers, environ_base=environ)


def test_per_address_limit_uses_forwarded_for_behind_trusted_proxy(database_url, make_config):
    app = create_app(make_config(database_url, trusted_proxies=1, extra={"ip_rate_limit": "3 per minute"}))
    client = app.test_client()
    phones = [f"09123450{i:02d}" for i in range(10)]
    # every request comes from the balancer's address; clients differ by X-Forwarded-For
    for i in range(3):
        assert _login(client, phones[i], addr="10.0.0.1", forwarded="203.0.113.7").status_code == 401
    assert _login(client, phones[3], addr="10.0.0.1", forwarded="203.0.113.7").status_code == 429
    assert _login(client, phones[4], addr="10.0.0.1", forwarded="203.0.113.8").status_code == 401


def test_forwarded_for_is_ignored_without_trusted_proxy(database_url, make_config):
    app = create_app(make_config(database_url, extra={"ip_rate_limit": "3 per minute"}))
    client = app.test_client()
    for i in range(3):
        assert _login(client, f"09123451{i:02d}", forwarded=f"198.51.100.{i}").status_code == 401
    assert _login(client, "0912345199", forwarded="198.51.100.99").status_code == 429


def test_login_fails_closed_when_redis_is_unreachable(database_url, make_config):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_config(database_url, redis_url=dead, login_rate_limit="2 per minute"))
    client = app.test_client()
    codes = [_login(client, "0912345200").status_code for _ in range(3)]
    # sign-in cannot count failures per phone: 503 (never a 500, never a per-process count); the
    # limiter's in-memory fallback still answers 429 before that
    assert codes == [503, 503, 429]
