"""One of two ``lienlac serve`` processes (sharing Redis and PostgreSQL) is SIGKILLed while socket
clients are connected to it and messages flow: its clients see the disconnect, connect to the other
process and catch up with ``GET /conversations/{id}/messages?after=<last seq seen>`` (connect
first, then catch up: what arrives in between comes twice and is matched by ``seq``, as the app
does). A sender whose requests went to the killed process sends again to the other with the same
``client_id``.

Afterwards every client of A has every message exactly once (events before the kill, the catch-up,
and events after), the catch-up returned only what came after the last ``seq`` seen, each message
is stored once (a resend with the same ``client_id`` returned the stored one), and no request was
left with a 5xx that a retry does not cure. Known gap, asserted as such: a message A stored but
died before publishing never reaches the sockets that stayed connected to B (the resend publishes
nothing); they see it at their next catch-up.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest
import requests

from ..support.factories import Factory
from ..support.servers import SHARED_SECRET, Processes, process_env, shared_app, truncate_all, unique_channel, \
    wait_for
from .conftest import Http, SocketClient, needs_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, needs_postgres]

API = "/api/v1"


class Reader:
    """A socket client as the app keeps it: messages by ``seq``, the last one seen, and a catch-up."""

    def __init__(self, url, token, conv, name):
        self.conv, self.token = conv, token
        self.socket = SocketClient(url, token, name)
        self.caught_up: list[dict] = []
        self.catch_up_after: int | None = None

    def from_events(self) -> list[int]:
        return [d["message"]["seq"] for d in self.socket.received("message:new")
                if str(d["message"]["conversation_id"]) == str(self.conv)]

    def seen(self) -> set[int]:
        return set(self.from_events()) | {m["seq"] for m in self.caught_up}

    def fail_over(self, url: str, http: Http) -> None:
        """Connect to ``url`` first (live events from now on), then fetch what came after the last seq seen."""
        last = max(self.seen(), default=0)
        self.socket.reconnect(url)
        self.catch_up_after = last
        cursor = None
        while True:
            query = "limit=200" + (f"&cursor={cursor}" if cursor else f"&after={last}")  # the cursor alone after
            r = http.get(f"{url}{API}/conversations/{self.conv}/messages?{query}",
                         headers={"Authorization": f"Bearer {self.token}"})
            assert r is not None and r.status_code == 200, r.text if r is not None else None
            self.caught_up += r.json()["items"]
            cursor = r.json().get("next_cursor")
            if not cursor:
                return


def test_kill_a_web_process_while_clients_are_connected(pg_url, redis_url, make_config, tmp_path):
    truncate_all(pg_url)
    channel = unique_channel()
    procs = Processes(tmp_path)
    readers: list[Reader] = []
    with shared_app(make_config(pg_url, redis_url=redis_url, secret_key=SHARED_SECRET, jobs_inline=False,
                                socketio_channel=channel)) as app:
        try:
            env = process_env(pg_url, redis_url, tmp_path, SOCKETIO_CHANNEL=channel,
                              MESSAGE_RATE_LIMIT="100000 per minute")
            (web_a, url_a), (_web_b, url_b) = procs.webs(env, "web-a", "web-b")
            make = Factory(app)
            fam = make.family()
            guardian, teacher = fam["guardian"], fam["teacher"]
            http = Http(cure_seconds=20)
            h_guardian = {"Authorization": f"Bearer {make.token(guardian)}"}
            h_teacher = {"Authorization": f"Bearer {make.token(teacher)}"}
            r = http.post(f"{url_a}{API}/conversations", headers=h_guardian, json={
                "kind": "direct", "student_id": str(fam["student"].id), "participant_ids": [str(teacher.id)]})
            assert r.status_code in (200, 201), r.text
            conv = r.json()["id"]

            # three sockets on A (the guardian's two phones, the teacher), one on B
            on_a = [Reader(url_a, make.token(guardian), conv, "guardian-1@A"),
                    Reader(url_a, make.token(guardian), conv, "guardian-2@A"),
                    Reader(url_a, make.token(teacher), conv, "teacher@A")]
            on_b = Reader(url_b, make.token(teacher), conv, "teacher@B")
            readers += [*on_a, on_b]

            stop = threading.Event()
            sent: dict[str, int] = {}  # client_id → seq of the answer
            resent: list[str] = []
            lock = threading.Lock()

            def send(first_url, headers, prefix):
                """Send through ``first_url``; once it fails, through B (the same client_id again)."""
                url, n = first_url, 0
                while not stop.is_set():
                    n += 1
                    client_id = f"{prefix}-{n}"
                    body = {"client_id": client_id, "body": f"tin nhắn {prefix} {n}"}
                    try:
                        r = requests.post(f"{url}{API}/conversations/{conv}/messages", headers=headers, json=body,
                                          timeout=10)
                        ok = r.status_code in (200, 201)
                    except requests.RequestException:
                        ok = False
                    if not ok:  # the process died under it: the other one, same message
                        url = url_b
                        with lock:
                            resent.append(client_id)
                        r = http.post(f"{url}{API}/conversations/{conv}/messages", headers=headers, json=body)
                        assert r is not None and r.status_code in (200, 201), r.text if r is not None else None
                    with lock:
                        sent[client_id] = r.json()["seq"]
                    time.sleep(0.02)

            # every socket hears the first message before the traffic starts
            r = http.post(f"{url_b}{API}/conversations/{conv}/messages", headers=h_teacher,
                          json={"client_id": "start", "body": "bắt đầu"})
            sent["start"] = r.json()["seq"]
            wait_for(lambda: all(x.from_events() for x in readers), 20, 0.05, "every socket to hear the first message")

            senders = [threading.Thread(target=send, args=(url_a, h_guardian, "via-a"), daemon=True),
                       threading.Thread(target=send, args=(url_b, h_teacher, "via-b"), daemon=True)]
            for t in senders:
                t.start()
            wait_for(lambda: len(sent) >= 20, 30, 0.05, "traffic to flow")
            before_kill = {x.socket.name: len(x.from_events()) for x in on_a}
            web_a.kill(signal.SIGKILL)
            wait_for(lambda: all(x.socket.disconnected.is_set() for x in on_a), 20, 0.05,
                     "A's clients to see the disconnect")
            for reader in on_a:
                reader.fail_over(url_b, http)
            wait_for(lambda: len(sent) >= max(before_kill.values()) + 40, 30, 0.05, "traffic to go on through B")
            stop.set()
            for t in senders:
                t.join(30)
            assert not any(t.is_alive() for t in senders)

            # stored: every message once, its seq the one its sender was answered (a resend returned it)
            stored = []
            for page_after in [0]:
                cursor = None
                while True:
                    q = "limit=200" + (f"&cursor={cursor}" if cursor else f"&after={page_after}")
                    page = http.get(f"{url_b}{API}/conversations/{conv}/messages?{q}", headers=h_teacher).json()
                    stored += page["items"]
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
            assert Counter(m["client_id"] for m in stored) == Counter(list(sent))  # nothing twice, nothing lost
            assert {m["client_id"]: m["seq"] for m in stored} == sent
            all_seqs = {m["seq"] for m in stored}

            # every client has every message exactly once: events + catch-up, matched by seq
            # A's clients (they reconnected and caught up): everything. B's client, connected all along,
            # everything but a message A stored and died before publishing (KNOWN GAP: its sender's resend
            # with the same client_id answers the stored message and publishes nothing; B's client sees it
            # at its next catch-up only)
            by_seq = {m["seq"]: m["client_id"] for m in stored}
            unpublished = {s for s, c in by_seq.items() if c in resent}

            def complete():
                return (all(x.seen() == all_seqs for x in on_a)
                        and all_seqs - unpublished <= on_b.seen() <= all_seqs)

            try:
                wait_for(complete, 20, 0.05, "every client to have every message")
            except AssertionError:
                missing = {x.socket.name: sorted((s, by_seq[s]) for s in all_seqs - x.seen()) for x in readers}
                raise AssertionError(f"missing (seq, client_id): {missing}; resent via B: {resent}; "
                                     f"catch-up after: {[x.catch_up_after for x in on_a]}") from None
            never_published = sorted(all_seqs - on_b.seen())
            for reader in readers:
                events = reader.from_events()
                assert len(events) == len(set(events)), (reader.socket.name, "an event came twice")
                assert events == sorted(events) or reader in on_a, reader.socket.name  # seq order per process
                caught = [m["seq"] for m in reader.caught_up]
                assert len(caught) == len(set(caught)) and caught == sorted(caught), reader.socket.name
                assert all(s > reader.catch_up_after for s in caught) if reader in on_a else not caught
            assert http.uncured == [], http.uncured[:5]
            lost_on_kill = {x.socket.name: len(all_seqs) - len(x.from_events()) for x in on_a}
            print(f"{len(all_seqs)} messages; A killed after {before_kill} events; resent via B: {resent}; "
                  f"stored by A but never published (B's client lacks them): {never_published}; "
                  f"caught up after the kill: {[len(x.caught_up) for x in on_a]}; events A's clients never got "
                  f"(covered by the catch-up): {lost_on_kill}")
        finally:
            for reader in readers:
                reader.socket.close()
            procs.stop_all()
