"""The contact book in the authorization matrix (tests/support/authz.py): its objects in school A /
family A, the values its generated calls need, and the reaches that are legitimate."""
from __future__ import annotations

import datetime as dt
import uuid

from tests.support.authz import NOT_OBJECT_IDS, allow, given, refused_in_answer, seeder

NOT_OBJECT_IDS.add("event_id")  # a gate device's own event numbering: names nothing stored


@seeder
def _contact_book(w) -> None:
    from contactbook.logic import checkins, leave

    o, r = w.objects, w.roles
    o["gate_device_a"] = checkins.register_device(r["admin_a"], o["school_a"].id, "Cổng chính")
    start = dt.date.today() + dt.timedelta(days=7)
    o["leave_request_a"] = leave.create(r["guardian_a"], o["child_a"].id, start, start + dt.timedelta(days=1),
                                        "Cháu bị sốt")
    o["leave_request_b"] = leave.create(r["guardian_other_family"], o["child_b"].id, start, start,
                                        "Về quê")


given("device_id")(lambda w, family: w.objects["gate_device_a"]["id"])
given("leave_request_id")(
    lambda w, family: w.objects["leave_request_b" if family == "b" else "leave_request_a"]["id"])

# bodies
given("date", under="/classes/{class_id}/attendance")(
    lambda w, family: (dt.date.today() - dt.timedelta(days=1)).isoformat())
given("records", under="/classes/{class_id}/attendance")(
    lambda w, family: [{"student_id": str(w.objects["child_a"].id), "status": "absent_unexcused"}])
given("from_date", under="/students/{student_id}/leave-requests")(
    lambda w, family: (dt.date.today() + dt.timedelta(days=20)).isoformat())
given("to_date", under="/students/{student_id}/leave-requests")(
    lambda w, family: (dt.date.today() + dt.timedelta(days=21)).isoformat())
given("name", under="/schools/{school_id}/gate-devices")(lambda w, family: "Cổng phụ")

# legitimate reaches
for _role in ("teacher_other_class", "teacher_removed"):
    allow(_role, "GET", "/schools/{school_id}/contact-book-settings",
          "a teacher of school A reads the school's start time and school days")
allow("*", "POST", "/checkins", "a gate device's endpoint: no user token reaches it (401 for every bearer "
                                "token); a device's key is checked against its school per event")


@seeder
def _gate_key(w) -> None:
    # every matrix call carries school A's gate key: POST /checkins is the device's, whoever sends it
    from contactbook.logic import checkins

    device = checkins.register_device(w.roles["admin_a"], w.objects["school_a"].id, "Cổng cho ma trận")
    w.extra_headers["X-Device-Key"] = device["api_key"]


given("at", under="/checkins")(lambda w, family: dt.datetime.utcnow().replace(microsecond=0).isoformat() + "Z")
refused_in_answer("POST", "/checkins",
                  lambda answer: answer["stored"] == 0 and [r["reason"] for r in answer["rejected"]]
                  == ["student_not_in_school"])


# --- grades, remarks and the term report --------------------------------------------------------
#: the subject ``subject_teacher_a`` teaches in class 1A (core seed); the admin grades another one
SUBJECT, PUBLISHED_SUBJECT = "Toán", "Tiếng Việt"


@seeder
def _grades(w) -> None:
    """In 1A, term I of school A: Toán as drafts (the subject teacher's, to publish); Tiếng Việt entered
    by the admin, published, then corrected once (a change in the audit); a remark for families A and B."""
    from contactbook.logic import grades, remarks

    o, r = w.objects, w.roles
    a, b, klass, term = o["child_a"].id, o["child_b"].id, o["class_a"].id, o["term_a"].id
    grades.put_grades(r["subject_teacher_a"], klass, term, SUBJECT, "regular", 1,
                      [{"student_id": a, "score": 8.5}, {"student_id": b, "score": 7}])
    admin = r["admin_a"]
    for kind, slot, scores in (("regular", 1, (9, 8)), ("regular", 2, (8.5, 7.5)), ("midterm", None, (8, 7)),
                               ("final", None, (9, 6.5))):
        grades.put_grades(admin, klass, term, PUBLISHED_SUBJECT, kind, slot,
                          [{"student_id": a, "score": scores[0]}, {"student_id": b, "score": scores[1]}])
    grades.publish(admin, klass, term, PUBLISHED_SUBJECT)
    grades.put_grades(admin, klass, term, PUBLISHED_SUBJECT, "regular", 2, [{"student_id": a, "score": 9}])
    o["remark_a"] = remarks.add_remark(r["homeroom_a"], a, "Cháu An đọc to, rõ ràng; cần luyện thêm phép trừ.")
    o["remark_b"] = remarks.add_remark(r["homeroom_a"], b, "Cháu Ngọc hăng hái phát biểu.")


# the grade book: the subject its teacher teaches, a new regular assessment for family A's child
given("subject", under="/classes/{class_id}/grades")(lambda w, family: SUBJECT)
given("subject", under="/classes/{class_id}/grades/changes")(lambda w, family: PUBLISHED_SUBJECT)
given("kind", under="/classes/{class_id}/grades")(lambda w, family: "regular")
given("slot", under="/classes/{class_id}/grades")(lambda w, family: 2)
given("scores", under="/classes/{class_id}/grades")(
    lambda w, family: [{"student_id": str(w.objects["child_a"].id), "score": 9.5}])
# a student's grades: by term (``term_id`` is optional beside ``year_id``; the report's is required)
given("term_id", under="/students/{student_id}/grades")(lambda w, family: w.objects["term_a"].id)
given("body", under="/students/{student_id}/remarks")(lambda w, family: "Cháu tiến bộ trong tuần.")
# No allow for grades, remarks or the report: every foreign role is refused. A guardian of another
# family in 1A sees the class (allowed above, in the core seeds) but not its grade book (404, as for
# no class); the cafeteria reads the class and the student, so its 403 there tells it nothing new
# (the matrix's ``_sees``) and needs no allow either.

# the gate device's own event id in a check-in batch (a string of its numbering), not schedules' events
given("event_id", under="/checkins")(lambda w, family: f"gate-{uuid.uuid4().hex[:12]}")
