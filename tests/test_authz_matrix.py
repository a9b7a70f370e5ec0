"""The authorization matrix, generated from mobile_api_docs/ (see tests/support/authz.py).

For every operation whose path names an object, and every client Socket.IO event whose payload
names one, each foreign role (a guardian of another family or class, a teacher of another class,
a teacher and an admin of another school, the cafeteria) is refused on school A's / family A's
objects: 403 or 404, the same answer as for an id that names nothing (no existence oracle), and
no table changed. The owner run proves each generated call succeeds for someone entitled to it.
A guardian never receives another family's phone numbers, national ids or device tokens.

One seed per backend (module scope); every call runs in a transaction rolled back after it.
"""
from __future__ import annotations

import json
import shutil
import uuid

import pytest

from service.config import Config

from .conftest import BACKENDS
from .support import authz
from .support.apps import running_app
from .support.errors import assert_error
from .support.servers import truncate_all

authz.load_package_seeds()
OPENAPI, ASYNCAPI = authz.load_docs()
COMPONENTS = OPENAPI.get("components", {}).get("schemas", {})
OBJECT_OPS = authz.object_operations(OPENAPI)
REFERENCE_OPS = authz.reference_operations(OPENAPI)
ALL_GETS = [op for op in authz.operations(OPENAPI) if op.method == "GET"]
EVENTS = authz.client_events(ASYNCAPI)


def _label(variant) -> str:
    return f" [{variant}]" if variant else ""


def _case(op, role, variant):
    hole = next((h for h in authz.KNOWN_HOLES if h.matches(role, op.method, op.path, variant)), None)
    marks = [pytest.mark.xfail(strict=True, reason=hole.reason)] if hole else []
    return pytest.param(op, role, variant, id=f"{op.id}{_label(variant)} as {role}", marks=marks)


FOREIGN_CASES = [_case(op, role, variant) for op in OBJECT_OPS + REFERENCE_OPS
                 for variant in authz.variants(op.params, op.path) for role in authz.FOREIGN_ROLES]
OWNER_CASES = [pytest.param(op, variant, id=op.id + _label(variant)) for op in OBJECT_OPS + REFERENCE_OPS
               for variant in authz.variants(op.params, op.path)]


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        truncate_all(url)
    else:
        path = tmp_path_factory.mktemp("authz") / "lienlac.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    config = Config(database_url=url, redis_url=None, secret_key="authz-" + uuid.uuid4().hex, testing=True,
                    jobs_inline=True, upload_dir=str(tmp_path_factory.mktemp("uploads")),
                    login_rate_limit="100000 per minute", otp_rate_limit="100000 per minute",
                    extra={"ip_rate_limit": "100000 per minute"})
    with running_app(config) as app:
        w = authz.World(app).seed()
        w.client = app.test_client()
        w.baseline = authz.snapshot()
        w.sees = {}
        yield w


def _call(world, op, role, path, family="a", variant=None):
    kwargs = authz.request_kwargs(op, COMPONENTS, world, family, variant=variant)
    return world.client.open(path, method=op.method, headers=world.headers(role), **kwargs)


def _show(response) -> str:
    text = response.get_data(as_text=True)
    return f"{response.status_code} {text[:300]}"


# --- HTTP: foreign roles ----------------------------------------------------------------------
@pytest.mark.parametrize("op,role,variant", FOREIGN_CASES)
def test_foreign_role_is_refused_and_nothing_changes(world, op, role, variant):
    try:
        path = authz.fill_path(op, world, variant=variant)
    except authz.Unresolved as exc:
        pytest.fail(str(exc))
    allowed = next((a for a in authz.ALLOWED if a.matches(role, op.method, op.path, variant)), None)
    with authz.rolled_back():
        response = _call(world, op, role, path, variant=variant)
        changed = authz.diff(world.baseline, authz.snapshot())
    if allowed is not None:
        # a legitimate reach (the reason is in the allow-list): a read changes nothing either
        assert response.status_code < 500, _show(response)
        if op.method == "GET":
            assert not changed, f"{op.id} as {role} (allowed: {allowed.reason}) changed {changed}"
        return
    assert response.status_code != 422, (
        f"{op.id} as {role}: 422 means the generated call was refused for its body, so authorization was "
        f"not tested: {_show(response)}")
    assert response.status_code in (403, 404), f"{op.id} as {role} on school A's object: {_show(response)}"
    assert_error(response, response.status_code)
    assert not changed, f"{op.id} as {role} was refused but changed {changed}"
    if not op.params:
        return  # the objects are named in the body
    # no existence oracle: a role that may not see the object gets the answer an id naming nothing gets
    if response.status_code == 403 and _sees(world, op, role, variant):
        return  # it may read the object (e.g. the cafeteria reads a student): 403 tells it nothing new
    probe = authz.fill_path(op, world, missing=op.params[0], variant=variant)
    with authz.rolled_back():
        unknown = _call(world, op, role, probe, variant=variant)
    assert unknown.status_code == response.status_code, (
        f"{op.id} as {role}: {response.status_code} for school A's object but {unknown.status_code} for "
        f"one that does not exist: the answer tells them it exists")


def _sees(world, op, role, variant=None) -> bool:
    """Does ``role`` read the object the path's first parameter names (``GET /classes/{class_id}``)?"""
    import re

    base = re.match(r"^[^{]*{[^}]+}", op.path).group(0)
    read = next((o for o in OBJECT_OPS if o.method == "GET" and o.path == base), None)
    if read is None or read == op:
        return False
    key = (role, read.path, variant)
    if key not in world.sees:
        with authz.rolled_back():
            path = authz.fill_path(read, world, variant=variant)
            world.sees[key] = 200 <= _call(world, read, role, path, variant=variant).status_code < 300
    return world.sees[key]


# --- HTTP: the owner run (the generated calls are ones that succeed) -----------------------------
@pytest.mark.parametrize("op,variant", OWNER_CASES)
def test_generated_call_succeeds_for_an_entitled_role(world, op, variant):
    try:
        path = authz.fill_path(op, world, variant=variant) if op.params else authz.API + op.path
    except authz.Unresolved as exc:
        pytest.fail(str(exc))
    tried = []
    for role in authz.OWNER_ROLES:
        with authz.rolled_back():
            response = _call(world, op, role, path, variant=variant)
        if 200 <= response.status_code < 300:
            return
        tried.append(f"{role}: {_show(response)}")
    pytest.fail(f"{op.id}: no role of school A succeeds with the generated call, so the matrix's refusals "
                f"prove nothing; register better values with authz.given(...). Tried:\n" + "\n".join(tried))


# --- bodies: school A's people may not reference school B's objects -----------------------------
BODY_OPS = authz.body_operations(OPENAPI)


@pytest.mark.parametrize("op", BODY_OPS, ids=lambda op: op.id)
def test_body_naming_another_schools_object_is_refused(world, op):
    """Each ``*_id`` of the body in turn names school B's object (a class, a student, a teacher...):
    no role of school A gets it accepted, and nothing changes. The unchanged body succeeds for one of
    them, so the refusal is about the reference."""
    try:
        path = authz.fill_path(op, world) if op.params else authz.API + op.path
        body = authz.build_object(op.body_schema, COMPONENTS, op.path, world, "a", ids=True)
        swaps = [(slot, authz.elsewhere_value(world, slot[-1])) for slot in authz.id_slots(body)]
    except authz.Unresolved as exc:
        pytest.fail(str(exc))
    assert swaps, f"{op.id}: the generated body names no object"

    def attempt(role, payload):
        with authz.rolled_back():
            kwargs = authz.request_kwargs(op, COMPONENTS, world, body=payload)
            response = world.client.open(path, method=op.method, headers=world.headers(role), **kwargs)
            return response, authz.diff(world.baseline, authz.snapshot())

    fresh = lambda payload: authz.replaced(payload, ("client_id",), "authz-" + uuid.uuid4().hex) \
        if "client_id" in payload else payload  # noqa: E731
    assert any(200 <= attempt(role, fresh(body))[0].status_code < 300 for role in authz.OWNER_ROLES), (
        f"{op.id}: no role of school A succeeds with {body}; register values with authz.given(...)")
    accepted = []
    for slot, value in swaps:
        for role in authz.OWNER_ROLES:
            response, changed = attempt(role, fresh(authz.replaced(body, slot, value)))
            in_answer = authz.REFUSED_IN_ANSWER.get((op.method, op.path))
            if in_answer and response.status_code == 200 and not changed and in_answer(response.get_json()):
                continue  # refused per item in the answer (a gate batch's rejected events), nothing stored
            if response.status_code < 400 or response.status_code >= 500 or changed:
                accepted.append(f"{'.'.join(map(str, slot))}={value} as {role}: {_show(response)} changed={changed}")
    assert not accepted, f"{op.id} took school B's objects:\n" + "\n".join(accepted)


# --- privacy: what a guardian of family B receives -------------------------------------------------
def test_guardian_never_receives_another_familys_phones_ids_or_tokens(world):
    secrets = [s for family in ("a", "c") for s in world.secrets[family]]
    assert all(secrets)
    leaks, seen = [], 0
    for op, family, variant in [(op, family, variant) for op in ALL_GETS for family in ("b", "a")
                                for variant in authz.variants(op.params, op.path)]:
        try:
            path = authz.fill_path(op, world, family, variant=variant)
        except authz.Unresolved as exc:
            pytest.fail(str(exc))
        with authz.rolled_back():
            response = _call(world, op, "guardian_other_family", path, family, variant)
        text = response.get_data(as_text=True)
        seen += 200 <= response.status_code < 300
        leaks += [f"{op.id} ({path}): {s}" for s in secrets if s in text]
    assert seen >= 10, "the scan saw too few successful answers to mean anything"
    # the scan would see a phone if one were there: family B's own phone comes back to them (GET /me)
    own = authz.national_number(world.roles["guardian_other_family"].phone)
    with authz.rolled_back():
        assert own in world.client.get(f"{authz.API}/me", headers=world.headers("guardian_other_family")).get_data(
            as_text=True)
    assert not leaks, "family B's guardian received other families' secrets:\n" + "\n".join(leaks)


# --- Socket.IO -----------------------------------------------------------------------------------
def _socket(world, role):
    from service.realtime import socketio

    client = socketio.test_client(world.app, auth={"token": world.token(role)})
    assert client.is_connected(), role
    return client


def _payload(world, event, variant=None) -> dict:
    return authz.build_object(event.schema, COMPONENTS, event.name, world, "a", variant=variant)


def _event_case(event, role, variant):
    hole = next((h for h in authz.KNOWN_HOLES if h.matches(role, "EMIT", event.name, variant)), None)
    marks = [pytest.mark.xfail(strict=True, reason=hole.reason)] if hole else []
    return pytest.param(event, role, variant, id=f"{event.name}{_label(variant)} as {role}", marks=marks)


@pytest.mark.parametrize("event,role,variant", [
    _event_case(e, r, v) for e in EVENTS for v in authz.variants(e.id_fields, e.name) for r in authz.FOREIGN_ROLES
    if not any(a.matches(r, "EMIT", e.name, v) for a in authz.ALLOWED)])
def test_socket_event_foreign_role_is_refused(world, event, role, variant):
    listener = _socket(world, "homeroom_a")  # in every conversation of family A
    client = _socket(world, role)
    try:
        listener.get_received()
        with authz.rolled_back():  # the test client runs handlers on this thread, on this connection
            ack = client.emit(event.name, _payload(world, event, variant), callback=event.has_ack)
            changed = authz.diff(world.baseline, authz.snapshot())
        heard = [e["name"] for e in listener.get_received()]
    finally:
        client.disconnect()
        listener.disconnect()
    if event.has_ack:
        assert isinstance(ack, dict) and ack.get("error", {}).get("code") in ("not_found", "forbidden"), (
            f"{event.name} as {role} on family A's conversation: acknowledged {ack!r}")
    assert not changed, f"{event.name} as {role} changed {changed}"
    assert not heard, f"{event.name} as {role}: family A's conversation heard {heard}"


@pytest.mark.parametrize("event,variant", [pytest.param(e, v, id=e.name + _label(v)) for e in EVENTS if e.has_ack
                                           for v in authz.variants(e.id_fields, e.name)])
def test_socket_event_generated_payload_succeeds_for_the_owner(world, event, variant):
    client = _socket(world, "guardian_a")
    try:
        with authz.rolled_back():
            ack = client.emit(event.name, _payload(world, event, variant), callback=True)
    finally:
        client.disconnect()
    assert isinstance(ack, dict) and "error" not in ack, f"{event.name} as family A's guardian: {ack!r}"


def test_matrix_covers_the_documented_api():
    """The matrix is generated from the documents: it sees the object operations and events that exist."""
    ids = {op.id for op in OBJECT_OPS}
    assert {"POST /conversations", "POST /announcements"} <= {op.id for op in REFERENCE_OPS}
    assert {"GET /students/{student_id}", "DELETE /devices/{token}", "GET /roster-imports/{import_id}",
            "POST /conversations/{conversation_id}/messages"} <= ids
    assert {e.name for e in EVENTS} >= {"message:send", "message:read", "typing"}
    assert json.dumps(OPENAPI)  # documents parsed


def test_every_case_left_the_seed_as_it_was(world):
    """The rollback around each call held: the next module-scoped case starts from the seed."""
    assert authz.diff(world.baseline, authz.snapshot()) == []


def test_snapshot_sees_a_change_and_rollback_undoes_it(world):
    from service.roster import logic as roster

    with authz.rolled_back():
        roster.update_student(world.objects["child_a"].id, {"name": "Đổi tên"})
        assert [t for t in authz.diff(world.baseline, authz.snapshot()) if t.startswith("student:")]
    assert authz.diff(world.baseline, authz.snapshot()) == []
