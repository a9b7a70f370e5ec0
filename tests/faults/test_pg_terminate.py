"""PostgreSQL ends every connection of a web process (``pg_terminate_backend``, as a failover or an
operator would) over and over while clients read and write through it: a real ``lienlac serve`` on
PostgreSQL, its connections named by ``application_name``, four clients sending messages (with
``client_id``) and reading history, conversations, ``/me`` and the inbox.

Afterwards no request was left with a 5xx that a retry does not cure, every 5xx seen was a 503
with ``Retry-After`` in the API.md envelope (never a 500: reads on a dead connection are read
again, a transaction that lost its connection answers 503), every message sent is stored exactly
once in order, and the process serves on as before.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest

from ..support.factories import Factory
from ..support.servers import SHARED_SECRET, Processes, process_env, shared_app, truncate_all, unique_channel, \
    wait_for
from .conftest import Http, needs_postgres, terminate_backends, with_application_name

pytestmark = [pytest.mark.slow, pytest.mark.postgres, needs_postgres]

API = "/api/v1"
ROUNDS = 6  # terminations, one every TRAFFIC_SECONDS / ROUNDS
TRAFFIC_SECONDS = 6.0


def test_pg_terminate_backend_mid_traffic(pg_url, redis_url, make_config, tmp_path):
    truncate_all(pg_url)
    name = f"lienlac-web-{uuid.uuid4().hex[:8]}"
    procs = Processes(tmp_path)
    with shared_app(make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                                socketio_channel=unique_channel())) as app:
        try:
            env = process_env(with_application_name(pg_url, name), redis_url, tmp_path,
                              SOCKETIO_CHANNEL=unique_channel(), MESSAGE_RATE_LIMIT="100000 per minute",
                              LOG_LEVEL="WARNING")
            web, url = procs.web(env, "web")
            make = Factory(app)
            fam = make.family()
            guardian, teacher = fam["guardian"], fam["teacher"]
            heads = {u.id: {"Authorization": f"Bearer {make.token(u)}"} for u in (guardian, teacher)}
            http = Http(cure_seconds=20)
            r = http.post(f"{url}{API}/conversations", headers=heads[guardian.id], json={
                "kind": "direct", "student_id": str(fam["student"].id), "participant_ids": [str(teacher.id)]})
            assert r.status_code in (200, 201), r.text
            conv = r.json()["id"]

            stop = threading.Event()
            sent: list[str] = []
            statuses: Counter = Counter()
            problems: list = []
            lock = threading.Lock()

            def client(k: int):
                user = (guardian, teacher)[k % 2]
                h = heads[user.id]
                n = 0
                while not stop.is_set():
                    n += 1
                    client_id = f"c{k}-{n}"
                    r = http.post(f"{url}{API}/conversations/{conv}/messages", headers=h,
                                  json={"client_id": client_id, "body": f"tin {k}.{n}"})
                    answers = [r]
                    if r is not None and r.status_code in (200, 201):
                        with lock:
                            sent.append(client_id)
                    for path in (f"/conversations/{conv}/messages?limit=20", "/conversations", "/me",
                                 "/notifications"):
                        answers.append(http.get(f"{url}{API}{path}", headers=h))
                    with lock:
                        for a in answers:
                            statuses[a.status_code if a is not None else "none"] += 1
                            if a is None or a.status_code >= 400:
                                problems.append((a.status_code, a.text[:200]) if a is not None else None)

            threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: len(sent) >= 8, 30, 0.05, "traffic to flow")
            terminated = []
            for _ in range(ROUNDS):
                time.sleep(TRAFFIC_SECONDS / ROUNDS)
                terminated.append(terminate_backends(pg_url, name))
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(60)
            assert not any(t.is_alive() for t in threads)

            # PostgreSQL really ended the web process's connections, while it was serving
            assert sum(terminated) >= ROUNDS, terminated
            # no request was left broken; the only 5xx on the way were 503 + Retry-After (a retry cured each)
            assert http.uncured == [], http.uncured[:5]
            assert problems == [], problems[:5]
            errors = Counter(code for _m, _u, code in http.faults)
            assert set(errors) <= {503}, (errors, web.output()[-4000:])
            # every message sent is stored exactly once, in order
            history, cursor = [], None
            while True:
                # after=0 on the first page, then the cursor alone (the API refuses both together)
                page = http.get(f"{url}{API}/conversations/{conv}/messages?limit=200"
                                + (f"&cursor={cursor}" if cursor else "&after=0"), headers=heads[teacher.id]).json()
                history += page["items"]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            ids = [m["client_id"] for m in history]
            assert Counter(ids) == Counter(sent) and len(set(ids)) == len(ids)
            seqs = [m["seq"] for m in history]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            # and the process serves on
            assert web.alive(), web.output()[-3000:]
            assert http.get(f"{url}/readyz").status_code == 200
            reread = web.output().count("reading again on a new connection")
            print(f"{sum(terminated)} backends terminated in {ROUNDS} rounds; {http.requests} requests, "
                  f"{sum(errors.values())} answered 503 and retried, {reread} reads re-run on a new connection; "
                  f"{len(sent)} messages")
        finally:
            procs.stop_all()
