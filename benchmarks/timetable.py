"""A student's week (``GET /students/{id}/timetable``) at a fixed request rate, against a bare Flask route.

    python benchmarks/timetable.py                       # 200 requests/s for 30 s, threading (as shipped)
    python benchmarks/timetable.py --rate 100 --seconds 10 --async-mode gevent

Both set-ups run in the same invocation, on the same machine, with the same load generator:

* **lienlac**: one ``lienlac serve`` process (as shipped: ``SOCKETIO_ASYNC_MODE`` threading unless
  ``--async-mode gevent``, INFO request logs, in-process jobs) on a fresh PostgreSQL database seeded
  with one school, a term, a class with a full timetable (6 days × 8 periods, each with its teacher)
  and a few changes in the measured week, and ``--families`` guardians each with a child in it.
  Each request is a real guardian's: token checks, the roster access check, timezone, terms,
  periods, changes, names, serialisation.
* **bare**: a plain Flask app in its own process, served by the same server (Werkzeug, threaded; or
  gevent's WSGI server with ``--async-mode gevent``), whose one route returns the same JSON body
  (captured from Lienlac) with no database and no auth.

The load is open loop: request i is due at ``start + i / rate`` whatever happened to the others,
and its latency is measured from when it was due (so a server that falls behind shows its queue,
not a flattering closed-loop figure). asyncio + aiohttp over at most ``--connections`` (100)
keep-alive connections: a request due while all are busy waits for one, and that wait counts. The
first ``--warmup`` seconds are not counted. A request not answered in 60 s is an error. Printed per
set-up: requests sent, errors, achieved rate, p50 / p90 / p99 / max latency in ms.

Needs PostgreSQL (LIENLAC_TEST_PG admin URL, default postgresql://postgres@127.0.0.1:5432/test); a
database is created and dropped.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEEK = "2026-W48"

BARE_APP = r'''
import json, sys
mode, port, body_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "gevent":
    from gevent import monkey
    monkey.patch_all()
from flask import Flask, Response
body = open(body_file, "rb").read()
app = Flask("bare")

@app.get("/api/v1/students/<int:student_id>/timetable")
def week(student_id):
    return Response(body, content_type="application/json")

@app.get("/healthz")
def health():
    return {"status": "ok"}

if mode == "gevent":
    from gevent.pywsgi import WSGIServer
    WSGIServer(("127.0.0.1", port), app, log=None).serve_forever()
else:
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run("127.0.0.1", port, threaded=True)
'''


def seed(families: int) -> dict:
    """One school, a term, class 6A with a full timetable and changes in WEEK, ``families`` guardians."""
    from schedules import logic
    from service.accounts import logic as accounts
    from service.roster import logic as roster

    school = roster.create_school("Trường THCS Benchmark")
    admin = roster.ensure_user("+84900000001", "Hiệu trưởng")
    roster.add_staff(school.id, admin.id, "admin")
    teachers = []
    for i in range(12):
        user = roster.ensure_user(f"+8490100{i:04d}", f"Giáo viên {i}")
        roster.add_staff(school.id, user.id, "teacher")
        teachers.append(user)
    klass = roster.create_class(school.id, "6A", grade=6, homeroom_teacher_id=teachers[0].id)
    year = roster.create_school_year(school.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
    term = roster.create_term(year.id, "Học kỳ I", dt.date(2026, 9, 7), dt.date(2026, 12, 31))
    subjects = ["Toán", "Ngữ văn", "Tiếng Anh", "Khoa học tự nhiên", "Lịch sử và Địa lí", "Tin học",
                "Công nghệ", "Giáo dục công dân", "Nghệ thuật", "Giáo dục thể chất", "Hoạt động trải nghiệm", "Toán"]
    periods = []
    for weekday in range(1, 7):
        for p in range(1, 9):
            start = 7 * 60 + (p - 1) * 50 + (20 if p > 4 else 0) + (90 if p > 5 else 0)
            t = (weekday * 3 + p) % len(teachers)
            periods.append({"weekday": weekday, "period": p, "start": f"{start // 60:02d}:{start % 60:02d}",
                            "end": f"{(start + 45) // 60:02d}:{(start + 45) % 60:02d}", "subject": subjects[t],
                            "teacher_id": teachers[t].id, "room": "P.201"})
    logic.set_timetable(admin, klass.id, term.id, periods)
    monday = dt.date.fromisocalendar(2026, 48, 1)
    logic.post_change(admin, klass.id, {"date": monday + dt.timedelta(days=3), "period": 2, "kind": "cancelled",
                                        "note": "Giáo viên đi tập huấn"})
    logic.post_change(admin, klass.id, {"date": monday, "period": 3, "kind": "substitute",
                                        "teacher_id": next(t.id for t in teachers if t.id != periods[2]["teacher_id"])})
    logic.post_change(admin, klass.id, {"date": monday + dt.timedelta(days=1), "period": 8, "kind": "moved",
                                        "to_date": monday + dt.timedelta(days=5), "to_period": 8})
    pairs = []
    for i in range(families):
        student = roster.create_student(school.id, f"Học sinh {i}", class_id=klass.id)
        guardian = roster.ensure_user(f"+8491{i:07d}", f"Phụ huynh {i}")
        roster.link_guardian(student.id, guardian.id, "mother")
        pairs.append((student.id, accounts.start_session(guardian)["access_token"]))
    return {"pairs": pairs}


async def _load(base: str, pairs: list, rate: float, seconds: float, warmup: float, connections: int) -> dict:
    import aiohttp

    total = int(rate * (seconds + warmup))
    results: list[tuple[float, float, int]] = []  # (due, done, status)
    connector = aiohttp.TCPConnector(limit=connections)  # beyond it requests wait (still timed from when due)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(i: int, due: float):
            student_id, token = pairs[i % len(pairs)]
            status = 0
            try:
                async with session.get(f"{base}/api/v1/students/{student_id}/timetable?week={WEEK}",
                                       headers={"Authorization": f"Bearer {token}"}) as response:
                    await response.read()
                    status = response.status
            except Exception:
                status = -1
            results.append((due, time.monotonic(), status))

        start = time.monotonic() + 0.2
        tasks = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, due)))
        await asyncio.gather(*tasks)
    counted = [(due, done, status) for due, done, status in results if due >= start + warmup]
    ok = sorted((done - due) * 1000 for due, done, status in counted if status == 200)
    errors = sum(1 for *_x, status in counted if status != 200)
    span = max(done for _d, done, _s in counted) - min(due for due, _d, _s in counted)

    def pct(p):
        return ok[min(len(ok) - 1, int(round(p / 100 * (len(ok) - 1))))] if ok else float("nan")

    return {"sent": len(counted), "errors": errors, "rate": len(counted) / span if span else 0.0,
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": ok[-1] if ok else float("nan"),
            "mean": statistics.fmean(ok) if ok else float("nan")}


def _print(name: str, r: dict) -> None:
    print(f"  {name:<8} sent {r['sent']:>6}  errors {r['errors']:>4}  achieved {r['rate']:>6.1f}/s  "
          f"p50 {r['p50']:>7.1f} ms  p90 {r['p90']:>7.1f} ms  p99 {r['p99']:>7.1f} ms  max {r['max']:>7.1f} ms",
          flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds sent first and not counted")
    parser.add_argument("--families", type=int, default=40, help="guardians (each with a child in the class)")
    parser.add_argument("--connections", type=int, default=100,
                        help="keep-alive connections at most (a request due while all are busy waits, and that wait counts)")
    parser.add_argument("--async-mode", default="threading", choices=["threading", "gevent"])
    args = parser.parse_args(argv)

    import peewee
    import requests
    from playhouse.db_url import parse

    from service import db as dbmod
    from service.app import create_app
    from service.config import Config
    from tests.support.servers import PG_ADMIN_URL, Proc, free_port, process_env, start_web, wait_http_ok

    name = f"lienlac_bench_tt_{os.getpid()}"
    admin = peewee.PostgresqlDatabase(**parse(PG_ADMIN_URL))
    admin.connect()
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    admin.close()
    pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    tmp = Path(tempfile.mkdtemp(prefix="lienlac-bench-tt-"))
    procs = []
    try:
        from tests.support.servers import SHARED_SECRET

        app = create_app(Config(database_url=pg_url, redis_url=None, secret_key=SHARED_SECRET, log_level="WARNING",
                                jobs_inline=True), web=False)
        ctx = app.app_context()
        ctx.push()
        dbmod.migrate()
        dbmod.db.connect(reuse_if_open=True)
        seeded = seed(args.families)
        dbmod.db.close()

        env = process_env(pg_url, None, tmp, LOG_LEVEL="INFO", SOCKETIO_ASYNC_MODE=args.async_mode)
        web, base = start_web(env, tmp, "lienlac")
        procs.append(web)
        student_id, token = seeded["pairs"][0]
        sample = requests.get(f"{base}/api/v1/students/{student_id}/timetable?week={WEEK}",
                              headers={"Authorization": f"Bearer {token}"})
        sample.raise_for_status()
        periods = sum(len(d["periods"]) for d in sample.json()["days"])
        body_file = tmp / "week.json"
        body_file.write_bytes(sample.content)

        port = free_port()
        bare = Proc([sys.executable, "-c", BARE_APP, args.async_mode, str(port), str(body_file)], env,
                    tmp / "bare.log")
        procs.append(bare)
        bare_base = f"http://127.0.0.1:{port}"
        wait_http_ok(bare, bare_base, "bare")

        print(f"GET /students/{{id}}/timetable?week={WEEK}: {periods} periods, {len(sample.content):,} bytes; "
              f"open loop at {args.rate:.0f} requests/s for {args.seconds:.0f} s (+{args.warmup:.0f} s warm-up); "
              f"one web process, {args.async_mode}; load average {os.getloadavg()[0]:.1f}", flush=True)
        figures = {}
        for label, url in (("lienlac", base), ("bare", bare_base)):
            figures[label] = asyncio.run(_load(url, seeded["pairs"], args.rate, args.seconds, args.warmup, args.connections))
            _print(label, figures[label])
        lien, bare_r = figures["lienlac"], figures["bare"]
        print(f"  ratio    p50 {lien['p50'] / bare_r['p50']:.1f}×  p99 {lien['p99'] / bare_r['p99']:.1f}×  "
              f"(load average after: {os.getloadavg()[0]:.1f})", flush=True)
        return 0 if lien["errors"] == 0 else 1
    finally:
        for proc in procs:
            proc.kill()
        try:
            dbmod.db.close_all() if hasattr(dbmod.db.obj, "close_all") else dbmod.db.close()
        except Exception:
            pass
        admin.connect()
        admin.execute_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                          "AND pid <> pg_backend_pid()")
        admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
