"""Real-time delivery: Lienlac's class channel against a bare python-socketio broadcast server.

    python benchmarks/realtime.py [--sockets 1000] [--senders 10] [--messages 20] [--interval 0]
                                  [--async-mode gevent] [--client-procs 2] [--rounds 2]

Both set-ups run in the same invocation, on the same machine, with the same clients:

* **lienlac**: two ``lienlac serve`` processes sharing Redis (``message_queue``) and a fresh
  PostgreSQL database; one class channel whose members are the N connected sockets (a teacher and
  N-1 guardians), half on each process. M of them send ``message:send`` (acknowledged) in a closed
  loop: each sender waits for its ack before the next message. Every message is stored (seq under
  the conversation lock), emitted to the members' ``user:<id>`` rooms (computed from the roster per
  message) on both processes and received by all N.
* **bare**: two processes of a plain ``socketio.Server`` (same async mode, Redis manager on its own
  channel) that on ``message:send`` build a message of the same shape, emit it to a room with all N
  sockets and acknowledge. No database, no auth, no ordering.

Clients are python-socketio asyncio clients spread over ``--client-procs`` processes. Latency is
measured per delivery (receive time − the sender's send time, both ``time.monotonic()``, one clock
for every process of the machine). Printed: delivered messages/s (deliveries per second from the
first send to the last delivery), p50/p99 delivery latency, and Lienlac/bare ratios.

Needs PostgreSQL (``--pg-admin-url``, a database is created and dropped) and Redis (``--redis-url``).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --- the bare server ---------------------------------------------------------------------------
def bare_server(port: int, redis_url: str, channel: str, async_mode: str) -> None:
    if async_mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    import socketio

    manager = socketio.RedisManager(redis_url, channel=channel)
    sio = socketio.Server(async_mode=async_mode, client_manager=manager, cors_allowed_origins="*")
    counter = {"n": 0}

    @sio.event
    def connect(sid, environ, auth=None):
        sio.enter_room(sid, "all")

    @sio.on("message:send")
    def send(sid, data):
        counter["n"] += 1
        message = {"id": str(counter["n"]), "conversation_id": str(data["conversation_id"]), "sender_id": sid,
                   "body": data["body"], "client_id": data["client_id"],
                   "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seq": counter["n"],
                   "edited_at": None, "deleted": False, "attachments": [], "notice": None}
        sio.emit("message:new", {"message": message}, room="all")
        return {"message": message}

    app = socketio.WSGIApp(sio)
    if async_mode == "gevent":
        from gevent import pywsgi
        from geventwebsocket.handler import WebSocketHandler

        pywsgi.WSGIServer(("127.0.0.1", port), app, handler_class=WebSocketHandler, log=None).serve_forever()
    else:
        from werkzeug.serving import run_simple

        run_simple("127.0.0.1", port, app, threaded=True)


# --- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(proc: subprocess.Popen, url: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({url}); see the log in --tmp")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


# --- clients -----------------------------------------------------------------------------------
async def _clients(urls, tokens, conversation_id, senders, messages, interval, expected, ready, go, results, index):
    import socketio

    import logging

    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)  # "packet queue is empty" on every disconnect
    logging.getLogger("socketio.client").setLevel(logging.ERROR)
    latencies: list[float] = []
    counts = {"n": 0, "last": 0.0, "dropped": 0}
    clients = []
    closing = {"now": False}

    def on_disconnect(*_args):
        if not closing["now"]:
            counts["dropped"] += 1

    def on_new(data):
        now = time.monotonic()
        body = data["message"]["body"]
        latencies.append(now - float(body.split("|", 1)[0]))
        counts["n"] += 1
        counts["last"] = now

    async def connect(i, token):
        client = socketio.AsyncClient(reconnection=False)
        client.on("message:new", handler=on_new)
        client.on("disconnect", handler=on_disconnect)
        await client.connect(urls[i % len(urls)], auth={"token": token} if token else None,
                             transports=["websocket"], wait_timeout=30)
        return client

    gate = asyncio.Semaphore(50)

    async def guarded(i, token):
        async with gate:
            return await connect(i, token)

    clients = await asyncio.gather(*(guarded(i, t) for i, t in tokens))
    ready.set()
    while not go.is_set():
        await asyncio.sleep(0.01)
    errors = []
    run = uuid.uuid4().hex[:8]  # a client_id is sent once: every run has its own

    async def send(client, k):
        for n in range(messages):
            ack = await client.call("message:send", {"conversation_id": conversation_id, "client_id": f"{run}-{k}-{n}",
                                                     "body": f"{time.monotonic():.6f}|{k}:{n}"}, timeout=120)
            if "message" not in ack:
                errors.append(ack)
            if interval:
                await asyncio.sleep(interval)

    started = time.monotonic()
    await asyncio.gather(*(send(clients[k], k) for k in range(senders)))
    deadline = time.monotonic() + 120
    while counts["n"] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    closing["now"] = True
    await asyncio.gather(*(asyncio.wait_for(c.disconnect(), 5) for c in clients), return_exceptions=True)
    results.put({"index": index, "latencies": latencies, "received": counts["n"], "expected": expected,
                 "last": counts["last"], "started": started, "errors": errors[:5], "dropped": counts["dropped"]})


def client_process(*args):
    asyncio.run(_clients(*args))


def measure(urls: list[str], tokens: list[str | None], conversation_id: str, senders: int, messages: int,
            interval: float, client_procs: int) -> dict:
    """Connect every socket, let the senders send, collect each process's deliveries."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    go = ctx.Event()
    readies, procs = [], []
    total = senders * messages
    indexed = list(enumerate(tokens))
    for p in range(client_procs):
        part = indexed[p::client_procs]
        ready = ctx.Event()
        procs.append(ctx.Process(target=client_process, args=(
            urls, part, conversation_id, senders if p == 0 else 0, messages, interval, total * len(part), ready, go,
            results, p)))
        readies.append(ready)
    for proc in procs:
        proc.start()
    connect_started = time.monotonic()
    for ready in readies:
        if not ready.wait(300):
            raise SystemExit("clients did not connect in time")
    connected = time.monotonic() - connect_started
    time.sleep(1.0)
    go.set()
    outs = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(30)
    started = min(o["started"] for o in outs if o["index"] == 0)
    last = max(o["last"] for o in outs)
    latencies = sorted(x for o in outs for x in o["latencies"])
    received = sum(o["received"] for o in outs)
    expected = sum(o["expected"] for o in outs)
    errors = [e for o in outs for e in o["errors"]]
    elapsed = max(1e-9, last - started)
    return {"received": received, "expected": expected, "seconds": elapsed, "per_second": received / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
            "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
            "connect_s": connected, "errors": errors, "dropped": sum(o["dropped"] for o in outs)}


# --- Lienlac set-up ----------------------------------------------------------------------------
def seed_lienlac(database_url: str, redis_url: str, channel: str, secret: str, sockets: int) -> tuple[str, list[str]]:
    """A school with one class of ``sockets - 1`` students (one guardian each) and its teacher."""
    sys.path.insert(0, str(ROOT))
    from messaging import logic
    from service.accounts import logic as accounts
    from service.roster import logic as roster
    from service.app import create_app
    from service.config import Config
    from service.db import connection, migrate, write_transaction

    app = create_app(Config(database_url=database_url, redis_url=redis_url, secret_key=secret,
                            socketio_channel=channel, log_level="WARNING"), web=False)
    migrate()
    with app.app_context(), connection():
        with write_transaction():
            school = roster.create_school("Trường benchmark")
            teacher = roster.ensure_user("+84900000000", "Cô giáo")
            roster.add_staff(school.id, teacher.id, "teacher")
            klass = roster.create_class(school.id, "1A", 1, teacher.id)
            users = [teacher]
            for i in range(1, sockets):
                student = roster.create_student(school.id, f"Học sinh {i}", klass.id)
                guardian = roster.ensure_user(f"+8491{i:07d}", f"Phụ huynh {i}")
                roster.link_guardian(student.id, guardian.id)
                users.append(guardian)
        conversation = logic.class_conversation(teacher.id, klass.id)
        family = str(uuid.uuid4())
        tokens = [accounts.issue_access_token(u.id, family)[0] for u in users]
    return str(conversation.id), tokens


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20, help="per sender")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds a sender waits after each ack (0: closed loop, as fast as acks come back)")
    parser.add_argument("--async-mode", choices=["gevent", "threading"], default="gevent")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--pg-admin-url", default=os.environ.get("LIENLAC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--tmp", default=f"/tmp/lienlac-bench-{os.getpid()}")
    parser.add_argument("--only", choices=["lienlac", "bare"], default=None)
    parser.add_argument("--rounds", type=int, default=2, help="measurements per set-up, alternating; medians reported")
    parser.add_argument("--bare-server", nargs=4, metavar=("PORT", "REDIS", "CHANNEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        port, redis_url, channel, mode = args.bare_server
        bare_server(int(port), redis_url, channel, mode)
        return 0

    import peewee
    from playhouse.db_url import parse

    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    setups = ["bare", "lienlac"] if args.only is None else [args.only]
    targets: dict[str, tuple[list[str], list, str]] = {}
    procs: list[subprocess.Popen] = []
    name = f"lienlac_bench_{uuid.uuid4().hex[:8]}"
    admin = peewee.PostgresqlDatabase(**parse(args.pg_admin_url))
    load_before = os.getloadavg()
    try:
        if "bare" in setups:
            channel = f"bench-bare-{uuid.uuid4().hex}"
            ports = [free_port(), free_port()]
            bare = [start([sys.executable, __file__, "--bare-server", str(p), args.redis_url, channel, args.async_mode],
                          dict(os.environ), tmp / f"bare-{i}.log") for i, p in enumerate(ports)]
            procs += bare
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            for proc, url in zip(bare, urls):
                wait_up(proc, url + "/socket.io/?EIO=4&transport=polling")
            targets["bare"] = (urls, [None] * args.sockets, "1")
        if "lienlac" in setups:
            admin.connect()
            admin.execute_sql(f'CREATE DATABASE "{name}"')
            admin.close()
            database_url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
            channel, secret = f"bench-lienlac-{uuid.uuid4().hex}", uuid.uuid4().hex + uuid.uuid4().hex
            conversation_id, tokens = seed_lienlac(database_url, args.redis_url, channel, secret, args.sockets)
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=args.redis_url, SECRET_KEY=secret,
                       SOCKETIO_CHANNEL=channel, SOCKETIO_ASYNC_MODE=args.async_mode, LOG_LEVEL="WARNING",
                       LIENLAC_INSTANCE=str(tmp / "instance"), PYTHONPATH=str(ROOT),
                       MESSAGE_RATE_LIMIT="1000000 per minute")  # measure delivery, not the per-sender limit
            ports = [free_port(), free_port()]
            web = [start([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(p),
                          "--no-migrate"], env, tmp / f"lienlac-{i}.log") for i, p in enumerate(ports)]
            procs += web
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            for proc, url in zip(web, urls):
                wait_up(proc, url + "/healthz")
            targets["lienlac"] = (urls, tokens, conversation_id)

        # alternate the set-ups round by round: both see the same machine (it may be shared and busy)
        rounds: dict[str, list[dict]] = {key: [] for key in setups}
        for r in range(args.rounds):
            for key in (setups if r % 2 == 0 else setups[::-1]):
                urls, tokens, conversation_id = targets[key]
                result = measure(urls, tokens, conversation_id, args.senders, args.messages, args.interval,
                                 args.client_procs)
                rounds[key].append(result)
                print(f"round {r + 1} {key:8} {result['per_second']:8.0f} delivered/s  p50 {result['p50_ms']:7.1f} ms  "
                      f"p99 {result['p99_ms']:7.1f} ms  ({result['received']}/{result['expected']} received, "
                      f"{result['dropped']} sockets dropped by the server, load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        stop(procs)
        if "lienlac" in setups:
            admin.connect()
            admin.execute_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
            admin.close()

    def median(key, metric):
        return statistics.median(r[metric] for r in rounds[key])

    results = {key: {m: median(key, m) for m in ("per_second", "p50_ms", "p99_ms", "mean_ms", "connect_s")}
               | {"received": sum(r["received"] for r in rounds[key]), "expected": sum(r["expected"] for r in rounds[key]),
                  "errors": [e for r in rounds[key] for e in r["errors"]]} for key in setups}
    pacing = f"{args.interval:g} s between a sender's messages" if args.interval else "closed loop"
    print(f"\nReal-time delivery: {args.sockets} sockets over 2 web processes (Redis), {args.senders} senders × "
          f"{args.messages} messages ({pacing}), async mode {args.async_mode}, {args.client_procs} client processes, "
          f"{os.cpu_count()} CPUs, median of {args.rounds} round(s); load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"{'':10} {'delivered/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'received':>16} {'connect s':>10}")
    for key, r in results.items():
        print(f"{key:10} {r['per_second']:12.0f} {r['p50_ms']:9.1f} {r['p99_ms']:9.1f} {r['mean_ms']:9.1f} "
              f"{r['received']:>7}/{r['expected']:<8} {r['connect_s']:10.1f}" + (f"  errors: {r['errors'][:3]}" if r["errors"] else ""))
    if {"lienlac", "bare"} <= results.keys():
        l, b = results["lienlac"], results["bare"]
        print(f"{'ratio':10} {l['per_second'] / b['per_second']:12.2f} {l['p50_ms'] / b['p50_ms']:9.2f} "
              f"{l['p99_ms'] / b['p99_ms']:9.2f} {l['mean_ms'] / b['mean_ms']:9.2f}   (lienlac / bare)")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "errors"} for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
