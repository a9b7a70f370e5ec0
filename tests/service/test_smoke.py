from ..support.errors import assert_error


def test_healthz_and_404_envelope(client):
    assert client.get("/healthz").json == {"status": "ok"}
    r = client.get("/api/v1/nope")
    assert_error(r, 404)


def test_me_lists_child(client, make):
    fam = make.family()
    r = client.get("/api/v1/me", headers=make.headers(fam["guardian"]))
    assert r.status_code == 200, r.json
    assert r.json["children"][0]["id"] == str(fam["student"].id)
    assert r.json["roles"] == [{"role": "guardian", "school_id": str(fam["school"].id),
                                "class_ids": [str(fam["klass"].id)]}]
