"""The lean FCM client (notifications/fcm_http.py) and the message templates (messages.MessageBodies):
real sockets (a scripted asyncio server here, the local FCM server in its own process), no mocks."""
from __future__ import annotations

import asyncio
import json

import pytest

from firebase_admin import exceptions as fb_exc
from firebase_admin import messaging

from notifications import push
from notifications.fcm_http import Answer, FcmConnectionError, FcmHttpClient, FcmTimeout
from notifications.ratelimit import TokenBucket
from tests.support.fcm_server import FcmServerProcess


# --- a scripted server: every request's answer decided by the test ---------------------------------
async def _scripted(script, ssl=None):
    """An HTTP/1.1 server answering the n-th request (counted over all connections) with
    ``script(n)``: bytes to write, ``"drop"`` (close without a byte), ``"hang"`` (say nothing),
    or (bytes, "drop") (write, then close). -> (server, port, seen list)."""
    seen = []

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buf = transport, b""

        def data_received(self, data):
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                head = self.buf[:end].decode().lower()
                length = int(head.split("content-length:")[1].split("\r\n")[0])
                if len(self.buf) < end + 4 + length:
                    return
                body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
                seen.append(body)
                what = script(len(seen) - 1)
                if what == "drop":
                    self.transport.close()
                    return
                if what == "hang":
                    continue
                if isinstance(what, tuple):
                    self.transport.write(what[0])
                    self.transport.close()
                    return
                self.transport.write(what)

    server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", 0, ssl=ssl)
    return server, server.sockets[0].getsockname()[1], seen


def _ok(body=b'{"name":"m"}', extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + \
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def _run(script, bodies, *, connections=2, timeout=5.0, rounds=1):
    async def main():
        server, port, seen = await _scripted(script)
        client = FcmHttpClient(f"http://127.0.0.1:{port}/v1/projects/p/messages:send", connections, timeout)
        try:
            results = [await client.post_all(bodies, {"Content-Type": "application/json"}) for _ in range(rounds)]
        finally:
            await client.close()
            server.close()
        return results, seen, client

    return asyncio.run(main())


def test_answers_in_order_over_keep_alive_connections_with_headers_and_bodies():
    def script(n):
        if n % 3 == 0:
            return (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3;x=y\r\n1}\n\r\n0\r\n\r\n")
        return _ok(json.dumps({"n": n}).encode())

    bodies = [json.dumps({"i": i}).encode() for i in range(30)]
    (first, second), seen, client = _run(script, bodies, connections=3, rounds=2)
    assert len(seen) == 60 and sorted(json.loads(b)["i"] for b in seen) == sorted(list(range(30)) * 2)
    assert client.connects == 3  # kept alive across both batches
    for answers in (first, second):
        assert all(isinstance(a, Answer) for a in answers)
        statuses = [a.status for a in answers]
        assert statuses.count(429) == 10 and statuses.count(200) == 20
        limited = next(a for a in answers if a.status == 429)
        assert limited.body == b'{"a":1}\n' and limited.header("retry-after") == "7"
        assert ("Content-Type", "application/json") in limited.headers


def test_a_dropped_keep_alive_connection_is_retried_once_on_a_fresh_one():
    dropped = set()

    def script(n):
        if n in (2, 5) and n not in dropped:
            dropped.add(n)
            return "drop"
        return _ok()

    (answers,), seen, client = _run(script, [b"{}"] * 8, connections=1)
    assert [a.status for a in answers] == [200] * 8
    assert len(seen) == 10 and client.connects == 3


def test_a_request_dropped_twice_fails_and_a_half_answer_is_not_resent():
    (answers,), seen, _ = _run(lambda n: "drop", [b"{}"], connections=1)
    assert isinstance(answers[0], FcmConnectionError) and len(seen) == 2
    half = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"
    (answers,), seen, _ = _run(lambda n: (half, "drop"), [b"{}"], connections=1)
    assert isinstance(answers[0], FcmConnectionError) and len(seen) == 1


def test_connection_close_answers_and_bodies_until_the_end_of_the_connection():
    def script(n):
        if n % 2:
            return (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n{\"error\":1}", "drop")
        return _ok(extra=b"Connection: close\r\n")

    (answers,), seen, client = _run(script, [b"{}"] * 6, connections=2)
    assert [a.status for a in answers].count(200) == 3 and [a.status for a in answers].count(503) == 3
    assert all(a.body == b'{"error":1}' for a in answers if a.status == 503)
    assert len(seen) == 6 and client.connects == 6


def test_timeouts_and_a_server_that_is_not_there():
    import time

    started = time.monotonic()
    (answers,), seen, _ = _run(lambda n: "hang" if n == 1 else _ok(), [b"{}"] * 4, connections=1, timeout=0.6)
    assert time.monotonic() - started < 3
    assert isinstance(answers[1], FcmTimeout) and all(isinstance(a, FcmTimeout) for a in answers[1:])
    assert answers[0].status == 200 and len(seen) == 2

    async def nobody():
        client = FcmHttpClient("http://127.0.0.1:9/v1/projects/p/messages:send", 4, 2.0)
        return await client.post_all([b"{}"] * 10, {})

    assert all(isinstance(a, FcmConnectionError) for a in asyncio.run(nobody()))


def test_tls_keep_alive(tmp_path):
    """https:// goes through asyncio's ssl with the certificate checked (here a self-signed one for
    127.0.0.1 made by openssl), over keep-alive connections like plain HTTP."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)

    async def main(trust):
        server, port, seen = await _scripted(lambda n: _ok(), ssl=server_ctx)
        client = FcmHttpClient(f"https://127.0.0.1:{port}/v1/projects/p/messages:send", 2, 5.0,
                               ssl_context=ssl.create_default_context(cafile=str(cert)) if trust else None)
        try:
            return [await client.post_all([b"{}"] * 5, {}) for _ in range(2)], seen, client.connects
        finally:
            await client.close()
            server.close()

    (first, second), seen, connects = asyncio.run(main(trust=True))
    assert [a.status for a in first + second] == [200] * 10 and len(seen) == 10 and connects == 2
    (first, _), seen, _ = asyncio.run(main(trust=False))  # the system's CAs do not know this certificate
    assert all(isinstance(a, FcmConnectionError) for a in first) and not seen


def test_https_request_bytes():
    client = FcmHttpClient("https://fcm.googleapis.com/v1/projects/p/messages:send")
    assert client.port == 443 and client.ssl is not None
    assert client.prefix({"Authorization": "Bearer x"}) == (
        b"POST /v1/projects/p/messages:send HTTP/1.1\r\nHost: fcm.googleapis.com\r\n"
        b"Authorization: Bearer x\r\nContent-Length: ")


# --- the sender against the local FCM server in its own process: firebase-admin's error mapping ----
def test_sender_decodes_fcm_errors_like_firebase_admin():
    with FcmServerProcess(retry_after=7) as server:
        server.configure(token_errors={"tok-gone": "UNREGISTERED", "tok-quota": "QUOTA_EXCEEDED",
                                       "tok-down": "UNAVAILABLE"})
        sender = push.Sender(app=server.app(name="fcm-http-test"), bucket=TokenBucket(1e9), description="test",
                             url=f"{server.url}/v1/projects/{server.project_id}/messages:send")
        tokens = ["tok-ok", "tok-gone", "tok-quota", "tok-down"]
        results = sender.send_each([_message(t) for t in tokens])
        assert results[0] is None
        assert isinstance(results[1], messaging.UnregisteredError)
        assert isinstance(results[2], messaging.QuotaExceededError)
        assert push.classify(results[2]) == (push.RETRY, "QUOTA_EXCEEDED", 7.0)
        assert isinstance(results[3], fb_exc.UnavailableError)
        assert push.classify(results[1])[0] == push.GONE
        assert server.token_counts() == {"tok-ok": 1}


def _message(token):
    message = messaging.Message(notification=messaging.Notification(title="t", body="b"), data={"k": "v"})
    message.token = token
    return message
