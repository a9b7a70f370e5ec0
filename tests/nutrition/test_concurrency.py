"""Two publishes of the same days at once: one publishes and tells the guardians, the other finds
nothing left to do; allergy alerts still go out once per child, dish and day."""
from __future__ import annotations

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
