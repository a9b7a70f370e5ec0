"""Announcements through HTTP with jobs inline (issue 4 acceptance 4-5 and the rules around them),
on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

from notifications import announcements
from notifications.models import Announcement, AnnouncementAck, Notification
from service.db import utcnow

from ..support.errors import assert_error

API = "/api/v1"


def _post(client, headers, **body):
    body.setdefault("title", "Họp phụ huynh")
    body.setdefault("body", "Thứ Bảy 8 giờ tại hội trường.")
    return client.post(f"{API}/announcements", json=body, headers=headers)


def _iso(when: dt.datetime) -> str:
    return when.replace(microsecond=0).isoformat() + "Z"


def test_one_row_per_guardian_naming_their_children_and_counts(pclient, pmake, fcm):
    school = pmake.school()
    admin = pmake.admin(school)
    k1, k2 = pmake.klass(school, grade=1), pmake.klass(school, grade=2)
    a, b, c = pmake.student(k1, "An"), pmake.student(k2, "Bình"), pmake.student(k2, "Chi")
    parent = pmake.guardian(a, b, c)  # three children in the audience
    single = pmake.guardian(a)
    other_school_parent = pmake.guardian(pmake.student(pmake.klass(pmake.school())))
    pclient.post(f"{API}/devices", json={"token": "token-parent-1", "platform": "ios"}, headers=pmake.headers(parent))
    r = _post(pclient, pmake.headers(admin), audience={"school_id": str(school.id)})
    assert r.status_code == 202 and set(r.get_json()) == {"id", "status"}
    ann_id = r.get_json()["id"]
    rows = list(Notification.select().where(Notification.announcement == int(ann_id)))
    assert sorted(n.user_id for n in rows) == sorted([parent.id, single.id])
    inbox = pclient.get(f"{API}/notifications", headers=pmake.headers(parent)).get_json()["items"]
    assert len(inbox) == 1
    assert inbox[0]["category"] == "announcement" and inbox[0]["data"]["type"] == "announcement"
    assert inbox[0]["data"]["id"] == ann_id
    assert [s["name"] for s in inbox[0]["data"]["students"]] == ["An", "Bình", "Chi"]
    assert fcm.accepted_tokens() == ["token-parent-1"]
    pushed = fcm.accepted()[0]["message"]["data"]
    assert pushed["type"] == "announcement" and pushed["id"] == ann_id and "Bình" in pushed["students"]
    assert all(n.user_id != other_school_parent.id for n in rows)

    # narrowed to grade 2: the parent's row names only Bình and Chi
    r = _post(pclient, pmake.headers(admin), audience={"school_id": str(school.id), "grades": [2]})
    note = Notification.get((Notification.announcement == int(r.get_json()["id"])) & (Notification.user == parent.id))
    assert [s["name"] for s in announcements.logic.json.loads(note.data)["students"]] == ["Bình", "Chi"]
    assert not Notification.select().where((Notification.announcement == int(r.get_json()["id"]))
                                           & (Notification.user == single.id)).exists()

    pclient.post(f"{API}/notifications/{inbox[0]['id']}/read", headers=pmake.headers(parent))
    status = pclient.get(f"{API}/announcements/{ann_id}", headers=pmake.headers(admin)).get_json()
    assert status["status"] == "sent"
    assert status["counts"] == {"recipients": 2, "inboxed": 2, "push_sent": 1, "push_failed": 0, "read": 1,
                                "acknowledged": 0}
    # the recipient sees the announcement, without the counts
    seen = pclient.get(f"{API}/announcements/{ann_id}", headers=pmake.headers(parent)).get_json()
    assert seen["title"] == "Họp phụ huynh" and "counts" not in seen and "audience" not in seen


def test_empty_and_foreign_audiences_are_refused(pclient, pmake):
    school, elsewhere = pmake.school(), pmake.school("Trường khác")
    admin = pmake.admin(school)
    h = pmake.headers(admin)
    empty_class = pmake.klass(school)
    foreign_class = pmake.klass(elsewhere)
    foreign_parent = pmake.guardian(pmake.student(foreign_class))
    pmake.guardian(pmake.student(pmake.klass(school)))  # someone is in the school
    assert _post(pclient, h, audience={}).status_code == 422
    assert _post(pclient, h, audience={"school_id": str(school.id), "grades": [12]}).status_code == 422
    r = _post(pclient, h, audience={"class_ids": [str(empty_class.id)]})
    assert_error(r, 422)
    assert _post(pclient, h, audience={"school_id": str(elsewhere.id)}).status_code == 404
    assert _post(pclient, h, audience={"school_id": str(school.id), "class_ids": [str(foreign_class.id)]}).status_code == 404
    assert _post(pclient, h, audience={"class_ids": [str(foreign_class.id)]}).status_code == 404
    assert _post(pclient, h, audience={"school_id": str(school.id),
                                       "guardian_ids": [str(foreign_parent.id)]}).status_code == 404
    assert _post(pclient, h, audience={"school_id": "999999"}).status_code == 404
    assert _post(pclient, h, title="", audience={"school_id": str(school.id)}).status_code == 422
    assert Announcement.select().count() == 0 and Notification.select().count() == 0  # nothing stored


def test_who_may_announce(pclient, pmake):
    fam = pmake.family()
    school, homeroom, klass = fam["school"], fam["teacher"], fam["klass"]
    other_class = pmake.klass(school)
    pmake.guardian(pmake.student(other_class))
    subject_teacher = pmake.teacher(school)
    from service.roster import logic as roster

    roster.assign_subject_teacher(klass.id, subject_teacher.id, "Toán")
    guardian_h = pmake.headers(fam["guardian"])
    assert _post(pclient, guardian_h, audience={"school_id": str(school.id)}).status_code == 403
    th = pmake.headers(homeroom)
    assert _post(pclient, th, audience={"class_ids": [str(klass.id)]}).status_code == 202
    assert _post(pclient, th, audience={"school_id": str(school.id)}).status_code == 403  # not the whole school
    assert _post(pclient, th, audience={"class_ids": [str(other_class.id)]}).status_code == 404  # not their class
    assert _post(pclient, th, audience={"class_ids": [str(klass.id)]}, urgent=True).status_code == 403
    sh = pmake.headers(subject_teacher)
    assert _post(pclient, sh, audience={"class_ids": [str(klass.id)]}).status_code == 403  # not the homeroom teacher
    ann = Announcement.get()
    # only its author and the school admin see the counts; an unrelated teacher gets 404
    assert pclient.get(f"{API}/announcements/{ann.id}", headers=th).get_json()["counts"]["inboxed"] == 1
    assert pclient.get(f"{API}/announcements/{ann.id}", headers=sh).status_code == 404


def test_ack_only_by_recipients_and_reminder_to_the_others(pclient, pmake, fcm):
    fam = pmake.family()
    school = fam["school"]
    admin = pmake.admin(school)
    g1, g2 = fam["guardian"], pmake.guardian(fam["student"])
    outsider = pmake.guardian(pmake.student(pmake.klass(pmake.school())))
    for user, token in ((g1, "token-ack-1"), (g2, "token-ack-2")):
        pclient.post(f"{API}/devices", json={"token": token, "platform": "android"}, headers=pmake.headers(user))
    r = _post(pclient, pmake.headers(admin), audience={"school_id": str(school.id)}, requires_ack=True,
              remind_after_minutes=60)
    ann_id = r.get_json()["id"]
    assert pclient.post(f"{API}/announcements/{ann_id}/ack", headers=pmake.headers(outsider)).status_code == 404
    assert pclient.post(f"{API}/announcements/{ann_id}/ack", headers=pmake.headers(g1)).status_code == 204
    assert pclient.post(f"{API}/announcements/{ann_id}/ack", headers=pmake.headers(g1)).status_code == 204
    assert AnnouncementAck.select().count() == 1
    counts = pclient.get(f"{API}/announcements/{ann_id}", headers=pmake.headers(admin)).get_json()["counts"]
    assert counts["acknowledged"] == 1 and counts["read"] == 1
    seen = pclient.get(f"{API}/announcements/{ann_id}", headers=pmake.headers(g1)).get_json()
    assert seen["acknowledged_at"].endswith("Z")

    fcm.reset()
    ann = Announcement.get_by_id(int(ann_id))
    assert announcements.remind(ann.id, now=ann.started_at + dt.timedelta(minutes=60)) == 1
    assert fcm.accepted_tokens() == ["token-ack-2"]
    assert fcm.accepted()[0]["message"]["data"]["reminder"] == "1"
    assert announcements.remind(ann.id) == 0  # once
    # a reminder is a push, not a second inbox row
    assert Notification.select().where(Notification.in_inbox & (Notification.user == g2.id)).count() == 1

    plain = _post(pclient, pmake.headers(admin), audience={"school_id": str(school.id)}).get_json()["id"]
    assert pclient.post(f"{API}/announcements/{plain}/ack", headers=pmake.headers(g1)).status_code == 409


def test_scheduled_goes_out_at_send_at_and_can_be_cancelled_before(pclient, pmake, fcm):
    fam = pmake.family()
    admin = pmake.admin(fam["school"])
    h = pmake.headers(admin)
    pclient.post(f"{API}/devices", json={"token": "token-sched-1", "platform": "ios"},
                 headers=pmake.headers(fam["guardian"]))
    send_at = utcnow() + dt.timedelta(hours=5)
    r = _post(pclient, h, audience={"school_id": str(fam["school"].id)}, send_at=_iso(send_at))
    assert r.status_code == 202 and r.get_json()["status"] == "scheduled"
    ann = Announcement.get_by_id(int(r.get_json()["id"]))
    assert Notification.select().count() == 0 and fcm.count() == 0
    announcements.plan(ann.id, now=ann.send_at - dt.timedelta(minutes=10))  # woken early: waits
    assert Notification.select().count() == 0 and Announcement.get_by_id(ann.id).status == "scheduled"
    announcements.plan(ann.id, now=ann.send_at)  # the scheduler's call at send_at
    assert Notification.select().count() == 1 and fcm.accepted_tokens() == ["token-sched-1"]
    assert Announcement.get_by_id(ann.id).status == "sent"
    assert pclient.post(f"{API}/announcements/{ann.id}/cancel", headers=h).status_code == 409

    r = _post(pclient, h, audience={"school_id": str(fam["school"].id)}, send_at=_iso(send_at))
    later = int(r.get_json()["id"])
    r = pclient.post(f"{API}/announcements/{later}/cancel", headers=h)
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    announcements.plan(later, now=send_at + dt.timedelta(minutes=1))
    assert not Notification.select().where(Notification.announcement == later).exists()
    assert pclient.post(f"{API}/announcements/{later}/cancel",
                        headers=pmake.headers(fam["guardian"])).status_code == 404


def test_urgent_goes_through_quiet_hours_and_switched_off_category(pclient, pmake, fcm):
    fam = pmake.family()
    g = fam["guardian"]
    admin = pmake.admin(fam["school"])
    h = pmake.headers(g)
    pclient.post(f"{API}/devices", json={"token": "token-urgent-1", "platform": "android"}, headers=h)
    pclient.put(f"{API}/me/preferences", json={"categories": {"announcement": False},
                                               "quiet_hours": {"start": "00:00", "end": "23:59"}}, headers=h)
    _post(pclient, pmake.headers(admin), audience={"school_id": str(fam["school"].id)})
    assert fcm.count() == 0 and Notification.select().count() == 1  # inbox only
    _post(pclient, pmake.headers(admin), title="Nghỉ học do bão", audience={"school_id": str(fam["school"].id)},
          urgent=True)
    assert [r["message"]["notification"]["title"] for r in fcm.accepted()] == ["Nghỉ học do bão"]
    message = fcm.accepted()[0]["message"]
    assert message["data"]["urgent"] == "1" and message["android"]["notification"]["channel_id"] == "urgent"
    assert message["apns"]["payload"]["aps"]["interruption-level"] == "time-sensitive"


def test_chunk_job_run_twice_gives_the_same_rows(pmake, push_app, fcm, monkeypatch):
    monkeypatch.setattr(announcements, "CHUNK", 2)
    fam = pmake.family()
    for _ in range(3):
        pmake.guardian(fam["student"])
    admin = pmake.admin(fam["school"])
    ann = announcements.create(admin.id, "Thông báo", "Nội dung", {"school_id": fam["school"].id})
    assert Announcement.get_by_id(ann.id).chunks == 2
    before = sorted((n.id, n.user_id) for n in Notification.select())
    for seq in (0, 1):
        announcements.run_chunk(ann.id, seq)  # a retried job
    announcements.plan(ann.id)  # and a retried planner
    assert sorted((n.id, n.user_id) for n in Notification.select()) == before and len(before) == 4


def test_a_named_guardian_outside_the_grades_gets_all_their_children_named(pclient, pmake, fcm):
    """Grades narrow the children named; a guardian named explicitly whose children are outside those
    grades gets all of them (the audience's second list of children, built only when guardians are
    named); the same announcement without named guardians names only the grades' children."""
    school = pmake.school()
    admin = pmake.admin(school)
    k1, k3 = pmake.klass(school, grade=1), pmake.klass(school, grade=3)
    an, chi, dung = pmake.student(k1, "An"), pmake.student(k3, "Chi"), pmake.student(k3, "Dũng")
    parent = pmake.guardian(an, chi)  # one child in grade 1
    named = pmake.guardian(chi, dung)  # none in grade 1, named explicitly

    def students(ann_id, user):
        note = Notification.get((Notification.announcement == int(ann_id)) & (Notification.user == user.id))
        return [s["name"] for s in announcements.logic.json.loads(note.data)["students"]]

    r = _post(pclient, pmake.headers(admin), audience={"school_id": str(school.id), "grades": [1],
                                                       "guardian_ids": [str(named.id)]})
    assert r.status_code == 202, r.get_json()
    assert students(r.get_json()["id"], parent) == ["An"]
    assert students(r.get_json()["id"], named) == ["Chi", "Dũng"]
    r = _post(pclient, pmake.headers(admin), audience={"school_id": str(school.id), "grades": [1]})
    assert students(r.get_json()["id"], parent) == ["An"]
    assert not Notification.select().where((Notification.announcement == int(r.get_json()["id"]))
                                           & (Notification.user == named.id)).exists()
