"""``notify_each``: many notices with their own recipients and texts in one job, each delivered once."""
from __future__ import annotations

from notifications import logic
from notifications.models import Notification

API = "/api/v1"


def test_notify_each_delivers_each_notice_once_in_each_language_and_pushes_together(pclient, pmake, fcm):
    fam = pmake.family()
    a, b = fam["guardian"], pmake.guardian(fam["student"])
    c = pmake.guardian(pmake.student(fam["klass"]))
    logic.set_preferences(b.id, language="en")
    for user, token in ((a, "token-aa"), (b, "token-bb"), (c, "token-cc")):
        r = pclient.post(f"{API}/devices", json={"token": token, "platform": "android"}, headers=pmake.headers(user))
        assert r.status_code == 200
    enqueued = []
    original = logic.queues.enqueue

    def counting(job_name, *args, **kwargs):
        enqueued.append(job_name)
        return original(job_name, *args, **kwargs)

    logic.queues.enqueue = counting
    try:
        logic.notify_each([
            {"user_ids": [a.id, b.id], "category": "attendance", "title": "An đã đến trường", "body": "07:05",
             "texts": {"en": ("An arrived", "07:05")}, "data": {"type": "checkin", "id": 1}},
            {"user_ids": [c.id], "category": "attendance", "title": "Bình đã đến trường", "body": "07:06"},
            {"user_ids": [], "category": "attendance", "title": "nobody", "body": "-"},
        ])
    finally:
        logic.queues.enqueue = original
    assert enqueued == ["deliver_each"]  # one job for every notice (then the pushes, in that job here)
    rows = {n.user_id: n for n in Notification.select().where(Notification.category == "attendance")}
    assert {u: (n.title, n.body) for u, n in rows.items()} == {
        a.id: ("An đã đến trường", "07:05"), b.id: ("An arrived", "07:05"), c.id: ("Bình đã đến trường", "07:06")}
    assert rows[a.id].dedupe_key == rows[b.id].dedupe_key != rows[c.id].dedupe_key
    assert sorted(fcm.accepted_tokens()) == ["token-aa", "token-bb", "token-cc"]


def test_a_deliver_each_job_that_runs_twice_delivers_nothing_twice(client, make):
    fam = make.family()
    spec = logic.make_spec("attendance", "Điểm danh", "An vắng mặt")
    items = [["n:key-1", [fam["guardian"].id], spec], ["n:key-2", [fam["guardian"].id], spec]]
    logic.deliver_each(items)
    logic.deliver_each(items)
    assert Notification.select().where(Notification.user == fam["guardian"].id).count() == 2
