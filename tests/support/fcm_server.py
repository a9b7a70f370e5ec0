"""Local FCM HTTP v1 compatible server for tests and benchmarks (asyncio + aiohttp).

Point the real firebase-admin SDK (or ``notifications.push``) at it; nothing reaches Google::

    with FcmTestServer() as srv:              # in this process: an event loop in a daemon thread
        app = srv.app(name="t1")              # == firebase_app(srv.project_id, endpoint=srv.url, name="t1")
        messaging.send_each([...], app=app)
        srv.accepted()

    with FcmServerProcess(record="tokens") as srv:   # in a process of its own (no shared GIL):
        ...                                          # the same methods, over the control API
        srv.summary()      # {"accepted", "distinct", "max_per_token", "first_at", "last_at", ...}

    measure_ceiling(srv.url, srv.project_id)  # requests/s of a tight aiohttp client against it

Endpoints
  POST /v1/projects/{p}/messages:send   {"message": {...}, "validate_only"?: bool}
                                        -> 200 {"name": "projects/{p}/messages/<id>"} or an FCM error
  POST /token                           fake OAuth2 token (for service-account files whose
                                        token_uri points here)
  POST|DELETE /v1/projects/{p}/registrations/{tok}/topicSubscriptions...  -> 200 {}
  GET  /_control/accepted | stats | unregistered | config | summary | tokens
  POST /_control/reset {"config"?: bool}   POST /_control/config {<see configure()>}

Error decision per send request, first match wins:
  1. ``set_token_error(token, code, times=None)``   (fixed, optionally only the next N requests)
  2. token prefix (``error_prefixes``, default ``unregistered-``, ``invalid-``, ``quota-``,
     ``unavailable-``, ``internal-``)
  3. sticky UNREGISTERED: sha256(seed:token) < ``unregistered`` rate  (reproducible)
  4. transient 503 / 429 / 500 drawn from a seeded RNG per request (``unavailable``,
     ``quota``, ``internal`` rates); 429 carries ``Retry-After: retry_after``.
Errors are FCM's: Google's error JSON (``{"error": {"code", "message", "status", "details":
[{"@type": ".../google.firebase.fcm.v1.FcmError", "errorCode"}]}}``), which firebase-admin
decodes into ``UnregisteredError``, ``QuotaExceededError``, ...
Only 200 answers are recorded, so the SDK's own 500/503 retries don't double count.
``validate_only`` (dry-run) requests that pass are counted but not recorded as accepted.
"token" below means the message's ``token`` or ``fid`` (firebase-admin 7.7 deprecates
``Message.token`` in favour of ``Message.fid``; both are accepted).
Recording: ``record="messages"`` (the default, for tests) keeps every accepted message;
``record="tokens"`` (benchmarks) keeps a count per token and the first / last accepted times only.
Note: the SDK (urllib3 Retry) itself retries 500/503 up to 4 times with backoff 0, 1, 2, 4 s,
and also retries a 429 that carries Retry-After, sleeping Retry-After seconds each time.

CLI:  python -m tests.support.fcm_server --port 9099 --unavailable-rate 0.2 ...
      python -m tests.support.fcm_server --ceiling 20000    # start one, measure it, print requests/s
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import firebase_admin
from aiohttp import web

from notifications.fcm_endpoint import firebase_app

__all__ = ["FcmTestServer", "FcmServerProcess", "ERRORS", "DEFAULT_ERROR_PREFIXES", "fcm_error_body",
           "point_firebase_app_at", "measure_ceiling", "main"]

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
ROOT = Path(__file__).resolve().parents[2]

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
RECORD_MODES = ("messages", "tokens")
_RATES = ("unavailable", "quota", "internal", "unregistered")
_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_TOPIC = re.compile(r"^/v1/projects/[^/]+/registrations/[^/]+/topicSubscriptions")
_JSON = {"Content-Type": "application/json; charset=UTF-8"}


def fcm_error_body(code: str, message: str | None = None) -> tuple[int, dict]:
    """(HTTP status, body) exactly as FCM v1 formats the error ``code``."""
    status, rpc_status, default = ERRORS[code]
    return status, {"error": {"code": status, "message": message or default, "status": rpc_status,
                              "details": [{"@type": FCM_ERROR_TYPE, "errorCode": code}]}}


def point_firebase_app_at(base_url: str, project_id: str,
                          name: str | None = None) -> firebase_admin.App:
    """Anonymous-credential App whose messaging sends to ``base_url``."""
    return firebase_app(project_id, endpoint=base_url, name=name)


def _reply(status: int, obj, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(),
                        headers={**_JSON, **headers} if headers else _JSON)


class FcmTestServer:
    """Fake FCM v1 server on an asyncio event loop in a daemon thread of this process; its
    configuration and records are thread-safe. See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, project_id: str = "lienlac-test",
                 *, seed: int = 0, latency_s: float = 0.0, unavailable: float = 0.0,
                 quota: float = 0.0, internal: float = 0.0, unregistered: float = 0.0,
                 retry_after: int = 1, error_prefixes: dict[str, str] | None = None,
                 record: str = "messages", verbose: bool = False):
        if record not in RECORD_MODES:
            raise ValueError(f"record must be one of {RECORD_MODES}, got {record!r}")
        self.host, self.port, self.project_id, self.verbose = host, port, project_id, verbose
        self.record = record
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = self._listener = None
        self._ids = itertools.count(1)
        self._defaults = dict(seed=seed, latency_s=latency_s, unavailable=unavailable, quota=quota,
                              internal=internal, unregistered=unregistered,
                              retry_after=retry_after,
                              error_prefixes=dict(DEFAULT_ERROR_PREFIXES
                                                  if error_prefixes is None else error_prefixes))
        self._reset_config()
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FcmTestServer":
        if self._loop is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name=f"fcm-testserver-{self.port}",
                                            daemon=True)
            self._thread.start()
            self._loop = loop
            asyncio.run_coroutine_threadsafe(self._serve(sock), loop).result(10)
        return self

    async def _serve(self, sock: socket.socket) -> None:
        # aiohttp's low-level server (no router, no middlewares, no access log): one handler
        self._server = web.Server(self._on_request, access_log=None)
        self._listener = await asyncio.get_running_loop().create_server(self._server, sock=sock, backlog=2048)

    async def _shutdown(self) -> None:
        self._listener.close()
        await self._server.shutdown(0.5)  # drops idle keep-alive connections too
        await self._listener.wait_closed()

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                self._thread.join(timeout=5)
                loop.close()

    def serve_until(self, stop: threading.Event) -> None:
        """Start, print the URL, wait for ``stop`` (the command line's main)."""
        with self:
            print(self.url, flush=True)
            print(f"FCM test server for project {self.project_id!r}; set FCM_ENDPOINT={self.url}; "
                  f"control API at {self.url}/_control/(accepted|stats|summary|config|reset)",
                  file=sys.stderr, flush=True)
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass

    def __enter__(self) -> "FcmTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._loop is None:
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
            self._accepted: list[dict] = []  # record="messages"
            self._per_token: dict[str | None, int] = {}  # both modes: accepted sends per token
            self._accepted_count = 0
            self._first_at = self._last_at = None
            self._unregistered: set[str] = set()
            self._stats = dict.fromkeys(("accepted", "validate_only", *ERRORS), 0)
            self._requests_total = 0
            self._in_flight = self._max_in_flight = 0

    def accepted(self) -> list[dict]:
        """Copies of the accepted records: {name, project, token, message, time} (with
        ``record="tokens"``: {token, time of the last accepted send}, once per accepted send)."""
        with self._lock:
            if self.record == "messages":
                return [dict(r) for r in self._accepted]
            return [{"token": t, "time": self._last_at} for t, n in self._per_token.items() for _ in range(n)]

    def accepted_tokens(self) -> list[str]:
        with self._lock:
            if self.record == "messages":
                return [r["token"] for r in self._accepted if r["token"] is not None]
            return [t for t, n in self._per_token.items() if t is not None for _ in range(n)]

    def token_counts(self) -> dict[str, int]:
        """Accepted sends per token (distinct devices = its length)."""
        with self._lock:
            return {t: n for t, n in self._per_token.items() if t is not None}

    def count(self) -> int:
        with self._lock:
            return self._accepted_count

    def summary(self) -> dict:
        """Cheap to ask often: accepted sends, distinct tokens, the most sends of one token, the
        first and last accepted times (``time.time()``), requests in all."""
        with self._lock:
            return {"accepted": self._accepted_count, "distinct": len(self._per_token),
                    "max_per_token": max(self._per_token.values(), default=0),
                    "first_at": self._first_at, "last_at": self._last_at,
                    "requests_total": self._requests_total}

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
                fixed = self._token_errors.get(token) if self._token_errors else None
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
            rates = self._rates
            if code is None and (rates["unavailable"] or rates["quota"] or rates["internal"]):
                r = self._rng.random()
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
            now = time.time()
            name = f"projects/{project}/messages/0:{time.time_ns()}%{next(self._ids):016x}"
            self._stats["accepted"] += 1
            self._accepted_count += 1
            self._per_token[token] = self._per_token.get(token, 0) + 1
            if self._first_at is None:
                self._first_at = now
            self._last_at = now
            if self.record == "messages":
                self._accepted.append({"name": name, "project": project, "token": token,
                                       "message": message, "time": now})
            return None, name, 0

    async def _send(self, project: str, body) -> web.Response:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
            ok = isinstance(body, dict) and isinstance(body.get("message"), dict)
            message = body["message"] if ok else {}
            code, name, retry_after = self._decide(
                project, message, ok and bool(body.get("validate_only")),
                forced=None if ok else "INVALID_ARGUMENT")
        finally:
            with self._lock:
                self._in_flight -= 1
        if code is None:
            return _reply(200, {"name": name})
        status, err = fcm_error_body(code, None if ok else "Request contains an invalid argument.")
        return _reply(status, err, {"Retry-After": str(retry_after)} if status == 429 else None)

    async def _on_request(self, request: web.BaseRequest) -> web.Response:
        method, path = request.method, request.path
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if self.verbose:
            print(f"fcm-testserver: {method} {path}", file=sys.stderr, flush=True)
        if method == "POST" and (m := _SEND.match(path)):
            return await self._send(m.group(1), body)
        if method == "POST" and path == "/token":
            return _reply(200, {"access_token": "fake", "expires_in": 3600, "token_type": "Bearer"})
        if method in ("POST", "DELETE") and _TOPIC.match(path):
            return _reply(200, {})
        if path.startswith("/_control/"):
            return self._control(method, path[len("/_control/"):], body)
        return _reply(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                      "message": f"no route for {method} {path}"}})

    def _control(self, method: str, what: str, body) -> web.Response:
        getters = {"accepted": self.accepted, "stats": self.stats, "config": self.config,
                   "summary": self.summary, "tokens": self.token_counts,
                   "unregistered": lambda: sorted(self.unregistered_tokens())}
        if method == "GET" and what in getters:
            return _reply(200, getters[what]())
        if method == "POST" and what == "reset":
            self.reset(config=bool((body or {}).get("config")))
            return _reply(200, {"ok": True})
        if method == "POST" and what == "config":
            try:
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                return _reply(200, self.configure(**body))
            except (TypeError, ValueError) as exc:
                return _reply(400, {"error": str(exc)})
        return _reply(404, {"error": f"no control route {method} /_control/{what}"})


class FcmServerProcess:
    """``FcmTestServer`` in a process of its own (``python -m tests.support.fcm_server``), so it
    shares no interpreter lock with the code under test or the benchmark; the same methods,
    through the control API. ``summary()`` is the cheap one to poll."""

    def __init__(self, project_id: str = "lienlac-test", *, record: str = "messages", seed: int = 0,
                 latency_s: float = 0.0, retry_after: int = 1, host: str = "127.0.0.1", **rates: float):
        if record not in RECORD_MODES or set(rates) - set(_RATES):
            raise ValueError(f"record in {RECORD_MODES}, rates in {_RATES}")
        self.project_id, self.record, self.host = project_id, record, host
        self._args = [sys.executable, "-m", "tests.support.fcm_server", "--host", host, "--port", "0",
                      "--project-id", project_id, "--record", record, "--seed", str(seed),
                      "--latency", str(latency_s), "--retry-after", str(retry_after),
                      *[a for r, v in rates.items() for a in (f"--{r}-rate", str(v))]]
        self.proc: subprocess.Popen | None = None
        self._url: str | None = None

    def start(self) -> "FcmServerProcess":
        if self.proc is None:
            self.proc = subprocess.Popen(self._args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, start_new_session=True)
            url = self.proc.stdout.readline().strip()
            if not url.startswith("http://"):
                self.stop()
                raise RuntimeError(f"the FCM server process did not start (printed {url!r})")
            self._url = url
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            proc.stdout.close()

    def __enter__(self) -> "FcmServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        if self._url is None or self.proc is None:
            raise RuntimeError("FcmServerProcess is not started")
        return self._url

    def app(self, name: str | None = None) -> firebase_admin.App:
        return point_firebase_app_at(self.url, self.project_id, name=name)

    def _call(self, what: str, body: dict | None = None):
        request = urllib.request.Request(f"{self.url}/_control/{what}", method="GET" if body is None else "POST",
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset(self, config: bool = False) -> None:
        self._call("reset", {"config": config})

    def configure(self, **cfg) -> dict:
        return self._call("config", cfg)

    def set_rates(self, **rates) -> None:
        self.configure(**{k: v for k, v in rates.items() if v is not None})

    def set_token_error(self, token: str, code: str | None, times: int | None = None) -> None:
        if times is not None:
            raise NotImplementedError("times= is only for an in-process FcmTestServer")
        self.configure(token_errors={token: code})

    def config(self) -> dict:
        return self._call("config")

    def summary(self) -> dict:
        return self._call("summary")

    def count(self) -> int:
        return self.summary()["accepted"]

    def stats(self) -> dict:
        return self._call("stats")

    @property
    def requests_total(self) -> int:
        return self.summary()["requests_total"]

    def accepted(self) -> list[dict]:
        return self._call("accepted")

    def accepted_tokens(self) -> list[str]:
        return [r["token"] for r in self.accepted() if r.get("token") is not None]

    def token_counts(self) -> dict[str, int]:
        return self._call("tokens")

    def unregistered_tokens(self) -> set[str]:
        return set(self._call("unregistered"))


# ---- the server's own ceiling ------------------------------------------------------------------
SAMPLE_MESSAGE = {  # the shape notifications.messages.build_message sends (an announcement), ~1 KB
    "notification": {"title": "Thông báo nghỉ học", "body": "Trường nghỉ học ngày mai do bão."},
    "data": {"type": "announcement", "id": "1", "students": '[{"id":"1","name":"Học sinh 1"}]',
             "notification_id": "1", "category": "announcement"},
    "android": {"priority": "high", "collapse_key": "announcement-1",
                "notification": {"channel_id": "default", "tag": "announcement-1", "notification_count": 1,
                                 "sound": "default", "default_sound": True, "notification_priority": "PRIORITY_HIGH"}},
    "apns": {"headers": {"apns-priority": "10", "apns-push-type": "alert", "apns-collapse-id": "announcement-1"},
             "payload": {"aps": {"badge": 1, "sound": "default", "thread-id": "announcement",
                                 "interruption-level": "active"}}},
}


class _Conn(asyncio.Protocol):
    """One keep-alive connection of the tight client: a request, its whole answer, the next."""

    def __init__(self, head: bytes, todo, done: asyncio.Future, tally: list):
        self.head, self.todo, self.done, self.tally, self.buf = head, todo, done, tally, b""

    def connection_made(self, transport):
        self.transport = transport

    def _next(self):
        body = next(self.todo, None)
        if body is None:
            self.transport.close()
            return
        self.transport.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            i = head.lower().find(b"content-length:")
            length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            self.tally[0 if head[9:12] == b"200" else 1] += 1
            self.buf = self.buf[end + 4 + length:]
            self._next()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


async def _fire(url: str, bodies: list[bytes], in_flight: int, ready=None) -> tuple[int, int, float, float]:
    """POST every body over ``in_flight`` keep-alive connections, one request at a time on each
    (no pipelining), with a minimal HTTP/1.1 client (asyncio protocol: far cheaper per request
    than any full client, so the server is what is measured); ``ready`` (a blocking callable) is
    called in a thread once connected, the clock starts when it returns;
    -> (answered 200, other answers, start, end) in ``time.time()``."""
    parts = urllib.parse.urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json; charset=UTF-8\r\nContent-Length: ").encode()
    loop = asyncio.get_running_loop()
    todo, tally = iter(bodies), [0, 0]
    conns, done = [], []
    for _ in range(min(in_flight, len(bodies))):  # connected first, not timed
        future = loop.create_future()
        conns.append((await loop.create_connection(lambda f=future: _Conn(head, todo, f, tally),
                                                   parts.hostname, parts.port))[1])
        done.append(future)
    if ready is not None:
        await loop.run_in_executor(None, ready)
    start = time.time()
    for conn in conns:
        conn._next()  # pylint: disable=protected-access
    await asyncio.gather(*done)
    return tally[0], tally[1], start, time.time()


def _client(url: str, first: int, count: int, in_flight: int, message_file: str | None) -> None:
    """One client process of ``measure_ceiling`` (``--client``): builds its bodies, connects,
    prints ``ready``, waits for a line on stdin, sends, prints its figures as JSON."""
    base = json.loads(Path(message_file).read_text()) if message_file else SAMPLE_MESSAGE
    bodies = [json.dumps({"message": {**base, "token": f"ceiling-{first + i:08d}"}},
                         separators=(",", ":")).encode() for i in range(count)]

    def ready():
        print("ready", flush=True)
        sys.stdin.readline()

    cpu = time.process_time()
    ok, bad, start, end = asyncio.run(_fire(url, bodies, in_flight, ready))
    print(json.dumps([ok, bad, start, end, time.process_time() - cpu]), flush=True)


def measure_ceiling(server, n: int = 20_000, *, in_flight: int = 256, procs: int = 1,
                    message: dict | None = None, reset: bool = True) -> dict:
    """Requests/s ``server`` (an ``FcmTestServer`` or ``FcmServerProcess``) answers to a tight
    client (``procs`` processes of their own × ``in_flight`` keep-alive connections, one request
    at a time on each) sending ``n`` messages like ``message`` to ``n`` different tokens. Returns
    {requests_per_s, requests, errors, seconds, procs, in_flight, server_cpu (cores the server
    process used meanwhile, when known), client_cpu (cores the clients used), per_server_cpu_s
    (requests per CPU second of the server), load (the machine's load average after)}: when
    neither the server nor the client used a whole core, the machine's other load held them back.
    Resets the server's records afterwards when ``reset``."""
    import tempfile

    url = f"{server.url}/v1/projects/{server.project_id}/messages:send"
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(message or SAMPLE_MESSAGE, fh)
    clients, first = [], 0
    try:
        for count in per:
            clients.append(subprocess.Popen(
                [sys.executable, "-m", "tests.support.fcm_server", "--client", url, "--first", str(first),
                 "--requests", str(count), "--in-flight", str(in_flight), "--message-file", fh.name],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            first += count
        for client in clients:
            if client.stdout.readline().strip() != "ready":
                raise RuntimeError("a ceiling client did not start")
        cpu = getattr(server, "cpu_seconds", None)
        cpu0 = cpu() if cpu else None
        for client in clients:
            client.stdin.write("go\n")
            client.stdin.flush()
        results = [json.loads(client.stdout.readline()) for client in clients]
        cpu1 = cpu() if cpu else None
    finally:
        for client in clients:
            try:
                client.wait(10)
            except subprocess.TimeoutExpired:
                client.kill()
        os.unlink(fh.name)
    ok, bad = sum(r[0] for r in results), sum(r[1] for r in results)
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    if reset:
        server.reset()
    return {"requests_per_s": ok / seconds if seconds else 0.0, "requests": ok, "errors": bad,
            "seconds": round(seconds, 3), "procs": procs, "in_flight": in_flight,
            "server_cpu": None if cpu0 is None else round((cpu1 - cpu0) / seconds, 2),
            "client_cpu": round(sum(r[4] for r in results) / seconds, 2),
            "per_server_cpu_s": round(ok / (cpu1 - cpu0)) if cpu0 is not None and cpu1 > cpu0 else None,
            "load": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.support.fcm_server",
                                description="Local FCM HTTP v1 compatible test server (asyncio + aiohttp).")
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
    p.add_argument("--record", choices=RECORD_MODES, default="messages",
                   help="keep every accepted message, or only a count per token (cheap)")
    p.add_argument("--ceiling", type=int, default=0, metavar="N",
                   help="instead of serving: start the server in a process of its own, send it N "
                        "messages with a tight aiohttp client and print its requests/s as JSON")
    p.add_argument("--in-flight", type=int, default=256, help="--ceiling: requests in flight per client")
    p.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)  # one client process of measure_ceiling
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--requests", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--message-file", help=argparse.SUPPRESS)
    p.add_argument("--client-procs", type=int, default=1, help="--ceiling: client processes")
    p.add_argument("--verbose", action="store_true", help="log every request")
    a = p.parse_args(argv)

    if a.client:
        _client(a.client, a.first, a.requests, a.in_flight, a.message_file)
        return 0
    if a.ceiling:
        with FcmServerProcess(a.project_id, record="tokens") as srv:
            print(json.dumps(measure_ceiling(srv, a.ceiling, in_flight=a.in_flight, procs=a.client_procs)))
        return 0
    srv = FcmTestServer(a.host, a.port, a.project_id, seed=a.seed, latency_s=a.latency,
                        retry_after=a.retry_after, record=a.record, verbose=a.verbose,
                        **{r: getattr(a, f"{r}_rate") for r in _RATES})
    try:
        for item in a.token_error:
            token, _, code = item.partition("=")
            srv.set_token_error(token, code)
    except ValueError as exc:
        p.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    srv.serve_until(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
