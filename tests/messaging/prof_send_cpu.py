"""CPU per ``message:send`` in this process (not collected by default: run it by name).

    LIENLAC_TEST_REDIS_DB=13 .venv/bin/python -m pytest tests/messaging/prof_send_cpu.py -k postgres -s
    SEND_CPU_N=300 SEND_CPU_PROFILE=/tmp/send.prof ...   (cProfile of the timed sends)

The real ``message:send`` handler (``messaging.events._message_send``: the session re-check, the
payload's load, ``sending.send``, the ack's payload) in a request context carrying a socket's
session as the connect handler leaves it (Flask-SocketIO's test client refuses a message queue),
with the app's Redis manager and publisher, sends N messages in a direct conversation and in a 45-member class channel; every recipient is
marked online in Redis (no push job), as in the benchmark. Prints process_time per send.
"""
from __future__ import annotations

import cProfile
import os
import time
import uuid

from service import presence
from service.accounts import logic as accounts
from service.roster import logic as roster

from messaging import events
from messaging.logic import conversations

from ..support.apps import running_app

N = int(os.environ.get("SEND_CPU_N", "300"))


def _measure(app, token, conv_id, label, n):
    user_id, family, expires = accounts.socket_identity(token)
    environ = {"lienlac.user_id": user_id, "lienlac.family": family, "lienlac.expires": expires}

    def send():
        with app.test_request_context("/socket.io/", environ_overrides=environ):
            ack = events._message_send({"conversation_id": conv_id, "client_id": uuid.uuid4().hex,
                                        "body": "Chào cô ạ, cháu hôm nay xin nghỉ học."})
        assert "message" in ack, ack

    for _ in range(20):  # warm-up: connections, prepared statements, caches
        send()
    profile = os.environ.get("SEND_CPU_PROFILE")
    prof = cProfile.Profile(time.process_time) if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    for _ in range(n):
        send()
    if prof:
        prof.disable()
        prof.dump_stats(f"{profile}.{label}")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"\n{label}: {n} sends, CPU {1000 * cpu / n:.3f} ms/send, wall {1000 * wall / n:.3f} ms/send")


def test_send_cpu(database_url, make_config, redis_url, make):
    config = make_config(database_url, redis_url=redis_url, jobs_inline=False,
                         message_rate_limit="1000000 per minute")
    with running_app(config) as app:
        school = make.school()
        teacher = roster.ensure_user(make.phone(), "Cô Lan")
        roster.add_staff(school.id, teacher.id, "teacher")
        klass = make.klass(school, homeroom=teacher, name="3A")
        guardians = []
        for i in range(44):
            student = make.student(klass, f"Học sinh {i}")
            g = roster.ensure_user(make.phone(), f"Phụ huynh {i}")
            roster.link_guardian(student.id, g.id, "mother")
            guardians.append((g, student))
        g1, s1 = guardians[0]
        direct, _ = conversations.open_direct(g1.id, s1.id, [teacher.id])
        channel = conversations.class_conversation(teacher.id, klass.id)
        for u in [teacher] + [g for g, _ in guardians]:
            presence.mark_online(u.id, f"sid-{u.id}")
        _measure(app, make.token(g1), direct.id, "direct", N)
        _measure(app, make.token(teacher), channel.id, "class45", N // 2)


def test_send_plans(pg_url, make_config, redis_url, make):
    """EXPLAIN ANALYZE of the send path's statements: planning against execution time."""
    from service.db import db
    from messaging import policy
    from messaging.logic import office_hours, sending

    config = make_config(pg_url, redis_url=redis_url, jobs_inline=False)
    with running_app(config):
        school = make.school()
        teacher = roster.ensure_user(make.phone(), "Cô Lan")
        roster.add_staff(school.id, teacher.id, "teacher")
        klass = make.klass(school, homeroom=teacher, name="3A")
        student = make.student(klass, "Học sinh")
        g = roster.ensure_user(make.phone(), "Phụ huynh")
        roster.link_guardian(student.id, g.id, "mother")
        direct, _ = conversations.open_direct(g.id, student.id, [teacher.id])

        def explain(label, sql, params):
            for _ in range(3):
                db.execute_sql("BEGIN")
                rows = [r[0] for r in db.execute_sql("EXPLAIN (ANALYZE, SUMMARY) " + sql, params).fetchall()]
                db.execute_sql("ROLLBACK")
            db.execute_sql("SELECT pg_advisory_unlock_all()")
            times = [r for r in rows if r.startswith(("Planning Time", "Execution Time"))]
            print(f"\n{label}: {'; '.join(times)}")
            if os.environ.get("SEND_CPU_PLANS"):
                print("\n".join(rows))

        q = policy._direct_members_query([direct.id]).tuples().sql()
        explain("direct_members", *q)
        explain("class_audience", *sending._class_audience_query(type("P", (), {"class_id": klass.id})()).sql())
        from messaging.models import Conversation, OfficeHour
        explain("conversation", *Conversation.select().where(Conversation.id == direct.id).sql())
        explain("office_hours_of", *OfficeHour.select().where(OfficeHour.teacher.in_([teacher.id])).order_by(
            OfficeHour.weekday, OfficeHour.start_minute).sql())
        import datetime as dt
        ts = dt.datetime.utcnow()
        import re
        for label, stmt, args in (
                ("insert", sending._PG_INSERT, (*sending._lock_key(direct.id), ts, direct.id, g.id, uuid.uuid4().hex, "x")),
                ("release", sending._PG_RELEASE, (*sending._lock_key(direct.id), direct.id, g.id, 1, ts))):
            _statement, prepare, execute = stmt._compile()
            text = re.sub(r"\$(\d+)", r"%(p\1)s", prepare.split(" AS ", 1)[1])
            explain(label, text, {f"p{i + 1}": v for i, v in enumerate(args)})
            db.execute_sql(prepare)
            for n in range(7):  # PostgreSQL plans the first five runs each time (custom plans), then a generic one
                db.execute_sql("BEGIN")
                rows = [r[0] for r in db.execute_sql("EXPLAIN (ANALYZE, SUMMARY) " + execute, args).fetchall()]
                db.execute_sql("ROLLBACK")
                db.execute_sql("SELECT pg_advisory_unlock_all()")
            print(f"\n{label}, prepared (7th run): " + "; ".join(r for r in rows if r.startswith(("Planning", "Execution"))))
            if os.environ.get("SEND_CPU_PLANS"):
                print("\n".join(rows))
            db.execute_sql("DEALLOCATE ALL")
