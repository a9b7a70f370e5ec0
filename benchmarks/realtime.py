"""Real-time delivery: Lienlac's chat (1:1 and class channels) against a bare python-socketio relay.

    python benchmarks/realtime.py                          # the 1:1 burst, paced 1:1 and the class of 45, 2 rounds
    python benchmarks/realtime.py --cases broadcast        # the class channel of 1,000 sockets, closed loop
    python benchmarks/realtime.py --cases paced --rate 50 --seconds 20

Both set-ups run in the same invocation, on the same machine, with the same clients:

* **lienlac**: two ``lienlac serve`` processes and one ``lienlac worker``, started as the README's
  deployment section says (PostgreSQL, Redis, the gevent server, a Socket.IO channel of their own),
  on a fresh database; every socket a real user's (a session each), placed at random half on each
  web process. Each message is authorised, stored with its seq under the conversation lock,
  published in order and received by every member's socket (the sender's own included).
  ``MESSAGE_RATE_LIMIT`` is raised: this measures delivery, not the per-sender limit.
* **bare**: two processes of a plain ``socketio.Server`` (gevent, Redis manager on its own channel)
  whose sockets join the rooms named at connect; on ``message:send`` it builds a message of the same
  shape, emits it to the conversation's room and acknowledges. No database, no auth, no ordering.

Cases (``--cases``, comma-separated):

* ``burst``: ``--pairs`` (100) direct conversations, a guardian and one of ``--teachers`` (10)
  teachers each; ``--burst`` (200) ``message:send`` sent at once, spread over the conversations
  (guardian, then teacher). Figure: messages/s from the first send to the last delivery.
* ``paced``: the same conversations, ``--rate`` (100) messages/s for ``--seconds`` (10), open loop
  (message i is due at start + i / rate and its latency counts from then), round-robin over the
  conversations. Figures: p50 / p99 send → delivery, ms.
* ``channel``: one class channel of ``--channel-size`` (45) members (a teacher, the guardians), all
  connected, the members posting in turn at ``--rate`` for ``--seconds``. Figure: p99.
* ``broadcast``: the class channel of ``--sockets`` (1,000) members, ``--senders`` × ``--messages``
  in a closed loop (a sender waits for its ack, then ``--interval``). Figures: deliveries/s, p50, p99.

Clients: python-socketio asyncio clients in ``--client-procs`` processes; latency per delivery is the
receive time − the time the message was due (open loop) or sent (closed loop), ``time.monotonic()``,
one clock for every process of the machine. The set-ups alternate round by round (``--rounds``,
medians reported) because the machine may be shared. ``--json PATH`` writes the rows of ``run.sh``'s
table. Needs PostgreSQL (``--pg-admin-url``; a database is created and dropped) and Redis
(``--redis-url``, default database 6, whose RQ queues this run's worker serves).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

# the repository root, not this folder, on sys.path (benchmarks/http.py would shadow the standard library's http)
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

CASES = ("burst", "paced", "channel", "broadcast")


# --- the bare relay ----------------------------------------------------------------------------
def bare_server(port: int, redis_url: str, channel: str) -> None:
    from gevent import monkey

    monkey.patch_all()
    import socketio

    manager = socketio.RedisManager(redis_url, channel=channel)
    sio = socketio.Server(async_mode="gevent", client_manager=manager, cors_allowed_origins="*")
    counter = {"n": 0}

    @sio.event
    def connect(sid, environ, auth=None):
        for room in (auth or {}).get("rooms", ["all"]):
            sio.enter_room(sid, room)

    @sio.on("message:send")
    def send(sid, data):
        counter["n"] += 1
        message = {"id": str(counter["n"]), "conversation_id": str(data["conversation_id"]), "sender_id": sid,
                   "body": data["body"], "client_id": data["client_id"],
                   "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seq": counter["n"],
                   "edited_at": None, "deleted": False, "attachments": [], "notice": None}
        sio.emit("message:new", {"message": message}, room=str(data["conversation_id"]))
        return {"message": message}

    from gevent import pywsgi

    try:  # as Flask-SocketIO's run (lienlac serve) does: gevent-websocket if installed, else simple-websocket
        from geventwebsocket.handler import WebSocketHandler
        extra = {"handler_class": WebSocketHandler}
    except ImportError:
        extra = {}
    import socket as socket_mod

    class NoDelay(extra.get("handler_class", pywsgi.WSGIHandler)):  # as lienlac serve: TCP_NODELAY
        def handle(self):
            self.socket.setsockopt(socket_mod.IPPROTO_TCP, socket_mod.TCP_NODELAY, 1)
            return super().handle()

    pywsgi.WSGIServer(("127.0.0.1", port), socketio.WSGIApp(sio), log=None, handler_class=NoDelay).serve_forever()


# --- clients -----------------------------------------------------------------------------------
async def _clients(sockets, work, expected, ready, go, start_at, results, index):
    """This process's sockets (global index, url, auth); ``work`` its sends; report its deliveries."""
    import logging

    import socketio

    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)  # "packet queue is empty" on every disconnect
    logging.getLogger("socketio.client").setLevel(logging.ERROR)
    latencies: list[float] = []
    counts = {"n": 0, "last": 0.0, "dropped": 0}
    closing = {"now": False}
    counted_from = {"t": 0.0}

    def on_disconnect(*_args):
        if not closing["now"]:
            counts["dropped"] += 1

    def on_new(data):
        now = time.monotonic()
        sent = float(data["message"]["body"].split("|", 1)[0])
        if sent >= counted_from["t"] - 1e-5:  # the body carries the time rounded to microseconds
            latencies.append(now - sent)
        counts["n"] += 1
        counts["last"] = now

    gate = asyncio.Semaphore(50)

    async def connect(url, auth):
        async with gate:
            client = socketio.AsyncClient(reconnection=False)
            client.on("message:new", handler=on_new)
            client.on("disconnect", handler=on_disconnect)
            await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=30)
            return client

    clients = await asyncio.gather(*(connect(url, auth) for _g, url, auth in sockets))
    local = {g: clients[pos] for pos, (g, _u, _a) in enumerate(sockets)}
    ready.set()
    while not go.is_set():
        await asyncio.sleep(0.005)
    errors: list = []
    run = uuid.uuid4().hex[:8]  # a client_id is sent once: every run has its own

    async def send_one(client, conversation_id, client_id, sent):
        try:
            ack = await client.call("message:send", {"conversation_id": conversation_id, "client_id": client_id,
                                                     "body": f"{sent:.6f}|{client_id}"}, timeout=120)
            if "message" not in ack:
                errors.append(ack)
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append(repr(exc))

    start = start_at.value
    if work["kind"] == "closed":
        async def chain(sender, k):
            for n in range(work["messages"]):
                await send_one(local[sender], work["conversation"], f"{run}-{k}-{n}", time.monotonic())
                if work["interval"]:
                    await asyncio.sleep(work["interval"])

        started = time.monotonic()
        await asyncio.gather(*(chain(s, k) for k, s in enumerate(work["senders"])))
    else:
        counted_from["t"] = start + work["warmup"]
        started = start
        tasks = []
        for k, (offset, sender, conversation_id) in enumerate(work["sends"]):
            due = start + offset
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(send_one(local[sender], conversation_id, f"{run}-{index}-{k}", due)))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + 120
    while counts["n"] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    closing["now"] = True
    await asyncio.gather(*(asyncio.wait_for(c.disconnect(), 5) for c in clients), return_exceptions=True)
    results.put({"index": index, "latencies": latencies, "received": counts["n"], "expected": expected,
                 "last": counts["last"], "started": started, "errors": errors[:5], "error_count": len(errors),
                 "dropped": counts["dropped"]})


def client_process(*args):
    asyncio.run(_clients(*args))


def measure(urls: list[str], auths: list, plan: dict, client_procs: int) -> dict:
    """Connect every socket (placed at random half on each server), run the plan, collect deliveries.

    ``plan``: ``{"kind": "open", "messages": [(offset s, sender socket, conversation id, member sockets)],
    "warmup": s}`` or ``{"kind": "closed", "senders": [sockets], "messages": M, "interval": s,
    "conversation": id, "members": [sockets]}``."""
    placement = [i % len(urls) for i in range(len(auths))]
    random.Random(13).shuffle(placement)
    proc_of = [i % client_procs for i in range(len(auths))]
    expected = [0] * client_procs
    works = []
    if plan["kind"] == "open":
        for _o, _s, _c, members in plan["messages"]:
            for m in members:
                expected[proc_of[m]] += 1
        for p in range(client_procs):
            works.append({"kind": "open", "warmup": plan["warmup"],
                          "sends": [(o, s, c) for o, s, c, _m in plan["messages"] if proc_of[s] == p]})
        total = len(plan["messages"])
    else:
        total = len(plan["senders"]) * plan["messages"]
        for m in plan["members"]:
            expected[proc_of[m]] += total
        for p in range(client_procs):
            works.append({"kind": "closed", "messages": plan["messages"], "interval": plan["interval"],
                          "conversation": plan["conversation"], "senders": [s for s in plan["senders"] if proc_of[s] == p]})
    ctx = mp.get_context("spawn")
    results, go, start_at = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    readies, procs = [], []
    for p in range(client_procs):
        sockets = [(i, urls[placement[i]], auths[i]) for i in range(len(auths)) if proc_of[i] == p]
        ready = ctx.Event()
        procs.append(ctx.Process(target=client_process, args=(sockets, works[p], expected[p], ready, go, start_at,
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
    start_at.value = time.monotonic() + 0.5
    go.set()
    outs = [results.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join(30)
    started = min(o["started"] for o in outs if plan["kind"] == "open" or o["index"] == 0)
    last = max(o["last"] for o in outs)
    latencies = [x for o in outs for x in o["latencies"]]
    received = sum(o["received"] for o in outs)
    elapsed = max(1e-9, last - started)
    lat = common.summary_ms(latencies)
    return {"messages": total, "received": received, "expected": sum(expected), "seconds": elapsed,
            "msgs_per_second": total / elapsed, "deliveries_per_second": received / elapsed,
            "p50_ms": lat["p50"], "p99_ms": lat["p99"], "max_ms": lat["max"], "mean_ms": lat["mean"],
            "connect_s": connected, "errors": [e for o in outs for e in o["errors"]][:5],
            "error_count": sum(o["error_count"] for o in outs), "dropped": sum(o["dropped"] for o in outs),
            "load": common.load_now()}


# --- Lienlac set-up ----------------------------------------------------------------------------
def seed_lienlac(database_url: str, secret: str, args, cases: list[str]):
    """The users and conversations of the cases; returns (app, layouts). A layout: socket users in
    order and its conversations as (id, member sockets)."""
    from messaging.logic import conversations
    from service.app import create_app
    from service.config import Config
    from service.db import connection, migrate, write_transaction
    from service.roster import logic as roster

    app = create_app(Config(database_url=database_url, redis_url=None, secret_key=secret, log_level="WARNING"),
                     web=False)
    layouts: dict[str, dict] = {}
    with app.app_context(), connection():
        migrate()
        with write_transaction():
            school = roster.create_school("Trường benchmark")
        phones = iter(range(10**6))

        def person(name):
            return roster.ensure_user(f"+8490{next(phones):07d}", name)

        def klass_of(teacher, size, name):
            with write_transaction():
                klass = roster.create_class(school.id, name, 1, teacher.id)
                pairs = []
                for i in range(size):
                    student = roster.create_student(school.id, f"Học sinh {name}-{i}", klass.id)
                    guardian = person(f"Phụ huynh {name}-{i}")
                    roster.link_guardian(student.id, guardian.id)
                    pairs.append((student, guardian))
            return klass, pairs

        def teacher(name):
            with write_transaction():
                user = person(name)
                roster.add_staff(school.id, user.id, "teacher")
            return user

        if {"burst", "paced"} & set(cases):
            teachers = [teacher(f"Giáo viên {t}") for t in range(args.teachers)]
            per_class = -(-args.pairs // args.teachers)
            users, convs = list(teachers), []
            for t, tu in enumerate(teachers):
                _k, pairs = klass_of(tu, min(per_class, args.pairs - t * per_class), f"D{t}")
                for student, guardian in pairs:
                    conv, _new = conversations.open_direct(guardian.id, student.id, [tu.id])
                    users.append(guardian)
                    convs.append((str(conv.id), [len(users) - 1, t]))  # the guardian first: the first sender
            layouts["direct"] = {"users": users, "conversations": convs}
        for case, size in (("channel", args.channel_size), ("broadcast", args.sockets)):
            if case in cases:
                tu = teacher(f"Giáo viên {case}")
                klass, pairs = klass_of(tu, size - 1, case)
                conv = conversations.class_conversation(tu.id, klass.id)
                users = [tu] + [g for _s, g in pairs]
                layouts[case] = {"users": users, "conversations": [(str(conv.id), list(range(len(users))))]}
    return app, layouts


def lienlac_auths(app, users) -> list[dict]:
    """A fresh session (access token) per user, just before a measurement: tokens live 15 minutes."""
    from service.accounts import logic as accounts
    from service.db import connection

    with app.app_context(), connection():
        return [{"token": accounts.start_session(u)["access_token"]} for u in users]


def bare_layout(layout: dict) -> tuple[list[dict], list[tuple[str, list[int]]]]:
    """The same sockets and conversations for the bare relay: a room per conversation."""
    convs = [(f"r{k}", members) for k, (_id, members) in enumerate(layout["conversations"])]
    rooms: list[list[str]] = [[] for _ in layout["users"]]
    for room, members in convs:
        for m in members:
            rooms[m].append(room)
    return [{"rooms": r} for r in rooms], convs


def plan_for(case: str, convs: list[tuple[str, list[int]]], args) -> dict:
    if case == "burst":
        n = len(convs)
        return {"kind": "open", "warmup": 0.0, "messages": [
            (0.0, convs[j % n][1][(j // n) % 2], convs[j % n][0], convs[j % n][1]) for j in range(args.burst)]}
    if case in ("paced", "channel"):
        total = int(args.rate * (args.seconds + args.warmup))
        messages = []
        for j in range(total):
            if case == "paced":
                conv_id, members = convs[j % len(convs)]
                sender = members[(j // len(convs)) % 2]
            else:
                conv_id, members = convs[0]
                sender = members[j % len(members)]
            messages.append((j / args.rate, sender, conv_id, members))
        return {"kind": "open", "warmup": args.warmup, "messages": messages}
    conv_id, members = convs[0]
    return {"kind": "closed", "senders": members[:args.senders], "messages": args.messages,
            "interval": args.interval, "conversation": conv_id, "members": members}


def _rows(case: str, r: dict, args) -> list[dict]:
    lien, bare = r.get("lienlac"), r.get("bare")

    def get(x, key):
        return x[key] if x else None

    def note(x):
        return (f"{x['received']}/{x['expected']} delivered, {x['error_count']} errors, {x['dropped']} dropped"
                if x else None)

    if case == "burst":
        rows = [common.row(f"burst of {args.burst} message:send, 1:1 over {args.pairs} conversations, 2 processes, "
                           "msgs/s", "msgs/s", get(lien, "msgs_per_second"), get(bare, "msgs_per_second"),
                           "≥ 50 % of bare", ratio_at_least=0.5)]
    elif case == "paced":
        what = f"{args.rate:g} stored 1:1 msgs/s over {args.pairs} conversations, 2 processes"
        rows = [common.row(f"{what}, p50 ms", "p50 ms", get(lien, "p50_ms"), get(bare, "p50_ms")),
                common.row(f"{what}, p99 ms", "p99 ms", get(lien, "p99_ms"), get(bare, "p99_ms"), "< 50 ms", below=50.0)]
    elif case == "channel":
        rows = [common.row(f"class channel of {args.channel_size} at {args.rate:g} msgs/s, 2 processes, p99 ms",
                           "p99 ms", get(lien, "p99_ms"), get(bare, "p99_ms"), "< 100 ms", below=100.0)]
    else:
        what = f"class channel of {args.sockets} sockets, {args.senders} × {args.messages} closed loop"
        rows = [common.row(f"{what}, deliveries/s", "deliveries/s", get(lien, "deliveries_per_second"),
                           get(bare, "deliveries_per_second")),
                common.row(f"{what}, p99 ms", "p99 ms", get(lien, "p99_ms"), get(bare, "p99_ms"))]
    for x in rows:
        x["note"] = note(lien)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="burst,paced,channel", help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--pairs", type=int, default=100, help="direct conversations (burst, paced)")
    parser.add_argument("--teachers", type=int, default=10, help="teachers sharing the direct conversations")
    parser.add_argument("--burst", type=int, default=200, help="messages sent at once (burst)")
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s (paced, channel)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (paced, channel)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent first and not counted (paced, channel)")
    parser.add_argument("--channel-size", type=int, default=45)
    parser.add_argument("--sockets", type=int, default=1000, help="members of the broadcast channel")
    parser.add_argument("--senders", type=int, default=10, help="broadcast")
    parser.add_argument("--messages", type=int, default=20, help="per sender (broadcast)")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds a broadcast sender waits after each ack (0: as fast as acks come back)")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--redis-url", default=common.REDIS_URL)
    parser.add_argument("--pg-admin-url", default=common.PG_ADMIN_URL)
    parser.add_argument("--tmp", default=f"/tmp/lienlac-bench-{os.getpid()}")
    parser.add_argument("--only", choices=["lienlac", "bare"], default=None)
    parser.add_argument("--rounds", type=int, default=2, help="measurements per set-up, alternating; medians reported")
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file (- for stdout)")
    parser.add_argument("--bare-server", nargs=3, metavar=("PORT", "REDIS", "CHANNEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        port, redis_url, channel = args.bare_server
        bare_server(int(port), redis_url, channel)
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if set(cases) - set(CASES):
        parser.error(f"unknown case(s): {', '.join(sorted(set(cases) - set(CASES)))}")

    from tests.support.servers import Proc, free_port

    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    setups = ["bare", "lienlac"] if args.only is None else [args.only]
    procs: list = []
    load_before = common.load_now()
    figures: dict[str, dict[str, list[dict]]] = {c: {s: [] for s in setups} for c in cases}
    with common.scratch_database("lienlac_bench_rt", args.pg_admin_url) as database_url:
        try:
            urls: dict[str, list[str]] = {}
            if "bare" in setups:
                channel = f"bench-bare-{uuid.uuid4().hex}"
                ports = [free_port(), free_port()]
                env = {k: v for k, v in os.environ.items() if not k.startswith("LIENLAC_TEST")}
                bare = [Proc([sys.executable, __file__, "--bare-server", str(p), args.redis_url, channel], env,
                             tmp / f"bare-{i}.log") for i, p in enumerate(ports)]
                procs += bare
                urls["bare"] = [f"http://127.0.0.1:{p}" for p in ports]
                for proc, url in zip(bare, urls["bare"]):
                    common.wait_ready(proc, url, "bare relay", probe="/socket.io/?EIO=4&transport=polling")
            app = layouts = None
            if "lienlac" in setups:
                secret = uuid.uuid4().hex * 2
                app, layouts = seed_lienlac(database_url, secret, args, cases)
                env = common.deployment_env(database_url, args.redis_url, tmp, secret,
                                            MESSAGE_RATE_LIMIT="1000000 per minute")  # measure delivery, not the limit
                web = [common.start_serve(env, tmp, f"lienlac-{i}") for i in range(2)]
                procs += [proc for proc, _url in web]
                procs.append(common.start_worker(env, tmp, "worker"))
                for proc, url in web:
                    common.wait_ready(proc, url, "lienlac serve")
                urls["lienlac"] = [url for _proc, url in web]
            else:
                layouts = {}
            for case in cases:
                key = "direct" if case in ("burst", "paced") else case
                if key not in layouts:  # bare only: the same shapes, no database
                    layouts[key] = _shape_only(case, args)
                layout = layouts[key]
                # alternate the set-ups round by round: both see the same machine (it may be shared and busy)
                for r in range(args.rounds):
                    for setup in (setups if r % 2 == 0 else setups[::-1]):
                        if setup == "lienlac":
                            auths, convs = lienlac_auths(app, layout["users"]), layout["conversations"]
                        else:
                            auths, convs = bare_layout(layout)
                        result = measure(urls[setup], auths, plan_for(case, convs, args), args.client_procs)
                        if setup == "lienlac":  # the jobs it left (pushes) must not weigh on the next measurement
                            result["jobs_left"], result["drain_s"] = drain_jobs(args.redis_url)
                        figures[case][setup].append(result)
                        print(f"{case:9} round {r + 1} {setup:8} {result['msgs_per_second']:7.0f} msgs/s "
                              f"{result['deliveries_per_second']:7.0f} deliveries/s  p50 {result['p50_ms']:7.1f}  "
                              f"p99 {result['p99_ms']:7.1f}  max {result['max_ms']:7.1f} ms  ({result['received']}/"
                              f"{result['expected']} delivered, {result['error_count']} errors, {result['dropped']} "
                              f"dropped; {len(auths)} sockets; load {result['load'][0]:.1f}"
                              + (f"; {result['jobs_left']} jobs left, drained in {result['drain_s']:.1f} s"
                                 if result.get("jobs_left") else "") + ")"
                              + (f"  errors: {result['errors'][:2]}" if result["errors"] else ""), flush=True)
        finally:
            common.stop_all(procs)

    metrics = ("msgs_per_second", "deliveries_per_second", "p50_ms", "p99_ms", "max_ms", "mean_ms", "connect_s")
    rows, details, failures = [], {}, 0
    print(f"\nReal time over 2 web processes (Redis), gevent, {args.client_procs} client processes, {os.cpu_count()} "
          f"CPUs, median of {args.rounds} round(s); load average {load_before} before, {common.load_now()} after")
    print(f"{'case':10} {'set-up':8} {'msgs/s':>8} {'deliv/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'delivered':>15} {'errors':>6}")
    for case in cases:
        medians = {}
        for setup, runs in figures[case].items():
            medians[setup] = {m: statistics.median(x[m] for x in runs) for m in metrics} | {
                k: sum(x[k] for x in runs) for k in ("received", "expected", "error_count", "dropped")}
            m = medians[setup]
            failures += setup == "lienlac" and (m["received"] < m["expected"] or m["error_count"] > 0)
            print(f"{case:10} {setup:8} {m['msgs_per_second']:8.0f} {m['deliveries_per_second']:8.0f} "
                  f"{m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['max_ms']:8.1f} {m['received']:>7}/{m['expected']:<7} "
                  f"{m['error_count']:6}")
        details[case] = {"medians": medians, "rounds": figures[case]}
        rows += _rows(case, medians, args)
    common.write_json(args.json, "realtime", rows, details, load_before)
    return 1 if failures else 0


def drain_jobs(redis_url: str, timeout: float = 180.0) -> tuple[int, float]:
    """Wait until the worker has nothing queued or running; returns (jobs seen left, seconds waited)."""
    import redis
    from rq import Queue

    connection = redis.Redis.from_url(redis_url)
    queues = [Queue(name, connection=connection) for name in ("high", "default", "low")]

    def left() -> int:
        return sum(q.count + q.started_job_registry.count for q in queues)

    started, first = time.monotonic(), left()
    while left() and time.monotonic() - started < timeout:
        time.sleep(0.2)
    return first, time.monotonic() - started


def _shape_only(case: str, args) -> dict:
    """The layout of a case without a database (``--only bare``): socket numbers and conversations."""
    if case in ("burst", "paced"):
        convs = [(str(k), [args.teachers + k, k % args.teachers]) for k in range(args.pairs)]
        return {"users": [None] * (args.teachers + args.pairs), "conversations": convs}
    size = args.channel_size if case == "channel" else args.sockets
    return {"users": [None] * size, "conversations": [("1", list(range(size)))]}


if __name__ == "__main__":
    sys.exit(main())
