"""Contact book: a school's attendance posted class by class, and gate check-in batches (issue 10).

    python benchmarks/contactbook.py                                   # 1,500 students, 35 classes, 500-event batches
    python benchmarks/contactbook.py --students 300 --classes 7 --events 100 --rounds 2   # a quick run

Both set-ups run in the same invocation, on the same machine, with the same HTTP client:

* **lienlac**: ``lienlac serve`` as shipped (PostgreSQL in a fresh database, Redis for jobs, the
  chosen Socket.IO async mode), seeded with one school of N students in C classes (one guardian
  each, a homeroom teacher per class).
  - *attendance*: each class's homeroom teacher posts the whole class's day in one request
    (``POST /classes/{id}/attendance``; ~8 % absent, ~4 % late, so their guardians' notices are
    enqueued), ``--threads`` teachers at a time; one round = every class, on a new date.
  - *check-ins*: one gate device posts a batch of E ``in`` events of E different children, the
    morning rush (``POST /checkins``): each is stored, marks the day and enqueues the "arrived"
    notice; then the same batch again (a replay: all duplicates). Each round takes new children
    (so rounds × E ≤ N).
* **bare**: a plain Flask app on the same server stack (``flask_socketio.SocketIO.run``, same
  async mode) with the same two paths: it parses the same JSON bodies and answers bodies of the
  same shape, without authentication, validation, database or jobs.

Printed: per set-up the median over rounds of the round's wall time and the per-request p50/p99,
and the ratios lienlac / bare. Notices are only enqueued (no worker runs): the request path is
what is measured. Needs PostgreSQL (``--pg-admin-url``; a database is created and dropped) and
Redis (``--redis-url``; its database is FLUSHED before and after).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]  # benchmarks/http.py would shadow http
sys.path.insert(0, str(ROOT))

from benchmarks._common import free_port, start, stop  # noqa: E402


# --- the bare server ---------------------------------------------------------------------------
def bare_server(port: int, async_mode: str) -> None:
    if async_mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    from flask import Flask, jsonify, request
    from flask_socketio import SocketIO

    app = Flask("bare")

    @app.post("/api/v1/classes/<int:class_id>/attendance")
    def attendance(class_id):
        body = request.get_json()
        return jsonify({"class_id": str(class_id), "date": body["date"], "records": [
            {"student_id": r["student_id"], "status": r["status"], "note": r.get("note", ""), "check_in_at": None,
             "check_out_at": None, "source": "teacher", "updated_at": "2026-11-25T01:00:00Z"}
            for r in body["records"]]})

    @app.post("/api/v1/checkins")
    def checkins():
        events = request.get_json()["events"]
        return jsonify({"stored": len({e["event_id"] for e in events}), "duplicates": 0, "rejected": []})

    @app.get("/healthz")
    def health():
        return jsonify({"status": "ok"})

    socketio = SocketIO(app, async_mode=async_mode)
    kwargs = {"allow_unsafe_werkzeug": True} if async_mode == "threading" else {}
    socketio.run(app, host="127.0.0.1", port=port, use_reloader=False, log_output=False, **kwargs)


# --- processes ---------------------------------------------------------------------------------
def wait_up(proc: subprocess.Popen, url: str, timeout: float = 90) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({url}); see the logs in --tmp")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


# --- Lienlac set-up ----------------------------------------------------------------------------
def seed(database_url: str, redis_url: str, secret: str, students: int, classes: int) -> dict:
    """One school: ``classes`` classes with a homeroom teacher each, ``students`` students with a guardian each."""
    sys.path.insert(0, str(ROOT))
    from contactbook.logic import checkins
    from service.accounts import logic as accounts
    from service.roster import logic as roster
    from service.app import create_app
    from service.config import Config
    from service.db import connection, migrate, write_transaction

    app = create_app(Config(database_url=database_url, redis_url=redis_url, secret_key=secret, log_level="WARNING"),
                     web=False)
    migrate()
    with app.app_context(), connection():
        with write_transaction():
            school = roster.create_school("Trường THCS Benchmark")
            admin = roster.ensure_user("+84900000001", "Hiệu trưởng")
            roster.add_staff(school.id, admin.id, "admin")
            klasses = []
            for c in range(classes):
                teacher = roster.ensure_user(f"+8492{c:07d}", f"Giáo viên {c + 1}")
                roster.add_staff(school.id, teacher.id, "teacher")
                klasses.append((roster.create_class(school.id, f"{6 + c % 4}A{c + 1}", 6 + c % 4, teacher.id), teacher))
            members: dict[int, list[int]] = {k.id: [] for k, _ in klasses}
            all_students = []
            for i in range(students):
                klass = klasses[i % classes][0]
                student = roster.create_student(school.id, f"Học sinh {i + 1}", klass.id)
                guardian = roster.ensure_user(f"+8491{i:07d}", f"Phụ huynh {i + 1}")
                roster.link_guardian(student.id, guardian.id)
                members[klass.id].append(student.id)
                all_students.append(student.id)
        device = checkins.register_device(admin, school.id, "Cổng chính")
        family = str(uuid.uuid4())
        teachers = {k.id: accounts.issue_access_token(t.id, family, )[0] for k, t in klasses}
    return {"members": members, "students": all_students, "teachers": teachers, "device_key": device["api_key"]}


# --- the client ---------------------------------------------------------------------------------
def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def attendance_round(session, url: str, world: dict, day: dt.date, threads: int, seed_value: int) -> dict:
    rng = random.Random(seed_value)

    def body(class_id):
        records = []
        for sid in world["members"][class_id]:
            x = rng.random()
            status = "absent_unexcused" if x < 0.05 else "absent_excused" if x < 0.08 else "late" if x < 0.12 else "present"
            records.append({"student_id": str(sid), "status": status})
        return {"date": day.isoformat(), "records": records}

    bodies = {class_id: body(class_id) for class_id in world["members"]}

    def post(class_id):
        started = time.monotonic()
        r = session.post(f"{url}/api/v1/classes/{class_id}/attendance", json=bodies[class_id],
                         headers={"Authorization": f"Bearer {world['teachers'].get(class_id, '')}"})
        if r.status_code != 200:
            raise SystemExit(f"attendance answered {r.status_code}: {r.text[:300]}")
        return time.monotonic() - started

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(post, list(world["members"])))
    return {"seconds": time.monotonic() - started, "p50_ms": 1000 * _pct(latencies, 0.5),
            "p99_ms": 1000 * _pct(latencies, 0.99), "requests": len(latencies)}


def checkin_round(session, url: str, world: dict, children: list[int], now: dt.datetime) -> dict:
    base = now - dt.timedelta(minutes=50)
    tag = uuid.uuid4().hex[:8]
    events = [{"event_id": f"{tag}-{i}", "student_id": str(sid),
               "at": (base + dt.timedelta(seconds=5 * i)).isoformat(timespec="seconds") + "Z", "direction": "in"}
              for i, sid in enumerate(children)]
    headers = {"X-Device-Key": world["device_key"]}
    out = {}
    for name in ("batch", "replay"):
        started = time.monotonic()
        r = session.post(f"{url}/api/v1/checkins", json={"events": events}, headers=headers)
        out[f"{name}_ms"] = 1000 * (time.monotonic() - started)
        if r.status_code != 200:
            raise SystemExit(f"checkins answered {r.status_code}: {r.text[:300]}")
        out[f"{name}_answer"] = r.json()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=1500)
    parser.add_argument("--classes", type=int, default=35)
    parser.add_argument("--events", type=int, default=500, help="events per check-in batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="teachers posting at the same time")
    parser.add_argument("--async-mode", choices=["gevent", "threading"], default="gevent")
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/" + os.environ.get("LIENLAC_TEST_REDIS_DB", "14")))
    parser.add_argument("--pg-admin-url", default=os.environ.get("LIENLAC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--tmp", default=f"/tmp/lienlac-bench-cb-{os.getpid()}")
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file (- for stdout)")
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        bare_server(int(args.bare_server[0]), args.bare_server[1])
        return 0
    if args.rounds * args.events > args.students:
        raise SystemExit("--rounds × --events must not exceed --students (each round takes new children)")

    import peewee
    import redis as redis_lib
    import requests
    from playhouse.db_url import parse

    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    redis = redis_lib.Redis.from_url(args.redis_url)
    redis.flushdb()
    name = f"lienlac_bench_cb_{uuid.uuid4().hex[:8]}"
    admin = peewee.PostgresqlDatabase(**parse(args.pg_admin_url))
    procs: list[subprocess.Popen] = []
    load_before = os.getloadavg()
    results: dict[str, dict[str, list]] = {"bare": {}, "lienlac": {}}
    try:
        admin.connect()
        admin.execute_sql(f'CREATE DATABASE "{name}"')
        admin.close()
        database_url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
        secret = uuid.uuid4().hex + uuid.uuid4().hex
        started = time.monotonic()
        world = seed(database_url, args.redis_url, secret, args.students, args.classes)
        print(f"seeded {args.students} students in {args.classes} classes in {time.monotonic() - started:.1f}s",
              flush=True)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=args.redis_url, SECRET_KEY=secret,
                   SOCKETIO_ASYNC_MODE=args.async_mode, SOCKETIO_CHANNEL=f"bench-cb-{uuid.uuid4().hex}",
                   LOG_LEVEL="WARNING", LIENLAC_INSTANCE=str(tmp / "instance"), PYTHONPATH=str(ROOT))
        ports = {"lienlac": free_port(), "bare": free_port()}
        procs.append(start([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
                            str(ports["lienlac"]), "--no-migrate"], env, tmp / "lienlac.log"))
        procs.append(start([sys.executable, __file__, "--bare-server", str(ports["bare"]), args.async_mode],
                           dict(os.environ), tmp / "bare.log"))
        urls = {key: f"http://127.0.0.1:{port}" for key, port in ports.items()}
        for proc, url in zip(procs, (urls["lienlac"], urls["bare"])):
            wait_up(proc, url)

        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=args.threads, pool_maxsize=args.threads))
        today = dt.date.today()
        for r in range(args.rounds):
            # the set-ups alternate round by round: both see the same (shared, busy) machine
            for key in (("bare", "lienlac") if r % 2 == 0 else ("lienlac", "bare")):
                day = today - dt.timedelta(days=r + 1)
                att = attendance_round(session, urls[key], world, day, args.threads, seed_value=r)
                children = world["students"][r * args.events:(r + 1) * args.events]
                chk = checkin_round(session, urls[key], world, children, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
                for metric, value in (("att_s", att["seconds"]), ("att_p50", att["p50_ms"]), ("att_p99", att["p99_ms"]),
                                      ("batch_ms", chk["batch_ms"]), ("replay_ms", chk["replay_ms"])):
                    results[key].setdefault(metric, []).append(value)
                if key == "lienlac":
                    expected = {"stored": len(children), "duplicates": 0, "rejected": []}
                    replay = {"stored": 0, "duplicates": len(children), "rejected": []}
                    if chk["batch_answer"] != expected or chk["replay_answer"] != replay:
                        raise SystemExit(f"unexpected check-in answers: {chk['batch_answer']} / {chk['replay_answer']}")
                print(f"round {r + 1} {key:8} attendance: {att['requests']} classes in {att['seconds']:.2f}s "
                      f"(p50 {att['p50_ms']:.0f} ms, p99 {att['p99_ms']:.0f} ms); check-ins: {len(children)} events "
                      f"{chk['batch_ms']:.0f} ms, replay {chk['replay_ms']:.0f} ms (load {os.getloadavg()[0]:.1f})",
                      flush=True)
        jobs = sum(redis.llen(f"rq:queue:{q}") for q in ("high", "default", "low"))
    finally:
        stop(procs)
        redis.flushdb()
        admin.connect()
        admin.execute_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()

    med = {key: {m: statistics.median(v) for m, v in metrics.items()} for key, metrics in results.items()}
    per_class = args.students / args.classes
    print(f"\nContact book: {args.students} students in {args.classes} classes (~{per_class:.0f} per class), "
          f"{args.threads} teachers at a time; check-in batches of {args.events} events; async mode {args.async_mode}, "
          f"{os.cpu_count()} CPUs, median of {args.rounds} round(s); load average {load_before[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; {jobs} notice jobs enqueued by lienlac")
    print(f"{'':10} {'school day s':>13} {'class p50 ms':>13} {'class p99 ms':>13} {'batch ms':>10} {'replay ms':>10}")
    for key in ("bare", "lienlac"):
        m = med[key]
        print(f"{key:10} {m['att_s']:13.2f} {m['att_p50']:13.1f} {m['att_p99']:13.1f} {m['batch_ms']:10.1f} "
              f"{m['replay_ms']:10.1f}")
    l, b = med["lienlac"], med["bare"]
    print(f"{'ratio':10} {l['att_s'] / b['att_s']:13.1f} {l['att_p50'] / b['att_p50']:13.1f} "
          f"{l['att_p99'] / b['att_p99']:13.1f} {l['batch_ms'] / b['batch_ms']:10.1f} "
          f"{l['replay_ms'] / b['replay_ms']:10.1f}   (lienlac / bare)")
    print(json.dumps(med))
    from benchmarks import _common as common

    what = f"contact book, {args.students} students / {args.classes} classes ({args.async_mode})"
    common.write_json(args.json, "contactbook", [
        common.row(f"{what}: school day (attendance) s", "s", l["att_s"], b["att_s"]),
        common.row(f"{what}: class attendance p99 ms", "p99 ms", l["att_p99"], b["att_p99"]),
        common.row(f"{what}: {args.events}-event check-in batch ms", "ms", l["batch_ms"], b["batch_ms"])],
        med, list(load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
