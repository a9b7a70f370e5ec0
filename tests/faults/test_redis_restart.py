"""Redis restarted (SIGKILL, then started again on the same port, without persistence: every
queued job, scheduled retry and lock is lost) while an announcement's chunks and pushes are in
flight: two ``lienlac serve`` and two ``lienlac worker`` on PostgreSQL and a Redis of the test's
own, pushes to the local FCM server.

Afterwards every guardian has exactly one inbox row, every device got its push, the counts agree,
no request was left with a 5xx that a retry does not cure, and the processes recovered by
themselves: the same workers finish the fan-out (the recovery sweep, ``notifications.recovery``,
finds in the database the chunks and pushes whose jobs Redis lost and enqueues them again), the
web processes answer and carry Socket.IO events between each other again. (Without the sweep,
``RECOVERY_SWEEP_SECONDS=0``, it stopped at 910 of 1,560 devices pushed, the outage then coming
at a fifth of the pushes.)
"""
from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter

import pytest

from notifications.models import Notification
from service.accounts import logic as accounts
from service.roster import logic as roster
from tests.notifications.seed import seed_school
from tests.support.fcm_server import FcmTestServer
from tests.support.servers import SHARED_SECRET, Processes, shared_app, truncate_all, unique_channel, \
    wait_for

from .conftest import Http, SocketClient, diagnose_fanout, fanout_env, needs_postgres, needs_redis_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, needs_postgres, needs_redis_server]

API = "/api/v1"
GUARDIANS = 1_200  # 1,560 devices, two chunks


def test_redis_restart_mid_fanout(pg_url, own_redis, make_config, tmp_path):
    truncate_all(pg_url)
    redis_url = own_redis.url(0)
    channel = unique_channel()
    procs = Processes(tmp_path)
    clients: list[SocketClient] = []
    with FcmTestServer(retry_after=0) as fcm, \
            shared_app(make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                                   socketio_channel=channel)) as app:
        try:
            seeded = seed_school(GUARDIANS, with_device=1.0, two_devices=0.3)
            env = fanout_env(pg_url, redis_url, tmp_path, channel, fcm, RQ_MAINTENANCE_INTERVAL=2,
                             RQ_MONITOR_INTERVAL=2, ANNOUNCEMENT_RATE_LIMIT="1000 per minute")
            (_web_a, url_a), (_web_b, url_b) = procs.webs(env, "web-a", "web-b")
            workers = [procs.worker(env, name="w1"), procs.worker(env, name="w2")]
            with app.app_context():
                token = accounts.start_session(roster.get_user(seeded.admin_id))["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            http = Http(cure_seconds=30)

            response = http.post(url_a + API + "/announcements", headers=auth, json={
                "title": "Nghỉ học do bão", "body": "Trường nghỉ học ngày mai, thứ Sáu.",
                "audience": {"school_id": str(seeded.school_id)}, "urgent": True})
            assert response.status_code == 202, response.text
            ann_id = response.json()["id"]

            def status(url):
                r = http.get(f"{url}{API}/announcements/{ann_id}", headers=auth)
                assert r is not None and r.status_code == 200, (r.status_code, r.text) if r is not None else None
                return r.json()

            # reads keep coming to both web processes through the outage
            stop = threading.Event()

            def poll():
                while not stop.is_set():
                    for url in (url_a, url_b):
                        http.get(f"{url}{API}/announcements/{ann_id}", headers=auth)
                    time.sleep(0.05)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()

            # the first push accepted: chunks and push jobs are queued in Redis, and lost with it
            wait_for(lambda: fcm.count() >= 1, 60, 0.01, "pushes to be under way")
            before = fcm.count()
            down = own_redis.restart(signal.SIGKILL, down_seconds=1.5)
            assert before < len(seeded.tokens), "the fan-out was over already"

            def done():
                return (status(url_b)["status"] == "sent"
                        and len(set(fcm.accepted_tokens())) >= len(seeded.tokens))

            try:
                wait_for(done, 60, 0.2, "the fan-out to finish")
            except AssertionError:
                raise AssertionError(f"Redis down {down:.1f}s; {len(set(fcm.accepted_tokens()))}/"
                                     f"{len(seeded.tokens)} devices pushed; {diagnose_fanout(redis_url, ann_id)}") from None
            time.sleep(1.0)  # a late duplicate would show by now
            stop.set()
            poller.join(30)

            # every guardian exactly one inbox row
            rows = Counter(u for (u,) in Notification.select(Notification.user)
                           .where(Notification.announcement == int(ann_id)).tuples())
            assert set(rows) == set(seeded.guardian_ids) and max(rows.values()) == 1
            # every device its push (collapse key on every one: a resend would show once on the phone)
            pushed = Counter(r["token"] for r in fcm.accepted() if r["message"]["data"]["id"] == str(ann_id))
            assert set(pushed) == set(seeded.tokens)
            duplicates = sum(n - 1 for n in pushed.values())
            assert {r["message"]["android"]["collapse_key"] for r in fcm.accepted()} == {f"announcement-{ann_id}"}
            counts = status(url_a)["counts"]
            assert counts["recipients"] == counts["inboxed"] == GUARDIANS
            assert counts["push_sent"] == len(seeded.tokens) and counts["push_failed"] == 0
            # no request was left broken (5xx during the outage are allowed only if a retry cured them)
            assert http.uncured == [], http.uncured[:5]

            # the processes recovered by themselves: workers still up, the web processes share events again
            assert all(w.alive() for w in workers), [w.output()[-3000:] for w in workers if not w.alive()]
            on_a, on_b = SocketClient(url_a, token, "admin@A"), SocketClient(url_b, token, "admin@B")
            clients += [on_a, on_b]
            nonce = uuid.uuid4().hex
            on_b.sio.call("ping", {"nonce": nonce}, timeout=10)
            wait_for(lambda: any(d["nonce"] == nonce for d in on_a.received("pong")), 15, 0.05,
                     "a pong from web B on web A (Socket.IO over the restarted Redis)")
            print(f"Redis down {down:.1f}s at {before}/{len(seeded.tokens)} pushes; {len(http.server_errors())} "
                  f"5xx of {http.requests} requests (all cured); {duplicates} duplicate pushes")
            assert duplicates == 0
        finally:
            for client in clients:
                client.close()
            procs.stop_all()
