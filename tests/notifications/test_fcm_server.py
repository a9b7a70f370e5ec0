"""The local FCM test server, driven by the REAL firebase-admin SDK (no mocks, no Google)."""
import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import firebase_admin
import pytest
from firebase_admin import exceptions, messaging

from notifications.fcm_endpoint import firebase_app
from tests.support.fcm_server import FcmServerProcess, FcmTestServer, measure_ceiling

pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server():
    with FcmTestServer() as srv:
        yield srv


@pytest.fixture
def fcm_app(server):
    a = firebase_app(server.project_id, endpoint=server.url, name=f"fcm-test-{uuid.uuid4().hex}")
    yield a
    firebase_admin.delete_app(a)


def send(app, *tokens, **kw):
    msgs = [messaging.Message(token=t, data={"i": str(i)}, **kw) for i, t in enumerate(tokens)]
    return messaging.send_each(msgs, app=app).responses


def control(server, what, body=None):
    req = urllib.request.Request(f"{server.url}/_control/{what}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_messaging_is_redirected_to_the_server(server, fcm_app):
    svc = messaging._get_messaging_service(fcm_app)  # pylint: disable=protected-access
    assert svc._fcm_url == f"{server.url}/v1/projects/lienlac-test/messages:send"
    assert not any("googleapis.com" in v for v in vars(svc).values() if isinstance(v, str))


def test_bad_endpoint_is_rejected_and_app_not_left_behind():
    with pytest.raises(ValueError):
        firebase_app("p", endpoint="fcm.local:9099", name="bad-endpoint")
    assert "bad-endpoint" not in [a.name for a in firebase_admin._apps.values()]


def test_normal_tokens_are_accepted_and_recorded(server, fcm_app):
    note = messaging.Notification(title="Bé Na", body="Điểm danh: có mặt")
    responses = send(fcm_app, "tok-a", "tok-b", notification=note)
    assert all(r.success for r in responses)
    assert all(r.message_id.startswith("projects/lienlac-test/messages/") for r in responses)
    assert len({r.message_id for r in responses}) == 2

    recs = sorted(server.accepted(), key=lambda r: r["token"])
    assert [r["token"] for r in recs] == ["tok-a", "tok-b"]
    assert recs[0]["message"]["data"] == {"i": "0"}
    assert recs[0]["message"]["notification"] == {"title": "Bé Na", "body": "Điểm danh: có mặt"}
    assert {r["name"] for r in recs} == {r.message_id for r in responses}
    assert sorted(server.accepted_tokens()) == ["tok-a", "tok-b"]
    assert server.count() == 2 and server.requests_total == 2

    server.reset()
    assert server.count() == 0 and server.accepted() == [] and server.requests_total == 0


def test_fid_target_and_dry_run(server, fcm_app):
    assert messaging.send(messaging.Message(fid="fid-1"), app=fcm_app)
    assert server.accepted_tokens() == ["fid-1"]
    resp = messaging.send_each([messaging.Message(token="tok-dry")], dry_run=True, app=fcm_app)
    assert resp.success_count == 1
    assert server.count() == 1 and server.stats()["validate_only"] == 1


def test_unregistered_prefix(server, fcm_app):
    (r,) = send(fcm_app, "unregistered-abc")
    assert isinstance(r.exception, messaging.UnregisteredError)
    assert r.exception.http_response.status_code == 404
    assert server.unregistered_tokens() == {"unregistered-abc"}
    assert server.count() == 0


def test_invalid_prefix(server, fcm_app):
    (r,) = send(fcm_app, "invalid-abc")
    assert isinstance(r.exception, exceptions.InvalidArgumentError)
    assert r.exception.http_response.status_code == 400
    assert server.count() == 0 and server.stats()["INVALID_ARGUMENT"] == 1


def test_quota_exceeded_with_retry_after(server, fcm_app):
    # The SDK (urllib3) itself retries a 429 carrying Retry-After 4 times, sleeping Retry-After
    # seconds each time (Retry-After: 0 falls back to its 0/1/2/4 s backoff) -> ~4 s here.
    server.set_rates(retry_after=1)
    server.set_token_error("tok-quota", "QUOTA_EXCEEDED")
    ok, quota = send(fcm_app, "tok-ok", "tok-quota")
    assert ok.success
    assert isinstance(quota.exception, messaging.QuotaExceededError)
    assert quota.exception.http_response.status_code == 429
    assert quota.exception.http_response.headers["Retry-After"] == "1"
    assert server.accepted_tokens() == ["tok-ok"]
    assert server.stats()["QUOTA_EXCEEDED"] >= 1


@pytest.mark.parametrize("code", ["UNAVAILABLE", "INTERNAL"])
def test_transient_error_then_success_counts_once(server, fcm_app, code):
    server.set_token_error("tok-flaky", code, times=1)
    (r,) = send(fcm_app, "tok-flaky")
    assert r.success  # the SDK retried by itself
    stats = server.stats()
    assert stats[code] == 1 and stats["accepted"] == 1 and stats["requests_total"] == 2
    assert server.accepted_tokens() == ["tok-flaky"]


def test_repeated_unavailable_is_retried_by_the_sdk(server, fcm_app):
    server.set_token_error("tok-down", "UNAVAILABLE", times=2)  # SDK backoff: 0 s, then 1 s
    server.set_token_error("tok-down-2", "UNAVAILABLE", times=1)
    r1, r2 = send(fcm_app, "tok-down", "tok-down-2")
    assert r1.success and r2.success
    assert server.stats()["UNAVAILABLE"] == 3 and server.count() == 2


def test_batch_of_500_all_recorded(server, fcm_app):
    tokens = [f"tok-{i:03d}" for i in range(500)]
    resp = messaging.send_each([messaging.Message(token=t) for t in tokens], app=fcm_app)
    assert resp.success_count == 500
    assert sorted(server.accepted_tokens()) == tokens
    assert server.count() == 500 and server.requests_total == 500


def test_random_rates_sticky_unregistered_and_exact_accounting(server, fcm_app):
    # retry_after=0: a single 429 is retried by the SDK at once (longer 429 chains back off)
    server.set_rates(unregistered=0.2, quota=0.05, retry_after=0, seed=7)
    tokens = [f"dev-{i}" for i in range(200)]
    first = send(fcm_app, *tokens)
    unreg = {t for t, r in zip(tokens, first) if isinstance(r.exception, messaging.UnregisteredError)}
    assert 10 < len(unreg) < 80
    assert unreg == server.unregistered_tokens()
    assert server.count() == sum(r.success for r in first)
    assert server.stats()["QUOTA_EXCEEDED"] > 0

    server.set_rates(quota=0.0)
    second = send(fcm_app, *tokens)  # sticky: the very same tokens are unregistered again
    assert {t for t, r in zip(tokens, second) if not r.success} == unreg
    with FcmTestServer(unregistered=0.2, seed=7) as other:  # reproducible from the seed
        other_app = other.app(name=f"fcm-test-{uuid.uuid4().hex}")
        try:
            send(other_app, *tokens)
        finally:
            firebase_admin.delete_app(other_app)
        assert other.unregistered_tokens() == unreg


def test_async_send_each(server, fcm_app):
    async def go():
        try:
            return await messaging.send_each_async(
                [messaging.Message(token="tok-async"), messaging.Message(token="unregistered-x")],
                dry_run=False, app=fcm_app)
        finally:
            # firebase-admin 7.7 closes the httpx client in delete_app() with a fresh
            # asyncio.run(), which fails on connections of this (by then closed) loop.
            await messaging._get_messaging_service(fcm_app)._async_client.aclose()  # pylint: disable=protected-access

    resp = asyncio.run(go())
    assert resp.success_count == 1
    assert isinstance(resp.responses[1].exception, messaging.UnregisteredError)
    assert server.accepted_tokens() == ["tok-async"]


def test_control_api(server, fcm_app):
    cfg = control(server, "config", {"token_errors": {"tok-x": "UNREGISTERED"}, "latency_s": 0.01})
    assert cfg["token_errors"] == {"tok-x": "UNREGISTERED"} and cfg["latency_s"] == 0.01
    send(fcm_app, "tok-x", "tok-y")
    assert [r["token"] for r in control(server, "accepted")] == ["tok-y"]
    stats = control(server, "stats")
    assert stats["accepted"] == 1 and stats["UNREGISTERED"] == 1 and stats["requests_total"] == 2
    assert control(server, "unregistered") == ["tok-x"]
    assert control(server, "reset", {"config": True}) == {"ok": True}
    assert control(server, "stats")["requests_total"] == 0
    assert control(server, "config")["token_errors"] == {}
    with pytest.raises(urllib.error.HTTPError) as err:
        control(server, "config", {"token_errors": {"t": "NOPE"}})
    assert err.value.code == 400


def test_token_endpoint(server):
    req = urllib.request.Request(f"{server.url}/token", data=b"grant_type=x", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["access_token"] == "fake"


def test_command_line():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fcm_server", "--port", "0",
         "--token-error", "tok-cli=INVALID_ARGUMENT"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_control/config", timeout=5) as resp:
            assert json.loads(resp.read())["token_errors"] == {"tok-cli": "INVALID_ARGUMENT"}
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_record_tokens_keeps_counts_and_times_only():
    with FcmTestServer(record="tokens") as srv:
        a = srv.app(name=f"fcm-test-{uuid.uuid4().hex}")
        try:
            send(a, "tok-1", "tok-2", "tok-1", "unregistered-3")
        finally:
            firebase_admin.delete_app(a)
        assert srv.token_counts() == {"tok-1": 2, "tok-2": 1}
        assert sorted(srv.accepted_tokens()) == ["tok-1", "tok-1", "tok-2"] and srv.count() == 3
        summary = srv.summary()
        assert summary["accepted"] == 3 and summary["distinct"] == 2 and summary["max_per_token"] == 2
        assert summary["requests_total"] == 4 and summary["first_at"] <= summary["last_at"]
        assert all("message" not in r for r in srv.accepted())
    with pytest.raises(ValueError):
        FcmTestServer(record="everything")


def test_server_process_has_the_same_api_and_a_measured_ceiling():
    with FcmServerProcess(record="tokens", retry_after=0) as srv:
        a = srv.app(name=f"fcm-test-{uuid.uuid4().hex}")
        try:
            srv.set_token_error("tok-gone", "UNREGISTERED")
            ok, gone = send(a, "tok-ok", "tok-gone")
            assert ok.success and isinstance(gone.exception, messaging.UnregisteredError)
            assert srv.unregistered_tokens() == {"tok-gone"} and srv.token_counts() == {"tok-ok": 1}
            assert srv.summary()["distinct"] == 1 and srv.stats()["UNREGISTERED"] == 1
            srv.set_rates(unregistered=1.0)
            (r,) = send(a, "tok-any")
            assert isinstance(r.exception, messaging.UnregisteredError)
            srv.reset(config=True)
            assert srv.count() == 0 and srv.config()["unregistered"] == 0.0
        finally:
            firebase_admin.delete_app(a)
        ceiling = measure_ceiling(srv, 500, in_flight=16)
        assert ceiling["requests"] == 500 and ceiling["errors"] == 0 and ceiling["requests_per_s"] > 0
        assert ceiling["server_cpu"] is not None and srv.count() == 0  # reset afterwards
