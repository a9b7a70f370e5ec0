"""Announcement fan-out benchmark (issue 4, point 6). Run by hand, not part of the test suite.

    python benchmarks/fanout.py                      # 100,000 guardians, 130,000 devices, 2 workers
    python benchmarks/fanout.py --guardians 10000    # a quick run
    python benchmarks/fanout.py --json               # ... and one JSON line on stdout (the text goes to stderr)
    python benchmarks/fanout.py --json out.json      # run.sh: the rows of its table and the figures in a file

What it does, in one run on PostgreSQL + Redis + the local FCM server (the real firebase-admin
SDK sends to it):
  1. a fresh database, migrated, seeded in bulk: one school, N guardians (30 % with two devices),
     then ANALYZEd (a deployment's autovacuum keeps statistics; this machine's PostgreSQL runs
     without it, and a planner without statistics scans whole tables in every push job);
  2. baselines: COPY of N inbox rows into the notification table itself, rolled back (its indexes and keys;
     the median of three),
     and the FCM server's own ceiling: the same FCM message sent to it by a minimal keep-alive
     HTTP/1.1 client in a process of its own (``tests.support.fcm_server.measure_ceiling``); the
     FCM server runs in a process of its own too (``FcmServerProcess``, counts per token only);
  3. ``--workers`` real ``lienlac worker`` processes, then one announcement to the whole school;
     it times the inbox phase (announcement created → the last chunk job's ``done_at``, written
     right after its rows were committed; every row is counted too), the push phase
     (first → last message accepted by the FCM server) and end to end (→ no job left);
  4. checks the result (N rows, one accepted message per device) and prints the figures and ratios.

``--json`` alone prints one JSON line on stdout: guardians, devices, inbox_rows_per_s,
copy_rows_per_s, pushes_per_s, fcm_server_ceiling_per_s, inbox_s, end_to_end_s, accepted (distinct
devices the FCM server accepted); ``--json FILE`` also writes run.sh's rows and those figures to
FILE (the text then stays on stdout, the JSON line last).

Environment: LIENLAC_TEST_PG (PostgreSQL admin URL, default postgresql://postgres@127.0.0.1:5432/test);
``--redis-url`` (default BENCH_REDIS_URL or redis://127.0.0.1:6379/6: that database is FLUSHED).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]  # benchmarks/http.py would shadow http
sys.path.insert(0, str(ROOT))


def sample_message() -> dict:
    """The FCM message (firebase-admin's encoding) the workers send for one announcement."""
    from notifications.models import Notification
    from notifications.messages import build_message
    from firebase_admin import messaging

    note = Notification(id=1, user=1, category="announcement", title="Thông báo nghỉ học",
                        body="Trường nghỉ học ngày mai do bão.", data=json.dumps(
                            {"type": "announcement", "id": "1", "students": [{"id": "1", "name": "Học sinh 1"}]}),
                        collapse_key="announcement-1", in_inbox=True)
    message = messaging._MessagingService.encode_message(build_message(note, "t", 1))  # pylint: disable=protected-access
    message.pop("token", None)
    return message


def copy_rate(n: int, guardian_ids: list[int], school_id: int, rounds: int = 3) -> float:
    """COPY ``n`` inbox rows, as the fan-out writes them for an announcement, into the notification
    table itself (its indexes, its partial unique key, its foreign keys), then roll back: the fastest
    the database takes those rows, the baseline of "inbox rows/s". The median of ``rounds`` runs: one
    run alone swung between 48,000 and 99,000 rows/s from one invocation to the next on a shared machine."""
    return statistics.median(_copy_once(n, guardian_ids, school_id) for _ in range(rounds))


def _copy_once(n: int, guardian_ids: list[int], school_id: int) -> float:
    from notifications.models import Announcement
    from service.db import db, utcnow

    now = utcnow().isoformat(sep=" ")
    data = json.dumps({"type": "announcement", "id": "1", "students": [{"id": "1", "name": "Học sinh 1"}]},
                      ensure_ascii=False).replace("\\", "\\\\")
    columns = ("user_id, category, title, body, data, announcement_id, in_inbox, urgent, silent, collapse_key, "
               "push_status, created_at")
    with db.manual_commit():
        db.begin()
        try:
            ann = Announcement.create(school=school_id, title="COPY baseline", body="-", audience="{}")
            buf = io.StringIO()
            for user_id in guardian_ids[:n]:
                buf.write(f"{user_id}\tannouncement\tThông báo nghỉ học\tTrường nghỉ học ngày mai do bão.\t{data}\t"
                          f"{ann.id}\tt\tf\tf\tannouncement-{ann.id}\tpending\t{now}\n")
            buf.seek(0)
            started = time.monotonic()
            db.cursor().copy_expert(f"COPY notification ({columns}) FROM STDIN", buf)
            db.execute_sql("SET CONSTRAINTS ALL IMMEDIATE")  # deferred checks, if any, counted too
            elapsed = time.monotonic() - started
        finally:
            db.rollback()
    db.execute_sql("VACUUM notification")  # the rolled-back rows leave nothing in the real run's way
    return n / elapsed


KEYS = ("guardians", "devices", "inbox_rows_per_s", "copy_rows_per_s", "pushes_per_s", "fcm_server_ceiling_per_s",
        "inbox_s", "end_to_end_s", "accepted")


def main(argv=None) -> int:
    from benchmarks import _common as common

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guardians", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--two-devices", type=float, default=0.3, help="share of guardians with two devices")
    parser.add_argument("--rate", type=float, default=1_000_000, help="FCM_RATE_PER_SECOND for the workers")
    parser.add_argument("--redis-url", default=common.REDIS_URL, help="Redis database for the workers (FLUSHED)")
    parser.add_argument("--ceiling-requests", type=int, default=20_000,
                        help="messages sent to measure the FCM server's own ceiling")
    parser.add_argument("--ceiling-in-flight", type=int, default=256,
                        help="requests in flight while measuring it (a worker's push sender: 256)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="alone: one JSON line of the figures on stdout (the text goes to stderr); "
                             "with FILE: also run.sh's rows and the figures written there (the JSON line last)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--logs", default=None, help="keep the workers' INFO logs in this folder")
    parser.add_argument("--fork", action="store_true", help="lienlac worker --fork (a work horse per job)")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout

    def say(*parts, **kw):
        print(*parts, **kw, file=out, flush=True)

    import peewee
    import redis as redis_lib
    from playhouse.db_url import parse

    from notifications import announcements
    from notifications.models import Announcement, AnnouncementChunk, Notification
    from service import db as dbmod
    from service.app import create_app
    from service.config import Config
    from tests.notifications.rqtools import pending_jobs
    from tests.notifications.seed import seed_school
    from tests.support.fcm_server import FcmServerProcess, measure_ceiling
    from tests.support.servers import PG_ADMIN_URL, process_env, start_worker

    load_before = common.load_now()
    redis_url = args.redis_url
    redis = redis_lib.Redis.from_url(redis_url)
    redis.flushdb()
    name = f"lienlac_bench_{os.getpid()}"
    admin = peewee.PostgresqlDatabase(**parse(PG_ADMIN_URL))
    admin.connect()
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    admin.close()
    pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    tmp = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="lienlac-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    workers = []
    fcm = FcmServerProcess(record="tokens").start()  # its own process: no GIL shared with this one
    try:
        channel = f"bench-{uuid.uuid4().hex}"
        config = Config(database_url=pg_url, redis_url=redis_url, secret_key="bench", fcm_endpoint=fcm.url,
                        firebase_project_id=fcm.project_id, fcm_rate_per_second=args.rate,
                        socketio_channel=channel, log_level="WARNING")
        app = create_app(config, web=False)
        ctx = app.app_context()
        ctx.push()
        dbmod.migrate()
        dbmod.db.connect(reuse_if_open=True)

        started = time.monotonic()
        seeded = seed_school(args.guardians, two_devices=args.two_devices)
        devices = len(seeded.tokens)
        dbmod.db.execute_sql("ANALYZE")  # statistics, as a deployment's autovacuum keeps (this PostgreSQL may run without)
        say(f"seeded {args.guardians:,} guardians, {devices:,} devices in {time.monotonic() - started:.1f}s")

        copy_rows_s = copy_rate(args.guardians, seeded.guardian_ids, seeded.school_id)
        say(f"baseline COPY: {copy_rows_s:,.0f} rows/s")
        ceiling = measure_ceiling(fcm, max(1, args.ceiling_requests), in_flight=args.ceiling_in_flight,
                                  message=sample_message())
        say(f"FCM server ceiling: {ceiling['requests_per_s']:,.0f} requests/s ({ceiling['requests']:,} requests, "
            f"{ceiling['in_flight']} in flight, {ceiling['errors']} errors; server used {ceiling['server_cpu']} "
            f"of a core, the client {ceiling['client_cpu']}: {ceiling['per_server_cpu_s']:,} requests per "
            f"server CPU second; load {ceiling['load'][0]})")

        env = process_env(pg_url, redis_url, tmp, FCM_ENDPOINT=fcm.url, FIREBASE_PROJECT_ID=fcm.project_id,
                          FCM_RATE_PER_SECOND=args.rate, SOCKETIO_CHANNEL=channel,
                          LOG_LEVEL="INFO" if args.logs else "WARNING")
        for i in range(args.workers):
            workers.append(start_worker(env, tmp, f"bench{i}", *(["--fork"] if args.fork else [])))
        time.sleep(3)  # let them start

        fcm_cpu0 = fcm.cpu_seconds()
        t0, t0_utc = time.monotonic(), dbmod.utcnow()
        ann = announcements.create(seeded.admin_id, "Thông báo nghỉ học", "Trường nghỉ học ngày mai do bão.",
                                   {"school_id": seeded.school_id})
        created_s = time.monotonic() - t0
        inbox_done = None
        while True:
            now = time.monotonic()
            if inbox_done is None:
                rows = Notification.select().where(Notification.announcement == ann.id).count()
                if rows >= args.guardians:
                    inbox_done = now
            summary = fcm.summary()
            if inbox_done and summary["accepted"] >= devices and pending_jobs(redis) == 0 and \
                    Announcement.get_by_id(ann.id).status == "sent":
                end = time.monotonic()
                break
            if now - t0 > 3600:
                raise SystemExit("gave up after an hour")
            time.sleep(0.25)
        fcm_cpu = fcm.cpu_seconds() - fcm_cpu0

        rows = Notification.select().where(Notification.announcement == ann.id).count()
        counts = fcm.token_counts()
        summary = fcm.summary()
        accepted = len(counts)
        most = max(counts.values(), default=0)
        ok = rows == args.guardians and set(counts) == set(seeded.tokens) and most == 1
        # the inbox is complete when the last chunk job committed its rows: its done_at (written right
        # after them), exact where the 0.25 s poll above is not
        last_chunk = (AnnouncementChunk.select(peewee.fn.MAX(AnnouncementChunk.done_at))
                      .where(AnnouncementChunk.announcement == ann.id).scalar())
        inbox_s = (last_chunk - t0_utc).total_seconds() if last_chunk else inbox_done - t0
        push_s = (summary["last_at"] - summary["first_at"]) if summary["first_at"] else float("nan")
        inbox_rate, push_rate = args.guardians / inbox_s, devices / push_s
        end_to_end = end - t0
        figures = {"guardians": args.guardians, "devices": devices, "inbox_rows_per_s": round(inbox_rate, 1),
                   "copy_rows_per_s": round(copy_rows_s, 1), "pushes_per_s": round(push_rate, 1),
                   "fcm_server_ceiling_per_s": round(ceiling["requests_per_s"], 1), "inbox_s": round(inbox_s, 2),
                   "end_to_end_s": round(end_to_end, 2), "accepted": accepted}
        say()
        say(f"fan-out of one announcement: {args.guardians:,} guardians, {devices:,} devices, "
            f"{args.workers} {'forking ' if args.fork else ''}workers, PostgreSQL")
        say(f"  request (store + enqueue planner): {created_s * 1000:.0f} ms")
        say(f"  inbox rows/s   {inbox_rate:>10,.0f}   (raw COPY of the same rows: {copy_rows_s:,.0f}/s, "
            f"ratio {inbox_rate / copy_rows_s:.2f})")
        say(f"  push msgs/s    {push_rate:>10,.0f}   (the FCM server's own ceiling: {ceiling['requests_per_s']:,.0f}/s, "
            f"ratio {push_rate / ceiling['requests_per_s']:.2f}; first → last accepted {push_s:.1f} s; the server "
            f"used {fcm_cpu:.1f} CPU s from the announcement to the end)")
        say(f"  end to end     {end_to_end:>10.1f} s   (inbox complete after {inbox_s:.1f} s)")
        say(f"  check: {rows:,} inbox rows, {accepted:,} devices pushed, {summary['accepted']:,} messages accepted, "
            f"max {most} per device: {'OK' if ok else 'WRONG'}")
        if args.json:  # the last line on stdout either way
            print(json.dumps({k: figures[k] for k in KEYS}), flush=True)
        if args.json and args.json != "-":
            size = f"{args.guardians:,} guardians / {devices:,} devices, {args.workers} workers"
            full = args.guardians >= 100_000  # the push and end-to-end targets are the full size's
            push_row = common.row(f"announcement push ({size}), msgs/s vs the FCM server's ceiling", "msgs/s",
                                  push_rate, ceiling["requests_per_s"], "≥ 4,300/s at 100,000 guardians")
            push_row["met"] = push_rate >= 4300 if full else None
            end_row = common.row(f"announcement end to end ({size}), s", "s", end_to_end, None,
                                 "≤ 30 s at 100,000 guardians", below=30.0)
            end_row["met"] = end_row["met"] if full else None
            common.write_json(args.json, "fanout", [
                common.row(f"announcement inbox ({size}), rows/s vs raw COPY", "rows/s", inbox_rate, copy_rows_s,
                           "≥ 50 % of bare", ratio_at_least=0.5),
                push_row, end_row,
            ], {**figures, "check_ok": ok, "messages_accepted": summary["accepted"], "max_per_device": most,
                "request_ms": round(created_s * 1000, 1), "push_s": round(push_s, 2), "ceiling": ceiling,
                "fcm_server_cpu_s": round(fcm_cpu, 2), "workers": args.workers}, load_before)
        return 0 if ok else 1
    finally:
        for proc in workers:
            proc.kill()
        fcm.stop()
        try:
            dbmod.db.close_all() if hasattr(dbmod.db.obj, "close_all") else dbmod.db.close()
        except Exception:
            pass
        if not args.keep:
            admin.connect()
            admin.execute_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                              "AND pid <> pg_backend_pid()")
            admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
            admin.close()


if __name__ == "__main__":
    sys.exit(main())
