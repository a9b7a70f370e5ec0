"""Which FCM client should the push engine use? Messages per second of each option, one process.

    python benchmarks/push_clients.py                        # 5,000 messages, both servers, 0 and 20 ms
    python benchmarks/push_clients.py -n 5000 --latency 0.02 --server asyncio

Options measured (the same firebase-admin ``Message``, built by ``notifications.messages.build_message``):
  sdk-threads   ``messaging.send_each`` in batches of 500, one after another (a thread per message:
                the engine before issue 14)
  sdk-async     ``messaging.send_each_async`` (the SDK's httpx client, HTTP/2 where TLS allows it),
                every batch of 500 gathered at once on one event loop
  httpx         an ``httpx.AsyncClient`` of our own (connection limits raised to ``--connections``)
                posting ``_MessagingService.encode_message`` bodies
  httpx-bounded the same with a semaphore: never more requests than connections (httpcore's pool
                scans its whole queue per request, so thousands of queued requests go quadratic)
  aiohttp       an ``aiohttp.ClientSession`` (``TCPConnector(limit=--connections)``), same bodies
                (the engine of issue 14 until the lean client)
  lean          ``notifications.fcm_http.FcmHttpClient``: an asyncio protocol per keep-alive
                connection, prebuilt request bytes, a minimal answer parser (the engine now)
  lean-httptools the same connections with httptools' parser (MagicStack's, uvicorn's) instead
``--cpu``: also the client process's CPU time per request (µs): the push workers are CPU-bound,
so this, not messages/s on a shared machine, is what chooses the client.

Servers (each in a process of its own, so it does not share the client's interpreter):
  threaded      tests/support/fcm_server.py (aiohttp's server on one event loop since issue 14; the
                name is the old one, when it was a thread per connection)
  asyncio       a minimal asyncio HTTP/1.1 responder below that answers every send 200: it shows
                the clients' own ceiling on this machine
``--latency`` adds that many seconds to every answer (FCM from a Vietnamese data centre is some
tens of milliseconds away), which is where requests in flight matter.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]  # benchmarks/http.py would shadow http
sys.path.insert(0, str(ROOT))

PROJECT = "lienlac-bench"


# --- the minimal asyncio server (runs in a child process) -------------------------------------
class _Responder(asyncio.Protocol):
    latency = 0.0

    def connection_made(self, transport):
        self.transport, self.buf, self.count = transport, b"", 0

    def data_received(self, data):
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n"):
                if line.startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if len(self.buf) < head_end + 4 + length:
                return
            self.buf = self.buf[head_end + 4 + length:]
            self.count += 1
            body = json.dumps({"name": f"projects/{PROJECT}/messages/0:{self.count}"}).encode()
            answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\n\r\n" + body)
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, self._write, answer)
            else:
                self.transport.write(answer)

    def _write(self, answer):
        if not self.transport.is_closing():
            self.transport.write(answer)


def serve_asyncio(port: int, latency: float) -> None:
    _Responder.latency = latency

    async def main():
        server = await asyncio.get_running_loop().create_server(_Responder, "127.0.0.1", port, backlog=2048)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str, latency: float) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    if kind == "threaded":
        cmd = [sys.executable, "-m", "tests.support.fcm_server", "--port", str(port), "--project-id", PROJECT,
               "--latency", str(latency)]
    else:
        cmd = [sys.executable, __file__, "--serve-asyncio", str(port), "--latency", str(latency)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


# --- the clients --------------------------------------------------------------------------------
def messages(n: int):
    from notifications.models import Notification
    from notifications.messages import build_message

    note = Notification(id=1, user=1, category="announcement", title="Thông báo nghỉ học",
                        body="Trường nghỉ học ngày mai do bão.",
                        data=json.dumps({"type": "announcement", "id": "1",
                                         "students": [{"id": "1", "name": "Học sinh 1"}]}),
                        collapse_key="announcement-1", in_inbox=True)
    return [build_message(note, f"bench-token-{i:08d}-" + "x" * 140, 1) for i in range(n)]


def run_sdk_threads(url, msgs, connections):
    from firebase_admin import messaging

    from notifications.fcm_endpoint import firebase_app

    app = firebase_app(PROJECT, endpoint=url, name=f"bench-threads-{time.monotonic_ns()}")
    ok = 0
    for start in range(0, len(msgs), 500):
        ok += messaging.send_each(msgs[start:start + 500], app=app).success_count
    return ok


def run_sdk_async(url, msgs, connections):
    from firebase_admin import messaging

    from notifications.fcm_endpoint import firebase_app

    app = firebase_app(PROJECT, endpoint=url, name=f"bench-async-{time.monotonic_ns()}")

    async def main():
        batches = [msgs[s:s + 500] for s in range(0, len(msgs), 500)]
        out = await asyncio.gather(*[messaging.send_each_async(b, app=app) for b in batches])
        return sum(r.success_count for r in out)

    return asyncio.run(main())


def _bodies(msgs):
    from firebase_admin import messaging

    encode = messaging._MessagingService.encode_message  # pylint: disable=protected-access
    return [json.dumps({"message": encode(m)}, separators=(",", ":")).encode() for m in msgs]


def run_httpx(url, msgs, connections):
    import httpx

    send = f"{url}/v1/projects/{PROJECT}/messages:send"
    bodies = _bodies(msgs)

    async def main():
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def one(body):
                r = await client.post(send, content=body, headers={"Content-Type": "application/json"})
                return r.status_code == 200

            return sum(await asyncio.gather(*[one(b) for b in bodies]))

    return asyncio.run(main())


def run_httpx_bounded(url, msgs, connections):
    import httpx

    send = f"{url}/v1/projects/{PROJECT}/messages:send"
    bodies = _bodies(msgs)

    async def main():
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        gate = asyncio.Semaphore(connections)  # never more requests than connections: no pool queue
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def one(body):
                async with gate:
                    r = await client.post(send, content=body, headers={"Content-Type": "application/json"})
                return r.status_code == 200

            return sum(await asyncio.gather(*[one(b) for b in bodies]))

    return asyncio.run(main())


def run_aiohttp(url, msgs, connections):
    import aiohttp

    send = f"{url}/v1/projects/{PROJECT}/messages:send"
    bodies = _bodies(msgs)

    async def main():
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(body):
                async with session.post(send, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    return r.status == 200

            return sum(await asyncio.gather(*[one(b) for b in bodies]))

    return asyncio.run(main())


def run_lean(url, msgs, connections, conn_class=None):
    from notifications import fcm_http

    send = f"{url}/v1/projects/{PROJECT}/messages:send"
    bodies = _bodies(msgs)

    async def main():
        client = fcm_http.FcmHttpClient(send, connections, timeout=300)
        if conn_class is not None:
            client.conn_class = conn_class
        try:
            answers = await client.post_all(bodies, {"Content-Type": "application/json"})
        finally:
            await client.close()
        return sum(1 for a in answers if isinstance(a, fcm_http.Answer) and a.status == 200)

    return asyncio.run(main())


def run_lean_httptools(url, msgs, connections):
    import httptools

    from notifications import fcm_http

    class HtConn(fcm_http._Conn):  # pylint: disable=protected-access
        """The same connection with httptools' parser (headers collected, as the error path needs)."""

        def connection_made(self, transport):
            super().connection_made(transport)
            self.parser = httptools.HttpResponseParser(self)  # pylint: disable=attribute-defined-outside-init

        def send(self, job):
            self.parts, self.hdrs, self.complete = [], [], False  # pylint: disable=attribute-defined-outside-init
            super().send(job)

        def on_header(self, name, value):
            self.hdrs.append((name, value))

        def on_headers_complete(self):
            self.status = self.parser.get_status_code()
            self.closing = not self.parser.should_keep_alive()

        def on_body(self, body):
            self.parts.append(body)

        def on_message_complete(self):
            self.complete = True  # pylint: disable=attribute-defined-outside-init

        def data_received(self, data):
            self.received = True
            self.parser.feed_data(data)
            if self.complete:
                self.head = b""
                self._done(b"".join(self.parts))

    return run_lean(url, msgs, connections, HtConn)


CLIENTS = {"sdk-threads": run_sdk_threads, "sdk-async": run_sdk_async, "httpx": run_httpx,
           "httpx-bounded": run_httpx_bounded, "aiohttp": run_aiohttp,
           "lean": run_lean, "lean-httptools": run_lean_httptools}


def _timed(name, url, msgs, connections, out):
    CLIENTS[name](url, msgs[:200], connections)  # warm up (imports, connections)
    bodies_cpu = time.process_time()
    _bodies(msgs)  # the bodies' encoding, done inside every client: taken off its CPU below
    bodies_cpu = time.process_time() - bodies_cpu
    started, cpu = time.monotonic(), time.process_time()
    ok = CLIENTS[name](url, msgs, connections)
    out.put((ok, time.monotonic() - started, time.process_time() - cpu - bodies_cpu))


def measure(name, url, msgs, connections, limit):
    """(accepted, seconds) in a child process, or None if it takes longer than ``limit`` seconds."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_timed, args=(name, url, msgs, connections, out))
    child.start()
    child.join(limit)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return out.get() if not out.empty() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--server", choices=["threaded", "asyncio", "both"], default="both")
    parser.add_argument("--latency", type=float, action="append", help="seconds per answer (repeatable)")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--cpu", action="store_true", help="also the client's CPU µs per request")
    parser.add_argument("--limit", type=float, default=90.0, help="seconds before a client is given up")
    parser.add_argument("--serve-asyncio", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_asyncio:
        serve_asyncio(args.serve_asyncio, (args.latency or [0.0])[0])
        return 0
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    msgs = messages(args.n)
    servers = ["threaded", "asyncio"] if args.server == "both" else [args.server]
    print(f"{'server':9} {'latency':>7} {'client':14} {'messages/s':>10} {'accepted':>8}"
          + (f" {'client CPU µs/request':>22}" if args.cpu else ""))
    for kind in servers:
        for latency in args.latency or [0.0, 0.02]:
            for name in args.clients.split(","):
                proc, url = start_server(kind, latency)
                try:
                    result = measure(name, url, msgs, args.connections, args.limit)
                finally:
                    proc.kill()
                    proc.wait()
                if result is None:
                    print(f"{kind:9} {latency * 1000:5.0f}ms {name:14} {'> ' + str(int(args.limit)) + ' s':>10}",
                          flush=True)
                    continue
                ok, elapsed, cpu = result
                print(f"{kind:9} {latency * 1000:5.0f}ms {name:14} {args.n / elapsed:10.0f} {ok:8}"
                      + (f" {cpu / args.n * 1e6:22.1f}" if args.cpu else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
