"""Acceptance 1: ``lienlac seed-demo`` on a fresh database, then sign in over HTTP with what it printed."""
from __future__ import annotations

import json
import re
import subprocess
import uuid

import pytest
import requests

from tests.support.errors import assert_error
from tests.support.servers import ROOT, lienlac, process_env, start_web

ROLES = ("admin", "teacher", "cafeteria", "guardian")


def _seed(env) -> dict:
    done = subprocess.run(lienlac("seed-demo"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON object on stdout, nothing else
    assert set(result) == {"school_id", "accounts", "class_id", "student_id"}
    assert set(result["accounts"]) == set(ROLES)
    for key in ("school_id", "class_id", "student_id"):
        assert isinstance(result[key], str) and re.fullmatch(r"[1-9][0-9]*", result[key]), result
    for account in result["accounts"].values():
        assert set(account) == {"phone", "password", "user_id"}
        assert re.fullmatch(r"\+84[0-9]{9}", account["phone"]), account
        assert isinstance(account["password"], str) and len(account["password"]) >= 12
        assert isinstance(account["user_id"], str) and re.fullmatch(r"[1-9][0-9]*", account["user_id"])
    assert len({a["user_id"] for a in result["accounts"].values()}) == 4
    return result


def _login(url, account) -> dict:
    r = requests.post(url + "/api/v1/auth/login", json={"phone": account["phone"], "password": account["password"]},
                      timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": "Bearer " + r.json()["access_token"]}


@pytest.mark.slow
def test_seed_demo_then_sign_in_over_http(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'fresh' / 'demo.sqlite3'}"  # not even migrated yet
    env = process_env(database_url, None, tmp_path, SOCKETIO_CHANNEL=f"t-{uuid.uuid4().hex}")
    first = _seed(env)
    second = _seed(env)
    # passwords are generated per run; a second run is a second demo school
    for role in ROLES:
        assert first["accounts"][role]["password"] != second["accounts"][role]["password"]
        assert first["accounts"][role]["phone"] != second["accounts"][role]["phone"]
    assert first["school_id"] != second["school_id"] and first["student_id"] != second["student_id"]

    web, url = start_web(env, tmp_path)
    try:
        accounts = first["accounts"]
        guardian = _login(url, accounts["guardian"])
        me = requests.get(url + "/api/v1/me", headers=guardian, timeout=10).json()
        assert me["id"] == accounts["guardian"]["user_id"]
        assert first["student_id"] in [c["id"] for c in me["children"]]
        child = next(c for c in me["children"] if c["id"] == first["student_id"])
        assert child["class_id"] == first["class_id"]
        assert {"role": "guardian", "school_id": first["school_id"], "class_ids": [first["class_id"]]} in me["roles"]
        assert requests.get(url + f"/api/v1/students/{first['student_id']}", headers=guardian,
                            timeout=10).status_code == 200
        # the other run's child is not theirs
        assert requests.get(url + f"/api/v1/students/{second['student_id']}", headers=guardian,
                            timeout=10).status_code == 404

        teacher = _login(url, accounts["teacher"])
        me = requests.get(url + "/api/v1/me", headers=teacher, timeout=10).json()
        teaching = [r for r in me["roles"] if r["role"] == "teacher"]
        assert len(teaching) == 1 and teaching[0]["school_id"] == first["school_id"]
        assert first["class_id"] in teaching[0]["class_ids"]
        klass = requests.get(url + f"/api/v1/classes/{first['class_id']}", headers=teacher, timeout=10).json()
        assert klass["homeroom_teacher_id"] == accounts["teacher"]["user_id"]
        roster_page = requests.get(url + f"/api/v1/classes/{first['class_id']}/students", headers=teacher,
                                   timeout=10).json()
        assert first["student_id"] in [s["id"] for s in roster_page["items"]]

        for role in ("admin", "cafeteria"):
            me = requests.get(url + "/api/v1/me", headers=_login(url, accounts[role]), timeout=10).json()
            assert {"role": role, "school_id": first["school_id"], "class_ids": []} in me["roles"]

        # the second run's accounts work too, and the first run's passwords do not open them
        assert requests.get(url + "/api/v1/me", headers=_login(url, second["accounts"]["guardian"]),
                            timeout=10).json()["children"][0]["id"] == second["student_id"]
        r = requests.post(url + "/api/v1/auth/login", timeout=10,
                          json={"phone": second["accounts"]["guardian"]["phone"],
                                "password": accounts["guardian"]["password"]})
        assert_error(r, 401)
    finally:
        web.kill()
