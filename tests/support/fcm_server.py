"""Local FCM HTTP v1 compatible server for tests and benchmarks.

Point the real firebase-admin SDK at it (nothing reaches Google)::

    with FcmTestServer() as srv:
        app = srv.app(name="t1")              # == firebase_app(srv.project_id, endpoint=srv.url, name="t1")
        messaging.send_each([...], app=app)
        srv.accepted()

Endpoints
  POST /v1/projects/{p}/messages:send   {"message": {...}, "validate_only"?: bool}
                                        -> 200 {"name": "projects/{p}/messages/<id>"} or an FCM error
  POST /token                           fake OAuth2 token (for service-account files whose
                                        token_uri points here)
  POST|DELETE /v1/projects/{p}/registrations/{tok}/topicSubscriptions...  -> 200 {}
  GET  /_control/accepted | stats | unregistered | config
  POST /_control/reset {"config"?: bool}   POST /_control/config {<see configure()>}

Error decision per send request, first match wins:
  1. ``set_token_error(token, code, times=None)``   (fixed, optionally only the next N requests)
  2. token prefix (``error_prefixes``, default ``unregistered-``, ``invalid-``, ``quota-``,
     ``unavailable-``, ``internal-``)
  3. sticky UNREGISTERED: sha256(seed:token) < ``unregistered`` rate  (reproducible)
  4. transient 503 / 429 / 500 drawn from a seeded RNG per request (``unavailable``,
     ``quota``, ``internal`` rates); 429 carries ``Retry-After: retry_after``.
Only 200 answers are recorded, so the SDK's own 500/503 retries don't double count.
``validate_only`` (dry-run) requests that pass are counted but not recorded as accepted.
"token" below means the message's ``token`` or ``fid`` (firebase-admin 7.7 deprecates
``Message.token`` in favour of ``Message.fid``; both are accepted).
Note: the SDK (urllib3 Retry) itself retries 500/503 up to 4 times with backoff 0, 1, 2, 4 s,
and also retries a 429 that carries Retry-After, sleeping Retry-After seconds each time.

CLI:  python -m tests.support.fcm_server --port 9099 --unavailable-rate 0.2 ...
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import firebase_admin

from notifications.fcm_endpoint import firebase_app

__all__ = ["FcmTestServer", "ERRORS", "DEFAULT_ERROR_PREFIXES", "fcm_error_body",
           "point_firebase_app_at", "main"]

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# FCM errorCode -> (HTTP status, google.rpc status, message)
ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT",
                         "The registration token is not a valid FCM registration token"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED",
                       "Quota exceeded for quota metric 'Send requests'."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
}
DEFAULT_ERROR_PREFIXES = {
    "unregistered-": "UNREGISTERED", "invalid-": "INVALID_ARGUMENT", "quota-": "QUOTA_EXCEEDED",
    "unavailable-": "UNAVAILABLE", "internal-": "INTERNAL",
}
_RATES = ("unavailable", "quota", "internal", "unregistered")
_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_TOPIC = re.compile(r"^/v1/projects/[^/]+/registrations/[^/]+/topicSubscriptions")


def fcm_error_body(code: str, message: str | None = None) -> tuple[int, dict]:
    """(HTTP status, body) exactly as FCM v1 formats the error ``code``."""
    status, rpc_status, default = ERRORS[code]
    return status, {"error": {"code": status, "message": message or default, "status": rpc_status,
                              "details": [{"@type": FCM_ERROR_TYPE, "errorCode": code}]}}


def point_firebase_app_at(base_url: str, project_id: str,
                          name: str | None = None) -> firebase_admin.App:
    """Anonymous-credential App whose messaging sends to ``base_url``."""
    return firebase_app(project_id, endpoint=base_url, name=name)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK pools connections
    # headers and body go out in two writes: without TCP_NODELAY, Nagle + the client's delayed
    # ACK hold every answer ~40 ms on a kept-alive connection
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def reply(self, status: int, obj, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.owner._handle(self, "GET")  # pylint: disable=protected-access

    def do_POST(self):
        self.server.owner._handle(self, "POST")  # pylint: disable=protected-access

    def do_DELETE(self):
        self.server.owner._handle(self, "DELETE")  # pylint: disable=protected-access


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # send_each opens up to 500 connections at once

    def __init__(self, addr, owner: "FcmTestServer"):
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """A client that died mid-request (a SIGKILLed worker) is not an error worth a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so a stopped server answers nothing."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FcmTestServer:
    """Thread-safe fake FCM v1 server; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, project_id: str = "lienlac-test",
                 *, seed: int = 0, latency_s: float = 0.0, unavailable: float = 0.0,
                 quota: float = 0.0, internal: float = 0.0, unregistered: float = 0.0,
                 retry_after: int = 1, error_prefixes: dict[str, str] | None = None,
                 verbose: bool = False):
        self.host, self.port, self.project_id, self.verbose = host, port, project_id, verbose
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._defaults = dict(seed=seed, latency_s=latency_s, unavailable=unavailable, quota=quota,
                              internal=internal, unregistered=unregistered,
                              retry_after=retry_after,
                              error_prefixes=dict(DEFAULT_ERROR_PREFIXES
                                                  if error_prefixes is None else error_prefixes))
        self._reset_config()
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FcmTestServer":
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self.port), self)
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name=f"fcm-testserver-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> "FcmTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FcmTestServer is not started")
        return f"http://{self.host}:{self.port}"

    def app(self, name: str | None = None) -> firebase_admin.App:
        """A firebase-admin App (anonymous credentials) sending to this server."""
        return point_firebase_app_at(self.url, self.project_id, name=name)

    # ---- configuration ---------------------------------------------------------------------
    def _reset_config(self) -> None:
        with self._lock:
            d = self._defaults
            self.latency_s = d["latency_s"]
            self._seed = d["seed"]
            self._rng = random.Random(self._seed)
            self._rates = {k: float(d[k]) for k in _RATES}
            self._retry_after = d["retry_after"]
            self._prefixes = dict(d["error_prefixes"])
            self._token_errors: dict[str, list] = {}  # token -> [code, remaining|None]

    def set_rates(self, *, unavailable: float | None = None, quota: float | None = None,
                  internal: float | None = None, unregistered: float | None = None,
                  retry_after: int | None = None, seed: int | None = None) -> None:
        """Update the given random rates (None = unchanged). ``unregistered`` is sticky per token."""
        new = {"unavailable": unavailable, "quota": quota, "internal": internal,
               "unregistered": unregistered}
        new = {k: float(v) for k, v in new.items() if v is not None}
        if any(not 0.0 <= v <= 1.0 for v in new.values()):
            raise ValueError(f"rates must be within [0, 1]: {new}")
        with self._lock:
            rates = {**self._rates, **new}
            if rates["unavailable"] + rates["quota"] + rates["internal"] > 1.0:
                raise ValueError("unavailable + quota + internal must be <= 1")
            self._rates = rates
            if retry_after is not None:
                self._retry_after = int(retry_after)
            if seed is not None:
                self._seed, self._rng = seed, random.Random(seed)

    def set_token_error(self, token: str, code: str | None, times: int | None = None) -> None:
        """``token`` answers ``code`` (an ``ERRORS`` key) always, or for its next ``times``
        requests; ``code=None`` clears it."""
        with self._lock:
            if code is None:
                self._token_errors.pop(token, None)
            else:
                self._check_code(code)
                self._token_errors[token] = [code, times]

    def set_error_prefix(self, prefix: str, code: str | None) -> None:
        """Tokens starting with ``prefix`` always answer ``code``; ``code=None`` removes it."""
        with self._lock:
            if code is None:
                self._prefixes.pop(prefix, None)
            else:
                self._check_code(code)
                self._prefixes[prefix] = code

    def configure(self, **cfg) -> dict:
        """Bulk update (also ``POST /_control/config``). Keys: unavailable, quota, internal,
        unregistered, retry_after, seed, latency_s, token_errors {token: code|null},
        error_prefixes {prefix: code|null}."""
        unknown = set(cfg) - {*_RATES, "retry_after", "seed", "latency_s", "token_errors",
                              "error_prefixes"}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        self.set_rates(**{k: cfg[k] for k in (*_RATES, "retry_after", "seed") if k in cfg})
        if "latency_s" in cfg:
            self.latency_s = float(cfg["latency_s"])
        for token, code in (cfg.get("token_errors") or {}).items():
            self.set_token_error(token, code)
        for prefix, code in (cfg.get("error_prefixes") or {}).items():
            self.set_error_prefix(prefix, code)
        return self.config()

    def config(self) -> dict:
        with self._lock:
            return {**self._rates, "retry_after": self._retry_after, "seed": self._seed,
                    "latency_s": self.latency_s, "error_prefixes": dict(self._prefixes),
                    "token_errors": {t: c for t, (c, _) in self._token_errors.items()}}

    @staticmethod
    def _check_code(code: str) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown FCM error code {code!r}; known: {sorted(ERRORS)}")

    # ---- recorded state --------------------------------------------------------------------
    def reset(self, config: bool = False) -> None:
        """Forget accepted messages and counters (and the configuration if ``config``)."""
        if config:
            self._reset_config()
        with self._lock:
            self._accepted: list[dict] = []
            self._unregistered: set[str] = set()
            self._stats = dict.fromkeys(("accepted", "validate_only", *ERRORS), 0)
            self._requests_total = 0
            self._in_flight = self._max_in_flight = 0

    def accepted(self) -> list[dict]:
        """Copies of the accepted records: {name, project, token, message, time}."""
        with self._lock:
            return [dict(r) for r in self._accepted]

    def accepted_tokens(self) -> list[str]:
        with self._lock:
            return [r["token"] for r in self._accepted if r["token"] is not None]

    def count(self) -> int:
        with self._lock:
            return len(self._accepted)

    @property
    def requests_total(self) -> int:
        with self._lock:
            return self._requests_total

    def unregistered_tokens(self) -> set[str]:
        """Tokens that have answered UNREGISTERED at least once."""
        with self._lock:
            return set(self._unregistered)

    def stats(self) -> dict:
        """Counts by outcome: accepted, validate_only, one per error code, requests_total,
        max_in_flight (peak concurrent send requests)."""
        with self._lock:
            return {**self._stats, "requests_total": self._requests_total,
                    "max_in_flight": self._max_in_flight}

    # ---- request handling ------------------------------------------------------------------
    def _sticky_unregistered(self, token: str) -> bool:
        rate = self._rates["unregistered"]
        if rate <= 0.0:
            return False
        digest = hashlib.sha256(f"{self._seed}:{token}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < rate

    def _decide(self, project: str, message: dict, validate_only: bool,
                forced: str | None = None) -> tuple[str | None, str | None, int]:
        """-> (error code or None, message name or None, retry_after). Holds the lock."""
        token = message.get("token") or message.get("fid")  # fid: firebase-admin >= 7.7 name
        token = token if isinstance(token, str) else None
        with self._lock:
            self._requests_total += 1
            code = forced
            if code is None and token is not None:
                fixed = self._token_errors.get(token)
                if fixed is not None:
                    code, remaining = fixed
                    if remaining is not None:
                        if remaining <= 1:
                            del self._token_errors[token]
                        else:
                            fixed[1] = remaining - 1
                if code is None:
                    code = next((c for p, c in self._prefixes.items() if token.startswith(p)),
                                None)
                if code is None and self._sticky_unregistered(token):
                    code = "UNREGISTERED"
            if code is None:
                r, rates = self._rng.random(), self._rates
                if r < rates["unavailable"]:
                    code = "UNAVAILABLE"
                elif r < rates["unavailable"] + rates["quota"]:
                    code = "QUOTA_EXCEEDED"
                elif r < rates["unavailable"] + rates["quota"] + rates["internal"]:
                    code = "INTERNAL"
            if code is not None:
                self._stats[code] += 1
                if code == "UNREGISTERED" and token is not None:
                    self._unregistered.add(token)
                return code, None, self._retry_after
            if validate_only:
                self._stats["validate_only"] += 1
                return None, f"projects/{project}/messages/fake_message_id", 0
            name = f"projects/{project}/messages/0:{time.time_ns()}%{uuid.uuid4().hex[:16]}"
            self._stats["accepted"] += 1
            self._accepted.append({"name": name, "project": project, "token": token,
                                   "message": message, "time": time.time()})
            return None, name, 0

    def _send(self, h: _Handler, project: str, body) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.latency_s > 0:
                time.sleep(self.latency_s)
            ok = isinstance(body, dict) and isinstance(body.get("message"), dict)
            message = body["message"] if ok else {}
            code, name, retry_after = self._decide(
                project, message, ok and bool(body.get("validate_only")),
                forced=None if ok else "INVALID_ARGUMENT")
        finally:
            with self._lock:
                self._in_flight -= 1
        if code is None:
            h.reply(200, {"name": name})
        else:
            status, err = fcm_error_body(code, None if ok else "Request contains an invalid argument.")
            h.reply(status, err, {"Retry-After": retry_after} if status == 429 else None)

    def _handle(self, h: _Handler, method: str) -> None:
        path = urlsplit(h.path).path
        body = h.read_json()
        if method == "POST" and (m := _SEND.match(path)):
            return self._send(h, m.group(1), body)
        if method == "POST" and path == "/token":
            return h.reply(200, {"access_token": "fake", "expires_in": 3600,
                                 "token_type": "Bearer"})
        if method in ("POST", "DELETE") and _TOPIC.match(path):
            return h.reply(200, {})
        if path.startswith("/_control/"):
            return self._control(h, method, path[len("/_control/"):], body)
        h.reply(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                "message": f"no route for {method} {path}"}})

    def _control(self, h: _Handler, method: str, what: str, body) -> None:
        getters = {"accepted": self.accepted, "stats": self.stats, "config": self.config,
                   "unregistered": lambda: sorted(self.unregistered_tokens())}
        if method == "GET" and what in getters:
            return h.reply(200, getters[what]())
        if method == "POST" and what == "reset":
            self.reset(config=bool((body or {}).get("config")))
            return h.reply(200, {"ok": True})
        if method == "POST" and what == "config":
            try:
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                return h.reply(200, self.configure(**body))
            except (TypeError, ValueError) as exc:
                return h.reply(400, {"error": str(exc)})
        h.reply(404, {"error": f"no control route {method} /_control/{what}"})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.support.fcm_server",
                                description="Local FCM HTTP v1 compatible test server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9099)
    p.add_argument("--project-id", default="lienlac-test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every send")
    for rate in _RATES:
        p.add_argument(f"--{rate}-rate", type=float, default=0.0)
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on 429")
    p.add_argument("--token-error", action="append", default=[], metavar="TOKEN=CODE",
                   help=f"fixed error for a token; CODE in {sorted(ERRORS)}")
    p.add_argument("--verbose", action="store_true", help="log every request")
    a = p.parse_args(argv)

    srv = FcmTestServer(a.host, a.port, a.project_id, seed=a.seed, latency_s=a.latency,
                        retry_after=a.retry_after, verbose=a.verbose,
                        **{r: getattr(a, f"{r}_rate") for r in _RATES})
    try:
        for item in a.token_error:
            token, _, code = item.partition("=")
            srv.set_token_error(token, code)
    except ValueError as exc:
        p.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with srv:
        print(srv.url, flush=True)
        print(f"FCM test server for project {srv.project_id!r}; set FCM_ENDPOINT={srv.url}; "
              f"control API at {srv.url}/_control/(accepted|stats|config|reset)",
              file=sys.stderr, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
