"""A worker SIGKILLed (with its scheduler) in the middle of a job of an announcement's fan-out, and
nobody helps: no manual requeue, no lock released, RQ's own maintenance a minute away. Two
``lienlac worker`` on PostgreSQL and Redis, pushes to the local FCM server.

What brings the fan-out to its end is the recovery sweep of the surviving worker: a chunk or
planner job whose worker stopped beating is enqueued again under its id, claims the killed worker
left ``sending`` are taken up after ``PUSH_CLAIM_TIMEOUT_SECONDS``, and inbox rows whose push was
never claimed get a push job. Afterwards every guardian has exactly one inbox row and every device
its push (a resend only of the killed window, under the same collapse key).

(``tests/notifications/test_fanout_workers.py::test_sigkill_a_worker_mid_fanout`` is the same
crash with RQ's maintenance done by hand, at ten times the size.)
"""
from __future__ import annotations

from collections import Counter

import pytest

from notifications.models import Notification, PushAttempt
from service.accounts import logic as accounts
from service.roster import logic as roster
from tests.notifications.rqtools import sigkill_worker_mid_job
from tests.notifications.seed import seed_school
from tests.support.fcm_server import FcmTestServer
from tests.support.servers import Processes, shared_app, truncate_all, unique_channel, wait_for

from .conftest import diagnose_fanout, fanout_env, needs_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, needs_postgres]

API = "/api/v1"
GUARDIANS = 3_000  # three chunks; 60 % with the app, a fifth of those with two phones


@pytest.mark.parametrize("kind", ["chunk", "push"])
def test_sigkill_a_worker_mid_fanout_recovers_by_itself(kind, pg_url, redis_url, make_config, tmp_path):
    """``chunk``: the victim works alone and dies inside an inbox chunk job (the survivor starts
    after the crash); ``push``: two workers, the victim dies inside a push job."""
    truncate_all(pg_url)
    channel = unique_channel()
    procs = Processes(tmp_path)
    with FcmTestServer(retry_after=0) as fcm, \
            shared_app(make_config(pg_url, redis_url=redis_url, jobs_inline=False, fcm_endpoint=fcm.url,
                                   firebase_project_id=fcm.project_id, fcm_rate_per_second=100000.0,
                                   socketio_channel=channel)) as app:
        try:
            seeded = seed_school(GUARDIANS, with_device=0.6, two_devices=0.2)
            env = fanout_env(pg_url, redis_url, tmp_path, channel, fcm, RQ_MONITOR_INTERVAL=1)
            victim = procs.worker(env, name="victim")
            survivor = procs.worker(env, name="survivor") if kind == "push" else None
            client = app.test_client()
            headers = {"Authorization": "Bearer " + accounts.start_session(
                roster.get_user(seeded.admin_id))["access_token"]}
            r = client.post(f"{API}/announcements", headers=headers, json={
                "title": "Nghỉ học do bão", "body": "Trường nghỉ học ngày mai.",
                "audience": {"school_id": str(seeded.school_id)}, "urgent": True})
            assert r.status_code == 202, r.get_json()
            ann_id = int(r.get_json()["id"])

            if kind == "push":
                wait_for(lambda: fcm.count() >= 100, 60, 0.01, "pushes to start")
            killed = sigkill_worker_mid_job(victim, _redis(), timeout=60, match=lambda j: f"-{kind}-" in j)
            assert fcm.count() < len(seeded.tokens), "the fan-out was over already"
            survivor = survivor or procs.worker(env, name="survivor")

            def done():
                status = client.get(f"{API}/announcements/{ann_id}", headers=headers).get_json()
                return status["status"] == "sent" and set(fcm.accepted_tokens()) >= set(seeded.tokens)

            try:
                wait_for(done, 50, 0.2, "the fan-out to finish")
            except AssertionError:
                raise AssertionError(f"killed running {killed}; {len(set(fcm.accepted_tokens()))}/"
                                     f"{len(seeded.tokens)} devices pushed; {diagnose_fanout(redis_url, ann_id)}"
                                     f"\n{_log_without_sweeps(survivor)}") from None

            rows = Counter(u for (u,) in Notification.select(Notification.user)
                           .where(Notification.announcement == ann_id).tuples())
            assert set(rows) == set(seeded.guardian_ids) and max(rows.values()) == 1  # one row per guardian
            records = [x for x in fcm.accepted() if x["message"]["data"]["id"] == str(ann_id)]
            pushed = Counter(x["token"] for x in records)
            assert set(pushed) == set(seeded.tokens)  # every device
            resent = sum(n - 1 for n in pushed.values())
            assert resent <= 1000  # at most the killed job's window in flight
            assert {x["message"]["android"]["collapse_key"] for x in records} == {f"announcement-{ann_id}"}
            wait_for(lambda: Counter(s for (s,) in PushAttempt.select(PushAttempt.status)
                                     .where(PushAttempt.announcement_id == ann_id).tuples())
                     == Counter({"accepted": len(seeded.tokens)}), 15, 0.2, "every attempt to be recorded")
            assert survivor.alive(), survivor.output()[-3000:]
            print(f"SIGKILL mid {killed}: {len(seeded.tokens)} devices, {resent} resent under the same collapse key")
        finally:
            procs.stop_all()


def _log_without_sweeps(proc) -> str:
    """A worker's log for a failure message, its once-a-second sweep lines left out."""
    return "\n".join(line for line in proc.output().splitlines() if "recovery sweep:" not in line)[-4000:]


def _redis():
    from service import jobs

    return jobs.redis_connection()
