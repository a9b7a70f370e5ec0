"""Meal logs for a whole school: Lienlac's ``POST /classes/{id}/meal-logs`` against a bare Flask app.

    python benchmarks/nutrition.py [--children 1500] [--class-size 45] [--clients 4] [--rounds 2]
                                   [--async-mode threading|gevent]

One run, same machine, same client:

* **lienlac**: ``lienlac serve`` as shipped (one process, Socket.IO server included; ``threading``
  unless ``--async-mode gevent``), a fresh PostgreSQL database and Redis for jobs. One school of N
  children in classes of ``--class-size`` (one guardian each), its cafeteria staff member, three
  dishes and a published lunch menu holding peanuts; 5 % of the children are allergic to peanuts.
  The cafeteria posts the lunch log of every class, one request per class (``--clients`` at a
  time): authorisation, validation (each child in the class), the menu read, one bulk upsert of the
  class's entries, allergy flags, and the alert ledger plus ``notify`` for the allergic children
  (enqueued to Redis; no worker runs, so pushes are not part of the figure).
* **bare**: a plain Flask app (same server: Werkzeug threaded, or gevent's WSGI server) that parses
  the same JSON and runs one ``INSERT … ON CONFLICT DO UPDATE`` of the entries into a table of the
  same shape with psycopg2 (a connection pool), and answers ``{logged}``. No auth, no checks, no ORM.

Rounds alternate (``--rounds``; each round posts the whole school again: the second post of a day
corrects the first, the same work). Printed per set-up: the whole school's wall time, requests/s,
entries/s and per-request p50/p99, and the Lienlac/bare ratios. The run checks that every child has
exactly one entry and that the answers flagged exactly the allergic children.

Environment: LIENLAC_TEST_PG (PostgreSQL admin URL, default postgresql://postgres@127.0.0.1:5432/test),
LIENLAC_TEST_REDIS (default redis://127.0.0.1:6379) and LIENLAC_TEST_REDIS_DB (default 15; FLUSHED).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# this file is named like the package it measures: keep benchmarks/ off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


from benchmarks._common import free_port, start, stop, wait_up  # noqa: E402

BARE_TABLE = "bare_meal_entry"


# --- the bare server -------------------------------------------------------------------------------
def bare_server(port: int, database_url: str, async_mode: str) -> None:
    if async_mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    from flask import Flask, jsonify, request
    from playhouse.db_url import parse
    from psycopg2.pool import ThreadedConnectionPool

    pool = ThreadedConnectionPool(1, 32, **{("dbname" if k == "database" else k): v
                                            for k, v in parse(database_url).items()})
    app = Flask("bare")

    @app.post("/classes/<int:class_id>/meal-logs")
    def log(class_id):
        body = request.get_json()
        now = dt.datetime.utcnow()
        rows = [(int(e["student_id"]), body["date"], body["meal"], class_id, e["portion"], e.get("note") or "", now)
                for e in body["entries"]]
        conn = pool.getconn()
        try:
            with conn, conn.cursor() as cur:
                args = ",".join(cur.mogrify("(%s,%s,%s,%s,%s,%s,%s)", r).decode() for r in rows)
                cur.execute(f"INSERT INTO {BARE_TABLE} (student_id, date, meal, meal_log_id, portion, note, updated_at) "
                            f"VALUES {args} ON CONFLICT (student_id, date, meal) DO UPDATE SET "
                            "portion = EXCLUDED.portion, note = EXCLUDED.note, meal_log_id = EXCLUDED.meal_log_id, "
                            "updated_at = EXCLUDED.updated_at")
        finally:
            pool.putconn(conn)
        return jsonify({"logged": len(rows), "flags": []})

    if async_mode == "gevent":
        import socket

        from gevent import pywsgi

        class NoDelay(pywsgi.WSGIHandler):  # as lienlac serve: TCP_NODELAY
            def handle(self):
                self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return super().handle()

        pywsgi.WSGIServer(("127.0.0.1", port), app, log=None, handler_class=NoDelay).serve_forever()
    else:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app.run("127.0.0.1", port, threaded=True, use_reloader=False)


# --- seeding -----------------------------------------------------------------------------------------
def seed(database_url: str, redis_url: str, secret: str, children: int, class_size: int, day: dt.date) -> dict:
    """One school, its classes of ``class_size``, one guardian a child, cafeteria staff, a published lunch."""
    from nutrition import logic
    from service.accounts import logic as accounts
    from service.roster import logic as roster
    from service.app import create_app
    from service.config import Config
    from service.db import connection, db, migrate, write_transaction
    from service.accounts.models import User
    from service.roster.models import Student, StudentGuardian

    app = create_app(Config(database_url=database_url, redis_url=redis_url, secret_key=secret,
                            log_level="WARNING"), web=False)
    migrate()
    with app.app_context(), connection():
        school = roster.create_school("Trường benchmark dinh dưỡng")
        cook = roster.ensure_user("+84900000001", "Cô nuôi")
        roster.add_staff(school.id, cook.id, "cafeteria")
        classes: dict[int, list[int]] = {}
        with write_transaction():
            for c in range((children + class_size - 1) // class_size):
                teacher = roster.ensure_user(f"+8490{c + 100:07d}", f"Cô giáo {c}")
                roster.add_staff(school.id, teacher.id, "teacher")
                klass = roster.create_class(school.id, f"Lớp {c + 1}", 1, teacher.id)
                size = min(class_size, children - c * class_size)
                Student.insert_many([{"school": school.id, "school_class": klass.id, "name": f"Học sinh {c}-{i}",
                                      "birth_date": dt.date(2021, 1 + i % 12, 1 + i % 28)} for i in range(size)]).execute()
                classes[klass.id] = [s.id for s in Student.select(Student.id).where(Student.school_class == klass.id)
                                     .order_by(Student.id)]
            ids = [s for members in classes.values() for s in members]
            User.insert_many([{"phone": f"+8491{i:07d}", "name": f"Phụ huynh {i}"} for i in range(len(ids))]).execute()
            guardians = [u.id for u in User.select(User.id).where(User.phone.startswith("+8491")).order_by(User.id)]
            StudentGuardian.insert_many([{"student": s, "guardian": g} for s, g in zip(ids, guardians)]).execute()
        dishes = [logic.create_dish(cook, school.id, d)["id"] for d in (
            {"name": "Cơm", "kcal": 130, "protein_g": 2.7, "fat_g": 0.3, "carbs_g": 28, "allergens": []},
            {"name": "Thịt kho", "kcal": 250, "protein_g": 17, "fat_g": 19, "carbs_g": 3, "allergens": ["soy"]},
            {"name": "Rau xào lạc", "kcal": 90, "protein_g": 3, "fat_g": 6, "carbs_g": 7, "allergens": ["peanut"]})]
        allergic = set(ids[::20])  # 5 %
        from nutrition.models import StudentAllergy

        StudentAllergy.insert_many([{"student": s, "allergen": "peanut"} for s in sorted(allergic)]).execute()
        logic.put_menu(cook, school.id, day, [{"meal": "lunch", "dish_ids": dishes}])
        logic.publish(cook, school.id, day, day)
        token = accounts.issue_access_token(cook.id, str(uuid.uuid4()))[0]
        db.execute_sql(f"CREATE TABLE {BARE_TABLE} (LIKE nutrition_meal_entry INCLUDING DEFAULTS INCLUDING INDEXES)")
    return {"classes": classes, "token": token, "allergic": allergic}


def count_entries(database_url: str, day: dt.date) -> tuple[int, int, int]:
    import peewee
    from playhouse.db_url import parse

    db = peewee.PostgresqlDatabase(**parse(database_url))
    with db.connection_context():
        ours = db.execute_sql("SELECT count(*), count(DISTINCT student_id) FROM nutrition_meal_entry WHERE date = %s",
                              (day,)).fetchone()
        bare = db.execute_sql(f"SELECT count(*) FROM {BARE_TABLE}").fetchone()[0]
    return ours[0], ours[1], bare


# --- measuring ----------------------------------------------------------------------------------------
def post_school(url: str, token: str | None, classes: dict[int, list[int]], day: dt.date, clients: int) -> dict:
    import requests

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=clients, pool_maxsize=clients))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    portions = ("all", "most", "half", "little", "none")

    def one(item):
        class_id, students = item
        body = {"date": day.isoformat(), "meal": "lunch",
                "entries": [{"student_id": str(s), "portion": portions[s % 5], "note": "" if s % 7 else "Ăn chậm"}
                            for s in students]}
        started = time.monotonic()
        response = session.post(f"{url}/classes/{class_id}/meal-logs", data=json.dumps(body), headers=headers)
        elapsed = time.monotonic() - started
        response.raise_for_status()
        return elapsed, response.json()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, classes.items()))
    wall = time.monotonic() - started
    latencies = sorted(r[0] for r in results)
    entries = sum(len(s) for s in classes.values())
    flagged = {int(f["student_id"]) for _, body in results for f in body["flags"]}
    return {"wall_s": wall, "requests_per_s": len(classes) / wall, "entries_per_s": entries / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "logged": sum(r[1]["logged"] for r in results), "flagged": flagged}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=1500)
    parser.add_argument("--class-size", type=int, default=45)
    parser.add_argument("--clients", type=int, default=4, help="requests in flight at once")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--async-mode", choices=["threading", "gevent"], default="threading",
                        help="lienlac serve's SOCKETIO_ASYNC_MODE (threading: as shipped) and the bare server's")
    parser.add_argument("--tmp", default=f"/tmp/lienlac-bench-nutrition-{os.getpid()}")
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file (- for stdout)")
    parser.add_argument("--bare-server", nargs=3, metavar=("PORT", "DATABASE_URL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        port, database_url, mode = args.bare_server
        bare_server(int(port), database_url, mode)
        return 0

    import peewee
    import redis
    from playhouse.db_url import parse

    pg_admin = os.environ.get("LIENLAC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    redis_url = (os.environ.get("LIENLAC_TEST_REDIS", "redis://127.0.0.1:6379") + "/"
                 + os.environ.get("LIENLAC_TEST_REDIS_DB", "15"))
    redis.Redis.from_url(redis_url).flushdb()
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    name = f"lienlac_bench_nutrition_{uuid.uuid4().hex[:8]}"
    admin = peewee.PostgresqlDatabase(**parse(pg_admin))
    admin.connect()
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    admin.close()
    database_url = pg_admin.rsplit("/", 1)[0] + "/" + name
    day = dt.date.today() + dt.timedelta(days=1)
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    procs = []
    load_before = os.getloadavg()
    rounds: dict[str, list[dict]] = {"bare": [], "lienlac": []}
    try:
        t0 = time.monotonic()
        world = seed(database_url, redis_url, secret, args.children, args.class_size, day)
        print(f"seeded {args.children} children in {len(world['classes'])} classes in {time.monotonic() - t0:.1f} s",
              flush=True)
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, SECRET_KEY=secret,
                   SOCKETIO_ASYNC_MODE=args.async_mode, LOG_LEVEL="WARNING", LIENLAC_INSTANCE=str(tmp / "instance"),
                   SOCKETIO_CHANNEL=f"bench-nutrition-{uuid.uuid4().hex}", PYTHONPATH=str(ROOT))
        ports = {"lienlac": free_port(), "bare": free_port()}
        procs.append(start([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1",
                            "--port", str(ports["lienlac"]), "--no-migrate"], env, tmp / "lienlac.log"))
        wait_up(procs[-1], f"http://127.0.0.1:{ports['lienlac']}/healthz")
        procs.append(start([sys.executable, __file__, "--bare-server", str(ports["bare"]), database_url, args.async_mode],
                           dict(os.environ), tmp / "bare.log"))
        wait_up(procs[-1], f"http://127.0.0.1:{ports['bare']}/")
        targets = {"lienlac": (f"http://127.0.0.1:{ports['lienlac']}/api/v1", world["token"]),
                   "bare": (f"http://127.0.0.1:{ports['bare']}", None)}
        for r in range(args.rounds):
            for key in (("bare", "lienlac") if r % 2 == 0 else ("lienlac", "bare")):
                url, token = targets[key]
                result = post_school(url, token, world["classes"], day, args.clients)
                rounds[key].append(result)
                print(f"round {r + 1} {key:8} school in {result['wall_s']:6.2f} s  {result['requests_per_s']:6.1f} req/s  "
                      f"{result['entries_per_s']:7.0f} entries/s  p50 {result['p50_ms']:7.1f} ms  p99 "
                      f"{result['p99_ms']:7.1f} ms  (load {os.getloadavg()[0]:.1f})", flush=True)
        ours, distinct, bare_rows = count_entries(database_url, day)
        flagged = rounds["lienlac"][0]["flagged"]
        assert ours == distinct == args.children, (ours, distinct)
        assert bare_rows == args.children, bare_rows
        assert all(r["logged"] == args.children for rs in rounds.values() for r in rs)
        assert flagged == world["allergic"], (len(flagged), len(world["allergic"]))
    finally:
        stop(procs)
        admin.connect()
        admin.execute_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
        redis.Redis.from_url(redis_url).flushdb()

    summary = {key: {m: statistics.median(r[m] for r in rs) for m in ("wall_s", "requests_per_s", "entries_per_s",
                                                                     "p50_ms", "p99_ms")} for key, rs in rounds.items()}
    classes = len(world["classes"])
    print(f"\nMeal logs for a whole school: {args.children} children, {classes} classes of ≤{args.class_size} "
          f"(one request each), {args.clients} clients in flight, async mode {args.async_mode}, {os.cpu_count()} CPUs, "
          f"median of {args.rounds} round(s); load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after. "
          f"Checked: {args.children} entries, {len(world['allergic'])} allergic children flagged.")
    print(f"{'':10} {'school s':>9} {'req/s':>8} {'entries/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for key in ("bare", "lienlac"):
        s = summary[key]
        print(f"{key:10} {s['wall_s']:9.2f} {s['requests_per_s']:8.1f} {s['entries_per_s']:10.0f} {s['p50_ms']:8.1f} "
              f"{s['p99_ms']:8.1f}")
    b, l = summary["bare"], summary["lienlac"]
    print(f"{'ratio':10} {l['wall_s'] / b['wall_s']:9.2f} {l['requests_per_s'] / b['requests_per_s']:8.2f} "
          f"{l['entries_per_s'] / b['entries_per_s']:10.2f} {l['p50_ms'] / b['p50_ms']:8.2f} {l['p99_ms'] / b['p99_ms']:8.2f}"
          "   (lienlac / bare)")
    print(json.dumps(summary))
    from benchmarks import _common as common

    what = f"meal logs of {args.children} children in {classes} classes ({args.async_mode})"
    common.write_json(args.json, "nutrition", [
        common.row(f"{what}, whole school s", "s", l["wall_s"], b["wall_s"]),
        common.row(f"{what}, entries/s", "entries/s", l["entries_per_s"], b["entries_per_s"]),
        common.row(f"{what}, p99 ms", "p99 ms", l["p99_ms"], b["p99_ms"])], summary, list(load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
