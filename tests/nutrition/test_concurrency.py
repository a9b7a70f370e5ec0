"""Publishing under concurrency and injected time: guardians told once, alerts once and never for a day that is over."""
from __future__ import annotations

import datetime as dt
import json
import threading

from nutrition import logic
from notifications.models import Notification
from service.db import connection


def test_concurrent_publishes_tell_once(app, make, world):
    w = world
    s, monday = w["school"].id, w["monday"]
    with app.app_context():
        peanut = logic.create_dish(w["cafeteria"], s, {"name": "Xôi lạc", "kcal": 300, "protein_g": 8, "fat_g": 9,
                                                        "carbs_g": 45, "allergens": ["peanut"]})
        logic.set_allergies(w["mother"], w["anh"].id, ["peanut"])
        logic.put_menu(w["cafeteria"], s, monday, [{"meal": "breakfast", "dish_ids": [peanut["id"]]}])
    barrier, results, errors = threading.Barrier(3), [], []

    def publish(user):
        try:
            with app.app_context(), connection():
                barrier.wait(10)
                results.append(logic.publish(user, s, monday, monday))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(u,)) for u in (w["cafeteria"], w["admin"], w["cafeteria"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(len(r["published"]) for r in results) == [0, 0, 1]
    with app.app_context(), connection():
        mine = [n for n in Notification.select().where(Notification.user == w["mother"].id)]
        kinds = sorted(json.loads(n.data).get("kind") for n in mine)
        assert kinds == ["allergy", "menu"]
        assert Notification.select().where(Notification.user == w["cafeteria"].id).count() == 1


def test_days_already_past_raise_no_alert(app, make, world):
    """Alerts go out before the day (or on it): publishing a day that is over alerts nobody."""
    w = world
    s, monday = w["school"].id, w["monday"]
    with app.app_context(), connection():
        peanut = logic.create_dish(w["cafeteria"], s, {"name": "Xôi lạc", "kcal": 300, "protein_g": 8, "fat_g": 9,
                                                        "carbs_g": 45, "allergens": ["peanut"]})
        logic.set_allergies(w["mother"], w["anh"].id, ["peanut"])
        logic.put_menu(w["cafeteria"], s, monday, [{"meal": "breakfast", "dish_ids": [peanut["id"]]}])
        tuesday = monday + dt.timedelta(days=1)
        assert logic.publish(w["cafeteria"], s, monday, monday, today=tuesday)["notified"] is True
        kinds = [json.loads(n.data).get("kind") for n in Notification.select().where(Notification.user == w["mother"].id)]
        assert kinds == ["menu"]
        assert Notification.select().where(Notification.user == w["cafeteria"].id).count() == 0
        # the same publish seen on the day itself alerts
        logic.put_menu(w["cafeteria"], s, tuesday, [{"meal": "breakfast", "dish_ids": [peanut["id"]]}])
        logic.publish(w["cafeteria"], s, monday, tuesday, today=tuesday)
        alerts = [json.loads(n.data) for n in Notification.select().where(Notification.user == w["mother"].id)]
        assert [a["date"] for a in alerts if a.get("kind") == "allergy"] == [str(tuesday)]
