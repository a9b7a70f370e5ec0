"""Schedules' objects for the authorization matrix (tests/support/authz.py): a timetable for class 1A
in term A, an event of school A with family A's child signed up, family A's guardian's feed token."""
from __future__ import annotations

import datetime as dt

from tests.support.authz import allow, elsewhere, given, seeder


@seeder
def _schedules(w):
    from schedules import logic
    from service.roster import logic as roster

    o, admin = w.objects, w.roles["admin_a"]
    periods = [{"weekday": d, "period": 1, "start": "07:00", "end": "07:45", "subject": "Toán",
                "teacher_id": w.roles["subject_teacher_a"].id} for d in range(1, 6)]
    logic.set_timetable(admin, o["class_a"].id, o["term_a"].id, periods)
    o["term_sb"] = o["term_b"]  # the core seed's term of school B
    o["event_a"] = logic.create_event(admin, o["school_a"].id, {
        "title": "Hội thao", "starts_at": dt.datetime(2036, 12, 20, 1), "ends_at": dt.datetime(2036, 12, 20, 3),
        "audience": {}, "signup": True, "capacity": None})
    logic.sign_up(w.roles["guardian_a"], o["event_a"]["id"], o["child_a"].id)
    o["feed_token_a"] = logic.issue_feed(w.roles["guardian_a"])


TIMETABLE = "/classes/{class_id}/timetable"
given("event_id")(lambda w, family: w.objects["event_a"]["id"])
given("feed_token", missing="no-such-feed-token")(lambda w, family: w.objects["feed_token_a"])
given("term_id", under=TIMETABLE)(lambda w, family: w.objects["term_a"].id)
given("periods", under=TIMETABLE)(lambda w, family: [
    {"weekday": 1, "period": 1, "start": "07:00", "end": "07:45", "subject": "Toán",
     "teacher_id": w.roles["subject_teacher_a"].id}])
given("date", under=TIMETABLE + "/changes")(lambda w, family: "2026-12-03")  # a Thursday of term A
given("ends_at", under="/schools/{school_id}/events")(lambda w, family: "2027-03-02T03:00:00Z")
elsewhere("term_id")(lambda w: w.objects["term_sb"].id)

allow("*", "GET", "/calendar/{feed_token}.ics",
      reason="a capability URL: whoever holds the token reads that guardian's calendar (revocable)")
for _op in ("GET " + TIMETABLE, "GET " + TIMETABLE + "/changes"):
    allow("guardian_other_family", *_op.split(" "), reason="family B's child is in class 1A: its timetable is theirs too")
for _op in ("GET " + TIMETABLE, "GET " + TIMETABLE + "/changes", "GET /students/{student_id}/timetable",
            "GET /students/{student_id}/calendar"):
    allow("cafeteria", *_op.split(" "), reason="the school's cafeteria staff read its classes and students")
given("teacher_id", under=TIMETABLE + "/changes")(lambda w, family: w.roles["teacher_other_class"].id)
given("kind", under=TIMETABLE + "/changes")(lambda w, family: "substitute")  # with the teacher_id above
