"""Announcement fan-out benchmark (issue 4, point 6). Run by hand, not part of the test suite.

    python benchmarks/fanout.py                      # 100,000 guardians, 130,000 devices, 2 workers
    python benchmarks/fanout.py --guardians 10000    # a quick run

What it does, in one run on PostgreSQL + Redis + the local FCM server (the real firebase-admin
SDK sends to it):
  1. a fresh database, migrated, seeded in bulk: one school, N guardians (30 % with two devices);
  2. baselines: COPY of N inbox-shaped rows into a copy of the notification table (same indexes),
     and raw HTTP POSTs of the same number of FCM messages to the same FCM server (2 processes,
     keep-alive sessions, 32 threads each: the same shape as 2 workers);
  3. ``--workers`` real ``lienlac worker`` processes, then one announcement to the whole school;
     it times the inbox phase (announcement created → every inbox row stored), the push phase
     (first → last message accepted by the FCM server) and end to end (→ no job left);
  4. checks the result (N rows, one accepted message per device) and prints the figures and ratios.

Environment: LIENLAC_TEST_PG (PostgreSQL admin URL, default postgresql://postgres@127.0.0.1:5432/test),
LIENLAC_TEST_REDIS (default redis://127.0.0.1:6379) and LIENLAC_TEST_REDIS_DB (default 15; FLUSHED).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]  # benchmarks/http.py would shadow http
sys.path.insert(0, str(ROOT))


def _raw_http(url: str, n: int, threads: int, body: dict) -> float:
    """POST ``n`` FCM messages with ``threads`` keep-alive connections; returns seconds."""
    import requests

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=threads, pool_maxsize=threads))
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}

    def one(_):
        response = session.post(url, data=data, headers=headers)
        response.raise_for_status()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))
    return time.monotonic() - started


def raw_http_rate(fcm, n: int, processes: int = 2, threads: int = 32) -> float:
    from firebase_admin import _messaging_encoder

    from notifications.models import Notification
    from notifications.push import build_message

    sample = Notification(id=1, user=1, category="announcement", title="Thông báo nghỉ học",
                          body="Trường nghỉ học ngày mai do bão.", data=json.dumps(
                              {"type": "announcement", "id": "1", "students": [{"id": "1", "name": "Học sinh 1"}]}),
                          collapse_key="announcement-1", in_inbox=True)
    message = _messaging_encoder.MessageEncoder().default(build_message(sample, "tok" + "x" * 150, 1))
    url = f"{fcm.url}/v1/projects/{fcm.project_id}/messages:send"
    per = n // processes
    ctx = multiprocessing.get_context("fork")
    started = time.monotonic()
    with ctx.Pool(processes) as pool:
        pool.starmap(_raw_http, [(url, per, threads, {"message": message})] * processes)
    elapsed = time.monotonic() - started
    fcm.reset()
    return per * processes / elapsed


def copy_rate(n: int, guardian_ids: list[int]) -> float:
    """COPY ``n`` inbox rows (as the fan-out writes them) into a same-shaped table with its indexes."""
    from service.db import db, utcnow

    now = utcnow().isoformat(sep=" ")
    data = json.dumps({"type": "announcement", "id": "1", "students": [{"id": "1", "name": "Học sinh 1"}]},
                      ensure_ascii=False).replace("\\", "\\\\")
    buf = io.StringIO()
    for user_id in guardian_ids[:n]:
        buf.write(f"{user_id}\tannouncement\tThông báo nghỉ học\tTrường nghỉ học ngày mai do bão.\t{data}\t"
                  f"t\tf\tf\tannouncement-1\tpending\t{now}\n")
    columns = ("user_id, category, title, body, data, in_inbox, urgent, silent, collapse_key, push_status, "
               "created_at")
    with db.atomic():
        db.execute_sql("CREATE TABLE bench_copy (LIKE notification INCLUDING ALL)")
    try:
        buf.seek(0)
        started = time.monotonic()
        with db.atomic():
            cursor = db.cursor()
            cursor.copy_expert(f"COPY bench_copy ({columns}) FROM STDIN", buf)
        elapsed = time.monotonic() - started
    finally:
        with db.atomic():
            db.execute_sql("DROP TABLE bench_copy")
    return n / elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guardians", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--two-devices", type=float, default=0.3, help="share of guardians with two devices")
    parser.add_argument("--rate", type=float, default=1_000_000, help="FCM_RATE_PER_SECOND for the workers")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--logs", default=None, help="keep the workers' INFO logs in this folder")
    parser.add_argument("--simple", action="store_true",
                        help="lienlac worker --simple (no fork per job: FCM connections stay open between jobs)")
    args = parser.parse_args(argv)

    import peewee
    import redis as redis_lib
    from playhouse.db_url import parse

    from notifications import announcements
    from tests.support.fcm_server import FcmTestServer
    from notifications.models import Announcement, Notification
    from service import db as dbmod
    from service.app import create_app
    from service.config import Config
    from tests.notifications.rqtools import pending_jobs
    from tests.notifications.seed import seed_school
    from tests.support.servers import PG_ADMIN_URL, REDIS_BASE_URL, process_env, start_worker

    redis_url = REDIS_BASE_URL + "/" + os.environ.get("LIENLAC_TEST_REDIS_DB", "15")
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
    fcm = FcmTestServer().start()
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
        print(f"seeded {args.guardians:,} guardians, {devices:,} devices in {time.monotonic() - started:.1f}s",
              flush=True)

        copy_rows_s = copy_rate(args.guardians, seeded.guardian_ids)
        print(f"baseline COPY: {copy_rows_s:,.0f} rows/s", flush=True)
        raw_n = min(devices, 20_000)
        raw_http_s = raw_http_rate(fcm, raw_n, processes=args.workers)
        print(f"baseline raw HTTP to the FCM server: {raw_http_s:,.0f} requests/s ({raw_n:,} requests)", flush=True)

        env = process_env(pg_url, redis_url, tmp, FCM_ENDPOINT=fcm.url, FIREBASE_PROJECT_ID=fcm.project_id,
                          FCM_RATE_PER_SECOND=args.rate, SOCKETIO_CHANNEL=channel,
                          LOG_LEVEL="INFO" if args.logs else "WARNING")
        for i in range(args.workers):
            workers.append(start_worker(env, tmp, f"bench{i}", *(["--simple"] if args.simple else [])))
        time.sleep(3)  # let them start

        t0 = time.monotonic()
        ann = announcements.create(seeded.admin_id, "Thông báo nghỉ học", "Trường nghỉ học ngày mai do bão.",
                                   {"school_id": seeded.school_id})
        created_s = time.monotonic() - t0
        inbox_done = push_first = push_done = None
        while True:
            now = time.monotonic()
            if inbox_done is None:
                rows = Notification.select().where(Notification.announcement == ann.id).count()
                if rows >= args.guardians:
                    inbox_done = now
            count = fcm.count()
            if push_first is None and count:
                push_first = fcm.accepted()[0]["time"]
            if push_done is None and count >= devices:
                push_done = time.time()
            if inbox_done and push_done and pending_jobs(redis) == 0 and \
                    Announcement.get_by_id(ann.id).status == "sent":
                end = time.monotonic()
                break
            if now - t0 > 3600:
                raise SystemExit("gave up after an hour")
            time.sleep(0.25)

        rows = Notification.select().where(Notification.announcement == ann.id).count()
        accepted = Counter(fcm.accepted_tokens())
        ok = rows == args.guardians and set(accepted) == set(seeded.tokens) and max(accepted.values()) == 1
        inbox_s = inbox_done - t0
        push_s = push_done - push_first
        inbox_rate, push_rate = args.guardians / inbox_s, devices / push_s
        print()
        print(f"fan-out of one announcement: {args.guardians:,} guardians, {devices:,} devices, "
              f"{args.workers} {'simple ' if args.simple else ''}workers, PostgreSQL")
        print(f"  request (store + enqueue planner): {created_s * 1000:.0f} ms")
        print(f"  inbox rows/s   {inbox_rate:>10,.0f}   (raw COPY of the same rows: {copy_rows_s:,.0f}/s, "
              f"ratio {inbox_rate / copy_rows_s:.2f})")
        print(f"  push msgs/s    {push_rate:>10,.0f}   (raw HTTP to the same FCM server: {raw_http_s:,.0f}/s, "
              f"ratio {push_rate / raw_http_s:.2f})")
        print(f"  end to end     {end - t0:>10.1f} s   (inbox complete after {inbox_s:.1f} s)")
        print(f"  check: {rows:,} inbox rows, {len(accepted):,} devices pushed, max {max(accepted.values())} "
              f"per device: {'OK' if ok else 'WRONG'}")
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
