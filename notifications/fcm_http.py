"""A lean HTTP/1.1 client for FCM's ``messages:send``: keep-alive connections, many requests in flight.

Why not aiohttp (the client before): measured by ``benchmarks/push_clients.py --cpu`` against the
local FCM server in its own process, aiohttp spent about 3x the CPU per request of this client,
and the push workers are CPU-bound. This one is an ``asyncio.Protocol`` per connection that
writes prebuilt request bytes (one write per request) and reads the answer with a minimal parser:
status line, the header block kept as bytes (parsed into a list only when asked: error answers),
``Content-Length`` or ``Transfer-Encoding: chunked`` bodies, or a body that ends with the
connection (HTTP/1.0 style). TLS through asyncio's ``ssl`` for ``https://`` (fcm.googleapis.com),
plain TCP for ``http://`` (the local endpoint). No pipelining: one request at a time per
connection, at most ``connections`` connections.

Semantics:
- a request whose connection drops before any byte of its answer arrived (a keep-alive
  connection the server closed meanwhile) is sent again once on a fresh connection; after that,
  or when part of an answer had arrived, it fails with ``FcmConnectionError``;
- every request has a deadline ``timeout`` seconds after it was handed over (queueing, connecting
  and waiting included, as aiohttp's ``ClientTimeout(total=...)``): then ``FcmTimeout`` and its
  connection is closed;
- a connection that cannot be made fails one waiting request (``FcmConnectionError``), so a
  server that is down fails every request quickly, each after its own attempt.
"""
from __future__ import annotations

import asyncio
import collections
import re
import ssl as ssl_module
import urllib.parse

_CRLF2 = b"\r\n\r\n"
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_KEEP_ALIVE = re.compile(rb"\r\nconnection:[ \t]*keep-alive", re.IGNORECASE)
MAX_HEAD = 64 * 1024


class FcmHttpError(Exception):
    """The request got no complete answer."""


class FcmConnectionError(FcmHttpError):
    pass


class FcmTimeout(FcmHttpError):
    pass


class Answer:
    """An HTTP answer: ``status``, ``body`` (bytes), ``headers`` (a list of (name, value), parsed
    from the raw header block on first use), ``header(name)``."""

    __slots__ = ("status", "head", "body", "_headers")

    def __init__(self, status: int, head: bytes, body: bytes):
        self.status, self.head, self.body, self._headers = status, head, body, None

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            lines = self.head.decode("latin-1").split("\r\n")[1:]
            self._headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines) if n]
        return self._headers

    def header(self, name: str, default=None):
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), default)

    def __repr__(self):
        return f"Answer({self.status}, {self.body[:200]!r})"


class _Job:
    __slots__ = ("request", "batch", "index", "deadline", "resent")

    def __init__(self, request: bytes, batch: "_Batch", index: int, deadline: float):
        self.request, self.batch, self.index, self.deadline, self.resent = request, batch, index, deadline, False


class _Batch:
    __slots__ = ("results", "left", "future")

    def __init__(self, n: int, future: asyncio.Future):
        self.results: list = [None] * n
        self.left, self.future = n, future

    def settle(self, index: int, result) -> None:
        self.results[index] = result
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(self.results)


class _Conn(asyncio.Protocol):
    __slots__ = ("pool", "transport", "job", "buf", "received", "head", "length", "status", "closing", "lost")

    def __init__(self, pool: "FcmHttpClient"):
        self.pool = pool
        self.transport = None
        self.job: _Job | None = None
        self.buf = b""
        self.received = False
        self.head = None  # the header block of the answer being read, once complete
        self.length = -1  # its body's length; -1 chunked, -2 until the connection ends
        self.status = 0
        self.closing = False  # the server said Connection: close
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, job: _Job) -> None:
        self.job, self.buf, self.received, self.head = job, b"", False, None
        self.transport.write(job.request)

    def data_received(self, data: bytes) -> None:
        job = self.job
        if job is None:  # nothing asked: a server speaking out of turn; drop the connection
            self.transport.abort()
            return
        self.received = True
        buf = self.buf + data if self.buf else data
        if self.head is None:
            end = buf.find(_CRLF2)
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(FcmConnectionError("FCM answer header too long"))
                else:
                    self.buf = buf
                return
            head = buf[:end]
            try:
                version, status = head[:12].split(b" ", 2)[:2]
                self.status = int(status)
            except ValueError:
                self._fail(FcmConnectionError(f"not an HTTP answer: {head[:80]!r}"))
                return
            if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
                rest = buf[end + 4:]
                self.buf = b""
                if rest:
                    self.data_received(rest)
                return
            self.head = head
            self.closing = (_CLOSE.search(head) is not None
                            or (version == b"HTTP/1.0" and _KEEP_ALIVE.search(head) is None))
            match = _LENGTH.search(head)
            if self.status in (204, 304):
                self.length = 0
            elif match is not None:
                self.length = int(match.group(1))
            elif _CHUNKED.search(head) is not None:
                self.length = -1
            else:
                self.length, self.closing = -2, True
            buf = buf[end + 4:]
        length = self.length
        if length >= 0:
            if len(buf) < length:
                self.buf = buf
                return
            if len(buf) > length:  # more than asked for: no pipelining here, so the stream is broken
                self.closing = True
            self._done(buf[:length])
        elif length == -1:
            body = _dechunk(buf)
            if body is None:
                self.buf = buf
                return
            self._done(body)
        else:
            self.buf = buf  # until the connection ends

    def _done(self, body: bytes) -> None:
        job, self.job, self.buf = self.job, None, b""
        job.batch.settle(job.index, Answer(self.status, self.head, body))
        if self.closing:
            self.lost = True
            self.transport.close()
            self.pool._gone(self)  # pylint: disable=protected-access
        else:
            self.pool._free(self)  # pylint: disable=protected-access

    def _fail(self, error: Exception) -> None:
        job, self.job = self.job, None
        self.lost = True
        self.transport.abort()
        self.pool._gone(self)  # pylint: disable=protected-access
        if job is not None:
            job.batch.settle(job.index, error)

    def connection_lost(self, exc) -> None:
        job, self.job = self.job, None
        if self.lost:  # already accounted for
            return
        self.lost = True
        self.pool._gone(self)  # pylint: disable=protected-access
        if job is None:
            return
        if self.length == -2 and self.head is not None:  # the body was "until the connection ends"
            job.batch.settle(job.index, Answer(self.status, self.head, self.buf))
        elif not self.received and not job.resent:
            job.resent = True  # a keep-alive connection closed under it: once more on a fresh one
            self.pool._requeue(job)  # pylint: disable=protected-access
        else:
            job.batch.settle(job.index, FcmConnectionError(f"FCM connection lost: {exc!r}"))


def _dechunk(buf: bytes) -> bytes | None:
    """A complete chunked body (trailers ignored), or None while incomplete."""
    parts, pos = [], 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";", 1)[0].strip() or b"0", 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n", pos)  # trailers: header lines until an empty one
            while end > pos:
                pos = end + 2
                end = buf.find(b"\r\n", pos)
            return b"".join(parts) if end == pos else None
        if len(buf) < pos + size + 2:
            return None
        parts.append(buf[pos:pos + size])
        pos += size + 2


class FcmHttpClient:
    """POSTs to one URL over up to ``connections`` keep-alive connections. Made and used on one
    event loop: ``await client.post_all(bodies, headers)`` -> one ``Answer`` or ``FcmHttpError``
    per body, in order."""

    def __init__(self, url: str, connections: int = 256, timeout: float = 20.0,
                 ssl_context: ssl_module.SSLContext | None = None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.netloc = parts.netloc
        self.ssl = (ssl_context or ssl_module.create_default_context()) if parts.scheme == "https" else None
        self.limit, self.timeout = connections, timeout
        self.idle: list[_Conn] = []
        self.pending: collections.deque[_Job] = collections.deque()
        self.busy: set[_Conn] = set()
        self.open = 0  # connections made or being made
        self.connecting = 0
        self._watch = None
        self.conn_class = _Conn
        self.connects = 0  # connections made in all (tests, figures)

    def prefix(self, headers: dict) -> bytes:
        """The request bytes before the Content-Length value."""
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def post_all(self, bodies: list[bytes], headers: dict) -> list:
        if not bodies:
            return []
        loop = asyncio.get_running_loop()
        prefix = self.prefix(headers)
        batch = _Batch(len(bodies), loop.create_future())
        deadline = loop.time() + self.timeout
        self.pending.extend(_Job(b"".join((prefix, str(len(b)).encode(), _CRLF2, b)), batch, i, deadline)
                            for i, b in enumerate(bodies))
        self._pump()
        self._watching()
        return await batch.future

    # --- the pool --------------------------------------------------------------------------------
    def _pump(self) -> None:
        pending, idle = self.pending, self.idle
        while pending and idle:
            conn = idle.pop()
            self.busy.add(conn)
            conn.send(pending.popleft())
        more = min(len(pending) - self.connecting, self.limit - self.open)
        if more > 0:
            loop = asyncio.get_running_loop()
            for _ in range(more):
                self.open += 1
                self.connecting += 1
                loop.create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # the first waiting request has the earliest deadline (FIFO; a resent one goes first)
            wait = max(0.1, (self.pending[0].deadline if self.pending else loop.time() + self.timeout) - loop.time())
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: self.conn_class(self), self.host, self.port, ssl=self.ssl,
                                       server_hostname=self.host if self.ssl else None), wait)
        except (OSError, asyncio.TimeoutError, ssl_module.SSLError) as exc:
            self.connecting -= 1
            self.open -= 1
            if self.pending:
                job = self.pending.popleft()
                job.batch.settle(job.index, FcmConnectionError(f"cannot connect to {self.netloc}: {exc!r}"))
            self._pump()
            return
        self.connecting -= 1
        self.connects += 1
        if conn.lost:  # closed before we got it
            self._pump()
            return
        self._free(conn)

    def _free(self, conn: _Conn) -> None:
        self.busy.discard(conn)
        if self.pending:
            self.busy.add(conn)
            conn.send(self.pending.popleft())
        else:
            self.idle.append(conn)

    def _gone(self, conn: _Conn) -> None:
        self.open -= 1
        self.busy.discard(conn)
        try:
            self.idle.remove(conn)
        except ValueError:
            pass
        if self.pending:
            self._pump()

    def _requeue(self, job: _Job) -> None:
        self.pending.appendleft(job)
        self._pump()

    def _watching(self) -> None:
        if self._watch is None:
            self._watch = asyncio.get_running_loop().call_later(min(0.25, self.timeout / 4), self._tick)

    def _tick(self) -> None:
        self._watch = None
        now = asyncio.get_running_loop().time()
        for conn in [c for c in self.busy if c.job is not None and c.job.deadline <= now]:
            conn._fail(FcmTimeout(f"no answer from {self.netloc} within {self.timeout} s"))  # pylint: disable=protected-access
        if any(job.deadline <= now for job in self.pending):
            keep = collections.deque()
            for job in self.pending:
                if job.deadline <= now:
                    job.batch.settle(job.index, FcmTimeout(f"no connection to {self.netloc} within {self.timeout} s"))
                else:
                    keep.append(job)
            self.pending = keep
        if self.busy or self.pending:
            self._watching()

    async def close(self) -> None:
        for conn in list(self.idle) + list(self.busy):
            conn.lost = True
            conn.transport.close()
        self.idle.clear()
        self.busy.clear()
        self.open = self.connecting
