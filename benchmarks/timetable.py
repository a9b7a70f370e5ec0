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
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

# the repository root, not this folder, on sys.path (benchmarks/http.py would shadow the standard library's http)
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

WEEK = "2026-W48"


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
    periods = common.week_periods([t.id for t in teachers])
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds sent first and not counted")
    parser.add_argument("--families", type=int, default=40, help="guardians (each with a child in the class)")
    parser.add_argument("--connections", type=int, default=100,
                        help="keep-alive connections at most (a request due while all are busy waits, and that wait counts)")
    parser.add_argument("--async-mode", default="threading", choices=["threading", "gevent"])
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file (- for stdout)")
    args = parser.parse_args(argv)

    import requests

    from service import db as dbmod
    from service.app import create_app
    from service.config import Config
    from tests.support.servers import SHARED_SECRET, process_env, start_web

    load_before = common.load_now()
    tmp = Path(tempfile.mkdtemp(prefix="lienlac-bench-tt-"))
    procs = []
    with common.scratch_database("lienlac_bench_tt") as pg_url:
        try:
            app = create_app(Config(database_url=pg_url, redis_url=None, secret_key=SHARED_SECRET,
                                    log_level="WARNING", jobs_inline=True), web=False)
            ctx = app.app_context()
            ctx.push()
            dbmod.migrate()
            dbmod.db.connect(reuse_if_open=True)
            seeded = seed(args.families)
            dbmod.db.close()

            env = process_env(pg_url, None, tmp, LOG_LEVEL="INFO", SOCKETIO_ASYNC_MODE=args.async_mode)
            web, base = start_web(env, tmp, "lienlac")
            procs.append(web)
            targets = [(f"/api/v1/students/{student_id}/timetable?week={WEEK}", {"Authorization": f"Bearer {token}"})
                       for student_id, token in seeded["pairs"]]
            sample = requests.get(base + targets[0][0], headers=targets[0][1])
            sample.raise_for_status()
            periods = sum(len(d["periods"]) for d in sample.json()["days"])
            bare, bare_base = common.start_bare_flask({targets[0][0]: sample.content}, tmp, args.async_mode)
            procs.append(bare)

            print(f"GET /students/{{id}}/timetable?week={WEEK}: {periods} periods, {len(sample.content):,} bytes; "
                  f"open loop at {args.rate:.0f} requests/s for {args.seconds:.0f} s (+{args.warmup:.0f} s warm-up); "
                  f"one web process, {args.async_mode}; load average {os.getloadavg()[0]:.1f}", flush=True)
            figures = {}
            for label, url in (("lienlac", base), ("bare", bare_base)):
                figures[label] = common.open_loop(url, targets, args.rate, args.seconds, args.warmup, args.connections)
                common.print_http(label, figures[label])
            lien, bare_r = figures["lienlac"], figures["bare"]
            print(f"  ratio    p50 {lien['p50'] / bare_r['p50']:.1f}×  p99 {lien['p99'] / bare_r['p99']:.1f}×  "
                  f"(load average after: {os.getloadavg()[0]:.1f})", flush=True)
            row = common.row(f"GET /students/{{id}}/timetable?week= at {args.rate:g} req/s ({args.async_mode}), p99 ms",
                             "p99 ms", lien["p99"], bare_r["p99"])
            row["note"] = f"{lien['rate']:.0f}/s achieved, {lien['errors']} errors of {lien['sent']}"
            common.write_json(args.json, "timetable", [row], figures, load_before)
            return 0 if lien["errors"] == 0 else 1
        finally:
            common.stop_all(procs)
            try:
                dbmod.db.close_all() if hasattr(dbmod.db.obj, "close_all") else dbmod.db.close()
            except Exception:  # noqa: BLE001
                pass


if __name__ == "__main__":
    sys.exit(main())
