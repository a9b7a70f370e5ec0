"""The HTTP hot paths at a fixed request rate (open loop), one ``lienlac serve`` beside a bare Flask route.

    python benchmarks/http.py                                   # 200 requests/s, 15 s a path; then the embedded default at 10/s
    python benchmarks/http.py --paths conversations --rate 100 --seconds 10 --sections pg

Two sections, each in the same invocation, on the same machine, with the same load generator:

* **pg** (production): ONE ``lienlac serve --host 127.0.0.1 --port P`` started as the README's
  deployment section says (DATABASE_URL PostgreSQL, REDIS_URL, the gevent server, a Socket.IO
  channel of its own, INFO request logs) plus one ``lienlac worker``, on a fresh database seeded
  with one school: ``--classes`` (3) classes of ``--class-size`` (40) students, a guardian each, a
  full timetable per class, ``--teachers`` (4) teachers who teach every class (so 3 class
  channels each) and a direct conversation with each of ``--directs`` (40) guardians, every
  conversation with ``--history`` (8) messages, and ``--notifications`` (20) announcements in every
  guardian's inbox.
* **embedded**: the embedded default (SQLite, no Redis, nothing set but DATABASE_URL and
  SECRET_KEY), the same seed, at ``--embedded-rate`` (10/s): the figure there is the p50.

Paths (``--paths``, comma-separated names): ``conversations`` (``GET /conversations``, the
teachers), ``messages`` (``GET /conversations/{id}/messages``, the teachers' conversations in
turn), ``notifications`` (the inbox), ``unread`` (``GET /notifications/unread-count``), ``me``,
``timetable`` (``GET /students/{id}/timetable?week=``) and ``contactbook``
(``GET /students/{id}/contact-book?date=``), all as the guardians in turn unless said.

The baseline, **bare**: a plain Flask app in its own process on gevent's WSGI server answering each
path with the bytes Lienlac answered for it (captured first): no database, no auth. Before the
paths, the load generator's own ceiling is measured against the bare server (closed loop, as fast
as it goes): an open loop far below it measures the server, not the client.

The load is open loop (``benchmarks/_common.py``: request i is due at start + i / rate, latency
counted from when it was due, at most ``--connections`` keep-alive connections, ``--client-procs``
client processes). Printed per path and set-up: requests, errors, achieved rate, p50 / p99 / max ms
and the client's own lag. ``--json PATH`` writes the rows of ``run.sh``'s table.

Needs PostgreSQL (LIENLAC_TEST_PG admin URL; a database is created and dropped) and Redis
(``--redis-url``, default database 6: RQ's queues there are used by this run's worker).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path

# the repository root, not this folder, on sys.path: this file would shadow the standard library's http
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

WEEK, DAY = "2026-W48", "2026-11-24"
PATHS = ("conversations", "messages", "notifications", "unread", "me", "timetable", "contactbook")


def seed(database_url: str, secret: str, sizes: dict) -> dict:
    """The school of the module docstring; returns ids and access tokens (a session each)."""
    import datetime as dt

    from messaging.logic import conversations, sending
    from notifications import logic as notifications
    from schedules import logic as schedules
    from service import db as dbmod
    from service.accounts import logic as accounts
    from service.app import create_app
    from service.config import Config
    from service.roster import logic as roster

    app = create_app(Config(database_url=database_url, redis_url=None, secret_key=secret, log_level="WARNING",
                            jobs_inline=True, message_rate_limit="1000000 per minute"), web=False)
    with app.app_context():
        dbmod.migrate()
        dbmod.db.connect(reuse_if_open=True)
        school = roster.create_school("Trường THCS Benchmark")
        admin = roster.ensure_user("+84900000001", "Hiệu trưởng")
        roster.add_staff(school.id, admin.id, "admin")
        staff = []
        for i in range(max(12, sizes["teachers"])):
            user = roster.ensure_user(f"+8490100{i:04d}", f"Giáo viên {i}")
            roster.add_staff(school.id, user.id, "teacher")
            staff.append(user)
        chat_teachers = staff[:sizes["teachers"]]
        year = roster.create_school_year(school.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
        term = roster.create_term(year.id, "Học kỳ I", dt.date(2026, 9, 7), dt.date(2026, 12, 31))
        classes, students, guardians = [], [], []
        for c in range(sizes["classes"]):
            klass = roster.create_class(school.id, f"6A{c + 1}", grade=6, homeroom_teacher_id=staff[c % len(staff)].id)
            for t in chat_teachers:
                roster.assign_subject_teacher(klass.id, t.id, common.SUBJECTS[c])
            schedules.set_timetable(admin, klass.id, term.id,
                                    common.week_periods([u.id for u in staff], c * len(staff) // sizes["classes"]))
            classes.append(klass)
        for i in range(sizes["classes"] * sizes["class_size"]):
            klass = classes[i % len(classes)]  # interleaved: the first guardians have children in every class
            student = roster.create_student(school.id, f"Học sinh {i}", class_id=klass.id)
            guardian = roster.ensure_user(f"+8491{i:07d}", f"Phụ huynh {i}")
            roster.link_guardian(student.id, guardian.id, "mother")
            students.append(student)
            guardians.append(guardian)
        by_teacher: dict[int, list[int]] = {t.id: [] for t in chat_teachers}
        for i in range(min(sizes["directs"], len(students))):
            for t in chat_teachers:
                conv, _created = conversations.open_direct(guardians[i].id, students[i].id, [t.id])
                by_teacher[t.id].append(conv.id)
                for n in range(sizes["history"]):
                    sender = guardians[i].id if n % 2 == 0 else t.id
                    sending.send_message(sender, conv, f"seed-{conv.id}-{n}", f"Tin nhắn {n} về con {i}")
        channels = conversations.ensure_class_conversations(k.id for k in classes)
        for c, klass in enumerate(classes):
            conv = conversations.conversation_for(chat_teachers[0].id, channels[klass.id])
            for t in chat_teachers:
                by_teacher[t.id].append(conv.id)
            for n in range(sizes["history"]):
                sending.send_message(chat_teachers[n % len(chat_teachers)].id, conv, f"seed-c{conv.id}-{n}",
                                     f"Thông báo lớp {klass.name} số {n}")
        everyone = [g.id for g in guardians]
        for n in range(sizes["notifications"]):
            notifications.notify(everyone, "announcement", f"Thông báo {n}", "Kính gửi quý phụ huynh …",
                                 {"type": "announcement", "id": str(n)})
        teachers = [(t.id, accounts.start_session(t)["access_token"], by_teacher[t.id]) for t in chat_teachers]
        families = [(g.id, accounts.start_session(g)["access_token"], s.id) for g, s in zip(guardians, students)]
        if dbmod.is_postgres():  # the statistics a live database has (autovacuum would take a minute to)
            dbmod.db.execute_sql("ANALYZE")
        dbmod.db.close()
    return {"teachers": teachers, "guardians": families}


def _seed_in_child(database_url: str, secret: str, sizes: dict) -> dict:
    """Seed in a process of its own: the app's globals stay out of this one (two sections, two databases)."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(seed, (database_url, secret, sizes))


def targets(seeded: dict) -> dict[str, list[tuple[str, dict]]]:
    """Per path: the (path, headers) requests taken in turn."""
    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    api = "/api/v1"
    teachers, families = seeded["teachers"], seeded["guardians"]
    history = [(f"{api}/conversations/{conv}/messages", auth(token)) for _id, token, convs in teachers for conv in convs]
    history = history[::2] + history[1::2]  # teachers and conversations interleaved
    return {
        "conversations": [(f"{api}/conversations", auth(token)) for _id, token, _c in teachers],
        "messages": history,
        "notifications": [(f"{api}/notifications", auth(token)) for _id, token, _s in families],
        "unread": [(f"{api}/notifications/unread-count", auth(token)) for _id, token, _s in families],
        "me": [(f"{api}/me", auth(token)) for _id, token, _s in families],
        "timetable": [(f"{api}/students/{s}/timetable?week={WEEK}", auth(token)) for _id, token, s in families],
        "contactbook": [(f"{api}/students/{s}/contact-book?date={DAY}", auth(token)) for _id, token, s in families],
    }


def capture(base: str, plan: dict[str, list]) -> dict[str, bytes]:
    """One request per path (each must answer 200): the bodies the bare server answers with."""
    import requests

    bodies = {}
    for name, requests_ in plan.items():
        path, headers = requests_[0]
        response = requests.get(base + path, headers=headers, timeout=60)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code}: {response.text[:300]}")
        bodies[path] = response.content
    return bodies


def section(name: str, database_url: str, redis_url: str | None, tmp: Path, args, rate: float, seconds: float,
            rows: list, details: dict) -> int:
    tmp.mkdir(parents=True, exist_ok=True)
    secret = uuid.uuid4().hex * 2
    sizes = {k: getattr(args, k) for k in ("teachers", "directs", "classes", "class_size", "history", "notifications")}
    seeded = _seed_in_child(database_url, secret, sizes)
    plan = {p: t for p, t in targets(seeded).items() if p in args.paths}
    env = common.deployment_env(database_url, redis_url, tmp, secret)
    procs = []
    failures = 0
    try:
        web, base = common.start_serve(env, tmp, f"lienlac-{name}")
        procs.append(web)
        if redis_url:
            procs.append(common.start_worker(env, tmp, f"worker-{name}"))
        common.wait_ready(web, base, "lienlac serve")
        bodies = capture(base, plan)
        bare, bare_base = common.start_bare_flask(bodies, tmp, "gevent", f"bare-{name}")
        procs.append(bare)
        first = next(iter(plan.values()))
        ceiling = common.client_ceiling(bare_base, first, seconds=args.ceiling_seconds, connections=32)
        mode = "PostgreSQL + Redis, gevent, 1 web process + 1 worker" if redis_url else "embedded default: SQLite, no Redis"
        print(f"\n== {name}: {mode}; open loop at {rate:g} requests/s for {seconds:g} s a path (+{args.warmup:g} s "
              f"warm-up), {args.client_procs} client process(es), ≤ {args.connections} connections each; "
              f"{os.cpu_count()} CPUs, load average {common.load_now()}", flush=True)
        print(f"  client ceiling against the bare server (closed loop, 32 connections, 1 process): "
              f"{ceiling['per_second']:.0f} requests/s" +
              ("  ** below 2 × the rate: the client may be the bottleneck **" if ceiling["per_second"] < 2 * rate else ""),
              flush=True)
        details[name] = {"rate": rate, "seconds": seconds, "client_ceiling": ceiling["per_second"], "paths": {}}
        for path_name, requests_ in plan.items():
            print(f" {path_name}: {requests_[0][0]} ({len(bodies[requests_[0][0]]):,} bytes)", flush=True)
            figures = {}
            for label, url in (("lienlac", base), ("bare", bare_base)):
                reference = common.health_ms(url)
                figures[label] = common.open_loop(url, requests_, rate, seconds, args.warmup, args.connections,
                                                  args.client_procs)
                common.print_http(label, figures[label])
                waited = common.settle(url, reference)  # what the client gave up on must not weigh on the next path
                if waited > 2:
                    print(f"  ({label} settled in {waited:.0f} s)", flush=True)
            lien, bare_r = figures["lienlac"], figures["bare"]
            failures += lien["errors"] > 0
            details[name]["paths"][path_name] = figures | {"load": common.load_now()}
            metric = "p99 ms" if redis_url else "p50 ms"
            key = metric.split()[0]
            what = "GET " + re.sub(r"/\d+", "/{id}", requests_[0][0].replace("/api/v1", "")).split("=")[0] + ("=" if "?" in requests_[0][0] else "")
            if path_name == "conversations":
                what += f" (teacher: {args.directs} direct + {args.classes} class)"
            where = f"at {rate:g} req/s" + ("" if redis_url else ", embedded default (SQLite)")
            target = {"below": 50.0, "target": "< 50 ms"} if (path_name == "conversations" and redis_url) else {}
            r = common.row(f"{what} {where}, {metric}", metric, lien[key], bare_r[key], **target)
            r["note"] = f"{lien['rate']:.0f}/s achieved, {lien['errors']} errors of {lien['sent']}"
            rows.append(r)
    finally:
        common.stop_all(procs)
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop), pg section")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per path, pg section")
    parser.add_argument("--embedded-rate", type=float, default=10.0)
    parser.add_argument("--embedded-seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent first and not counted")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of: {', '.join(PATHS)}")
    parser.add_argument("--sections", default="pg,embedded", help="pg, embedded or both")
    parser.add_argument("--connections", type=int, default=100, help="keep-alive connections per client process")
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument("--ceiling-seconds", type=float, default=3.0)
    parser.add_argument("--teachers", type=int, default=4)
    parser.add_argument("--directs", type=int, default=40, help="direct conversations per teacher")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=40)
    parser.add_argument("--history", type=int, default=8, help="messages per conversation")
    parser.add_argument("--notifications", type=int, default=20, help="inbox rows per guardian")
    parser.add_argument("--redis-url", default=common.REDIS_URL)
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file (- for stdout)")
    args = parser.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(args.paths) - set(PATHS)
    if unknown:
        parser.error(f"unknown path(s): {', '.join(sorted(unknown))}")
    sections = [s.strip() for s in args.sections.split(",")]
    load_before = common.load_now()
    rows: list[dict] = []
    details: dict = {}
    failures = 0
    tmp = Path(tempfile.mkdtemp(prefix="lienlac-bench-http-"))
    if "pg" in sections:
        with common.scratch_database("lienlac_bench_http") as url:
            failures += section("pg", url, args.redis_url, tmp / "pg", args, args.rate, args.seconds, rows, details)
    if "embedded" in sections:
        (tmp / "embedded").mkdir(parents=True)
        url = f"sqlite:///{tmp / 'embedded' / 'lienlac.sqlite3'}"
        failures += section("embedded", url, None, tmp / "embedded", args, args.embedded_rate, args.embedded_seconds,
                            rows, details)
    print(f"\n(logs in {tmp}; load average {load_before} before, {common.load_now()} after)", flush=True)
    common.write_json(args.json, "http", rows, details, load_before)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
