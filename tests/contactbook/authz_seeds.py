"""The contact book in the authorization matrix (tests/support/authz.py): its objects in school A /
family A, the values its generated calls need, and the reaches that are legitimate."""
from __future__ import annotations

import datetime as dt

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
