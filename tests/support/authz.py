"""The authorization matrix: seeds, registries and the machinery behind ``tests/test_authz_matrix.py``.

The matrix is generated: every operation of ``mobile_api_docs/openapi.json`` whose path names an
object (``/students/{student_id}``, ``/devices/{token}``...) and every client Socket.IO event of
``asyncapi.json`` whose payload names one (``conversation_id``) is called by each *foreign* role
on objects of school A / family A, and must be refused (403/404) with nothing changed.

To cover a new endpoint, a package registers, in ONE place (its ``tests/<package>/authz_seeds.py``,
imported automatically by ``load_package_seeds``):

- ``@seeder`` — a function ``(world) -> None`` that creates its objects for school A / family A
  (and family B when it has per-family objects) with its own logic functions, and stores them in
  ``world.objects`` (e.g. ``world.objects["leave_request_a"] = row``);
- ``@given("leave_request_id")`` — ``(world, family) -> value`` naming that object for a path
  parameter (or a payload / body field) of that name. ``under="/leave-requests/{leave_request_id}/cancel"``
  narrows it to operations whose path starts there (the longest match wins) when one operation
  needs another object (a pending request for ``cancel``). ``family`` is ``"a"`` (the victim:
  every foreign call targets this) or ``"b"`` (family B's own object, for the guardian-B privacy
  scan); ignore it when the object is not per family.
- ``allow(role, method, path, reason)`` — when a role of the matrix legitimately reaches an
  operation on school A's objects (cafeteria staff read the school's menus), with the reason
  (``role="*"``: everyone, e.g. a capability URL such as a calendar feed token).
- ``known_hole(role, method, path, reason)`` — a refusal missing in code another change owns:
  the case becomes ``xfail(strict=True)`` (``method="EMIT"`` and the event name for sockets).
- ``given(..., variant="class channel")`` — a further object of the same kind to target too (each
  operation runs once per variant); ``allow``/``known_hole`` take the same ``variant=``.
- ``@elsewhere("class_id")`` — ``(world) -> id`` of school B's object of that kind: every body
  field naming objects (``*_id``/``*_ids``, nested too) is swapped for it in turn, and no role of
  school A may get that accepted. ``NOT_OBJECT_IDS`` lists ``*_id`` fields that name nothing
  stored (``client_id``); a ``given`` returning ``OMIT`` leaves a field out of a generated body.

Besides the refusal, each foreign call must answer what an id naming nothing answers (no
existence oracle), unless the role may read the object anyway; and family B's guardian, over every
GET operation, never receives family A's or C's phone numbers, national ids or device tokens.

A path parameter nobody registered makes the matrix fail and name the parameter to seed.
Request bodies are generated from the operation's requestBody schema (required fields, with
``given`` values for named fields, then the schema's example/default/enum/format/type), and query
parameters alike (the required ones, and those with a ``given`` whose ``under`` the path starts with:
``given("term_id", under="/students/{student_id}/grades")``); the
owner run checks that each generated call succeeds (2xx) for someone entitled to it, so a
refusal in the matrix is never just a 422.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib
import io
import json
import pkgutil
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "mobile_api_docs"
API = "/api/v1"
METHODS = ("get", "post", "put", "patch", "delete")

#: roles that must never reach school A's / family A's objects (unless ``allow``-ed below)
FOREIGN_ROLES = ("guardian_other_family", "guardian_other_class", "teacher_other_class", "teacher_other_school",
                 "admin_other_school", "guardian_other_school", "cafeteria", "guardian_unlinked", "teacher_removed")
#: the people entitled to school A's / family A's objects, tried in this order by the owner run
OWNER_ROLES = ("guardian_a", "homeroom_a", "subject_teacher_a", "admin_a", "cafeteria")

MISSING_ID = "987654321987"  # an id that names nothing (the existence-oracle probe)


# --- registries -------------------------------------------------------------------------------
@dataclasses.dataclass
class Given:
    name: str
    under: str | None
    make: Callable[[Any, str], Any]
    missing: Any
    variant: str | None = None


@dataclasses.dataclass(frozen=True)
class Allowance:
    role: str
    method: str  # "GET", ... or "*"
    path: str  # a path template (without /api/v1), or a prefix ending in "*"
    reason: str
    variant: str | None = None

    def matches(self, role: str, method: str, path: str, variant: str | None = None) -> bool:
        if self.role not in ("*", role) or self.method not in ("*", method.upper()) or self.variant != variant:
            return False
        return path.startswith(self.path[:-1]) if self.path.endswith("*") else path == self.path


@dataclasses.dataclass(frozen=True)
class KnownHole:
    """A refusal the code does not give yet, in a file another change owns: ``xfail(strict=True)``."""
    role: str | None  # None: every foreign role
    method: str
    path: str
    reason: str
    variant: str | None = None

    def matches(self, role: str, method: str, path: str, variant: str | None = None) -> bool:
        return ((self.role in (None, role)) and self.method == method.upper() and self.path == path
                and self.variant == variant)


GIVEN: list[Given] = []
ELSEWHERE: dict[str, Callable] = {}  # id field name → (world) -> an object of school B
SEEDERS: list[Callable] = []
ALLOWED: list[Allowance] = []
KNOWN_HOLES: list[KnownHole] = []


def given(name: str, under: str | None = None, missing: Any = MISSING_ID, variant: str | None = None):
    """Register the value of a path parameter / body or payload field called ``name``.

    ``variant``: a further object of the same kind the matrix also targets (each operation is run
    once per variant of its parameters, e.g. ``"class channel"`` beside the direct conversation);
    parameters without that variant keep their plain value."""
    def decorate(func):
        GIVEN.append(Given(name, under, func, missing, variant))
        return func

    return decorate


def elsewhere(name: str):
    """Register ``(world) -> id`` of an object of school B for a body field called ``name``
    (``class_id``; for ``class_ids`` register ``class_id``): school A's people may not reference it."""
    def decorate(func):
        ELSEWHERE[name] = func
        return func

    return decorate


def seeder(func):
    """Register a function ``(world) -> None`` run after the core seed."""
    SEEDERS.append(func)
    return func


#: ``(METHOD, path) -> (json) -> bool``: the operation refuses a reference in its answer (a 200 whose
#: body says so, e.g. a gate batch's ``rejected`` events) rather than with a 4xx
REFUSED_IN_ANSWER: dict[tuple[str, str], Callable[[Any], bool]] = {}


def refused_in_answer(method: str, path: str, check: Callable[[Any], bool]) -> None:
    REFUSED_IN_ANSWER[(method.upper(), path)] = check


def allow(role: str, method: str, path: str, reason: str, variant: str | None = None) -> None:
    ALLOWED.append(Allowance(role, method.upper(), path, reason, variant))


def known_hole(role: str | None, method: str, path: str, reason: str, variant: str | None = None) -> None:
    KNOWN_HOLES.append(KnownHole(role, method.upper(), path, reason, variant))


class Unresolved(LookupError):
    pass


def lookup(name: str, where: str, variant: str | None = None) -> Given | None:
    """The registration for ``name`` at ``where`` (a path template or an event name): that ``variant``
    first, then the longest ``under``."""
    best, best_key = None, None
    for item in GIVEN:
        if item.name != name or (item.under is not None and not where.startswith(item.under)):
            continue
        if item.variant is not None and item.variant != variant:
            continue
        key = (item.variant is not None, len(item.under or ""))
        if best is None or key > best_key:
            best, best_key = item, key
    return best


def variants(names, where: str) -> list[str | None]:
    """``None`` (the plain objects) and every variant registered for one of ``names`` at ``where``."""
    found = {item.variant for item in GIVEN if item.name in names and item.variant is not None
             and (item.under is None or where.startswith(item.under))}
    return [None] + sorted(found)


def resolve(name: str, where: str, world, family: str = "a", variant: str | None = None):
    item = lookup(name, where, variant)
    if item is None:
        raise Unresolved(
            f"The authorization matrix cannot name a {{{name}}} for {where}: register a seed for that object kind "
            f"(a @seeder creating one in school A / family A and a @given({name!r}) returning its id) in your "
            f"package's tests/<package>/authz_seeds.py (see tests/support/authz.py).")
    return item.make(world, family)


def load_package_seeds() -> None:
    """Import every ``tests/<package>/authz_seeds.py`` (their decorators register themselves)."""
    import tests

    for info in pkgutil.iter_modules(tests.__path__):
        if info.ispkg and (Path(tests.__path__[0]) / info.name / "authz_seeds.py").exists():
            importlib.import_module(f"tests.{info.name}.authz_seeds")


# --- the API documents -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Operation:
    method: str  # "GET", ...
    path: str  # template without the /api/v1 prefix, e.g. "/students/{student_id}"
    params: tuple[str, ...]  # path parameters, in order
    body_schema: dict | None
    content_type: str | None
    spec: dict = dataclasses.field(compare=False, hash=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def load_docs() -> tuple[dict, dict]:
    return (json.loads((DOCS / "openapi.json").read_text(encoding="utf-8")),
            json.loads((DOCS / "asyncapi.json").read_text(encoding="utf-8")))


def operations(openapi: dict) -> list[Operation]:
    import re

    out = []
    for full_path, item in sorted(openapi["paths"].items()):
        path = full_path[len(API):] if full_path.startswith(API) else full_path
        params = tuple(re.findall(r"{([^}]+)}", path))
        for method in METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            content = (spec.get("requestBody") or {}).get("content") or {}
            content_type = next(iter(content), None)
            schema = content[content_type]["schema"] if content_type else None
            out.append(Operation(method.upper(), path, params, schema, content_type, spec))
    return out


def object_operations(openapi: dict) -> list[Operation]:
    """Operations that name an object in their path."""
    return [op for op in operations(openapi) if op.params]


#: body fields ending in _id that name no stored object (a package adds its own, e.g. a device's event_id)
NOT_OBJECT_IDS = {"client_id", "national_id"}
#: a ``given`` value meaning "leave this field out of the generated body"
OMIT = object()


def is_id_field(name: str) -> bool:
    return (name.endswith("_id") or name.endswith("_ids")) and name not in NOT_OBJECT_IDS


def _names_ids(schema: dict, components: dict, depth: int = 0) -> bool:
    schema = deref(schema or {}, components)
    if depth < 4 and isinstance(schema.get("items"), dict) and _names_ids(schema["items"], components, depth + 1):
        return True
    props = schema.get("properties", {})
    return any(is_id_field(n) or (depth < 4 and _names_ids(p, components, depth + 1)) for n, p in props.items())


def id_slots(body, prefix=()) -> list[tuple]:
    """Where a generated body names objects: key paths to ``*_id`` / ``*_ids`` fields."""
    out = []
    if isinstance(body, dict):
        for key, value in body.items():
            if is_id_field(key):
                out.append(prefix + (key,))
            else:
                out += id_slots(value, prefix + (key,))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            out += id_slots(value, prefix + (i,))
    return out


def replaced(body, slot: tuple, value):
    """A deep copy of ``body`` with ``value`` at ``slot``."""
    body = json.loads(json.dumps(body))
    target = body
    for key in slot[:-1]:
        target = target[key]
    target[slot[-1]] = value
    return body


def elsewhere_value(world, field: str):
    """School B's object for ``field`` (a list for ``*_ids``); Unresolved when nobody registered one."""
    name = field[:-1] if field.endswith("_ids") else field
    if name not in ELSEWHERE:
        raise Unresolved(f"No object of school B registered for the body field {field!r}: add "
                         f"@elsewhere({name!r}) in tests/support/authz.py or your package's authz_seeds.py.")
    value = ELSEWHERE[name](world)
    return [value] if field.endswith("_ids") else value


def body_operations(openapi: dict) -> list[Operation]:
    """Operations whose JSON body names objects."""
    components = openapi.get("components", {}).get("schemas", {})
    return [op for op in operations(openapi) if op.body_schema is not None and op.content_type == "application/json"
            and _names_ids(op.body_schema, components)]


def reference_operations(openapi: dict) -> list[Operation]:
    """Operations without a path object whose request body names objects (``student_id``, ``audience.class_ids``)."""
    components = openapi.get("components", {}).get("schemas", {})
    return [op for op in operations(openapi)
            if not op.params and op.body_schema is not None and _names_ids(op.body_schema, components)]


@dataclasses.dataclass(frozen=True)
class SocketEvent:
    name: str
    schema: dict
    id_fields: tuple[str, ...]
    has_ack: bool


def client_events(asyncapi: dict) -> list[SocketEvent]:
    """Client → server events whose payload names an object (a ``*_id`` field)."""
    schemas = asyncapi.get("components", {}).get("schemas", {})
    out = []
    for key, channel in sorted(asyncapi["channels"].items()):
        if asyncapi["operations"][key]["action"] != "receive":
            continue
        for message in channel["messages"].values():
            schema = deref(message.get("payload") or {}, schemas)
            ids = tuple(sorted(p for p in schema.get("properties", {}) if p.endswith("_id")))
            if ids:
                out.append(SocketEvent(message["name"], schema, ids, "x-ack" in message))
    return out


def deref(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


# --- request bodies ---------------------------------------------------------------------------
def sample(schema: dict, components: dict, name: str, where: str, world, family: str = "a", ids=False,
           variant: str | None = None):
    """A value for ``schema``: a ``given`` value for ``name`` at ``where`` first, then the schema's hints."""
    item = lookup(name, where, variant) if name else None
    if item is not None:
        return item.make(world, family)
    schema = deref(schema, components)
    for key in ("example", "default"):
        if key in schema and schema[key] not in ("", None, []):
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        return build_object(schema, components, where, world, family, ids, variant)
    if kind == "array":
        return [sample(schema.get("items") or {"type": "string"}, components, "", where, world, family, ids, variant)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(max(schema.get("minimum", 1), 1))
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    if fmt == "date":
        return "2027-03-02"
    if fmt == "date-time":
        return "2027-03-02T01:00:00Z"
    if kind == "string":
        return "Kiểm tra quyền truy cập"[: schema.get("maxLength", 100)]
    raise Unresolved(f"No value for the field {name!r} of {where}: register @given({name!r}, under={where!r}).")


def build_object(schema: dict, components: dict, where: str, world, family: str = "a", ids=False,
                 variant: str | None = None) -> dict:
    """The required fields, the fields registered for this operation and, with ``ids``, every field
    naming objects (``*_id``, ``*_ids``, in nested objects too)."""
    schema = deref(schema, components)
    props = schema.get("properties", {})
    names = [n for n in props if n in schema.get("required", ())]
    names += [n for n in props if n not in names and (
        any(g.name == n and g.under and where.startswith(g.under) for g in GIVEN)
        or (ids and (is_id_field(n) or _names_ids(props[n], components))))]
    out = {n: sample(props[n], components, n, where, world, family, ids, variant) for n in names
           if not props[n].get("readOnly")}
    return {n: v for n, v in out.items() if v is not OMIT}


def query_args(op: Operation, components: dict, world, family: str = "a", variant: str | None = None) -> dict:
    """The operation's query parameters: the required ones and those registered for its path."""
    out = {}
    for param in op.spec.get("parameters", ()):
        if param.get("in") != "query":
            continue
        name = param["name"]
        if not param.get("required") and not any(g.name == name and g.under and op.path.startswith(g.under)
                                                 for g in GIVEN):
            continue
        value = sample(param.get("schema") or {}, components, name, op.path, world, family, variant=variant)
        if value is not OMIT:
            out[name] = value
    return out


def request_kwargs(op: Operation, components: dict, world, family: str = "a", body=None,
                   variant: str | None = None) -> dict:
    """Keyword arguments for Flask's test client: the query parameters (``query_args``) and a generated
    JSON or multipart body (naming objects in the body when the path names none), or ``body`` as given."""
    query = query_args(op, components, world, family, variant)
    kwargs = {"query_string": query} if query else {}
    if op.body_schema is None:
        return kwargs
    if body is None:
        body = build_object(op.body_schema, components, op.path, world, family, not op.params, variant)
    if op.content_type == "multipart/form-data":
        files = {}
        for name, value in body.items():
            data = value if isinstance(value, bytes) else str(value).encode()
            files[name] = (io.BytesIO(data), f"{name}.bin")
        return {**kwargs, "data": files, "content_type": "multipart/form-data"}
    return {**kwargs, "json": body}


def fill_path(op: Operation, world, family: str = "a", missing: str | None = None,
              variant: str | None = None) -> str:
    """The concrete path; ``missing``: the name of a parameter to replace with an id naming nothing."""
    path = op.path
    for name in op.params:
        if name == missing:
            value = lookup(name, op.path, variant).missing
        else:
            value = resolve(name, op.path, world, family, variant)
        path = path.replace("{" + name + "}", str(value))
    return API + path


# --- database snapshots -----------------------------------------------------------------------
#: (table, column) pairs a refused call may legitimately change (none so far)
VOLATILE: set[tuple[str, str]] = set()


def snapshot() -> dict[str, tuple[int, str]]:
    """Every table: (row count, checksum of its rows in a stable order)."""
    from service.db import db, is_postgres

    tables = sorted(db.get_tables())
    if is_postgres() and not VOLATILE:  # one query: the row's text form, ordered, hashed by the server
        parts = [f"SELECT '{t}', COUNT(*), MD5(COALESCE(STRING_AGG(x::text, '|' ORDER BY x::text), '')) "
                 f'FROM "{t}" x' for t in tables]
        return {t: (n, digest) for t, n, digest in db.execute_sql(" UNION ALL ".join(parts)).fetchall()}
    out = {}
    for table in tables:
        cursor = db.execute_sql(f'SELECT * FROM "{table}"')
        names = [c[0] for c in cursor.description]
        keep = [i for i, n in enumerate(names) if (table, n) not in VOLATILE]
        rows = sorted(repr(tuple(_norm(row[i]) for i in keep)) for row in cursor.fetchall())
        out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return out


def _norm(value):
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def diff(before: dict, after: dict) -> list[str]:
    return [f"{t}: {before.get(t)} -> {after.get(t)}" for t in sorted(set(before) | set(after))
            if before.get(t) != after.get(t)]


@contextlib.contextmanager
def rolled_back():
    """Run a call in a transaction that is rolled back after: every case starts from the seed.

    Requests from Flask's test client run on this thread and reuse its connection (the app closes
    a connection only outside a transaction), jobs run inline: everything a call writes is inside.
    """
    from service.db import db

    with db.atomic() as txn:
        try:
            yield
        finally:
            txn.rollback()


# --- secrets a guardian of another family must never receive -----------------------------------
def national_number(phone: str) -> str:
    """+84912345678 → 912345678: matches +84…, 84… and 0… spellings."""
    return phone[3:] if phone.startswith("+84") else phone.lstrip("+0")


# --- the seeded world -------------------------------------------------------------------------
class World:
    """School A: class 1A (homeroom ``homeroom_a``, subject teacher ``subject_teacher_a``) with the
    children of family A (``child_a``: ``guardian_a`` and ``guardian_a2``) and family B
    (``child_b``: ``guardian_other_family``); class 1B (homeroom ``teacher_other_class``) with
    family C (``child_c``: ``guardian_other_class``); ``admin_a``, ``cafeteria``; ``guardian_unlinked``
    (a guardian of ``child_a`` until unlinked) and ``teacher_removed`` (a subject teacher of 1A until
    removed), both in family A's conversation from before. School B:
    ``admin_other_school``, ``teacher_other_school`` with class and family of their own.

    Objects: a school year with a term in each school (``year_a``/``term_a``, ``year_b``/``term_b``), direct conversations of families A and B with the
    homeroom teacher (messages, an attachment), class channels with messages, a reported message,
    announcements (sent with ack asked, scheduled), inbox notifications, devices, a roster import,
    an invite code. ``roles`` maps role name → user; ``tokens`` role name → access token.
    """

    def __init__(self, app):
        from .factories import Factory

        self.app = app
        self.make = Factory(app, password=None)  # no password: tokens come from start_session
        self.roles: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}
        self.objects: dict[str, Any] = {}
        self.secrets: dict[str, list[str]] = {}  # family → strings no other family may receive
        #: headers every call carries besides the role's token, set by seeders (a gate device's
        #: ``X-Device-Key`` of school A: its endpoint is reached by the device, whoever calls)
        self.extra_headers: dict[str, str] = {}

    # -- people
    def phone(self) -> str:
        return f"+8497{uuid.uuid4().int % 10**7:07d}"

    def user(self, role: str, name: str):
        user = self.make.user(name, phone=self.phone())
        self.roles[role] = user
        return user

    def staff(self, role_name: str, school, role: str, name: str):
        return self.make.staff(school, role, user=self.user(role_name, name))

    def guardian(self, role_name: str, student, name: str, relationship="mother"):
        return self.make.guardian(student, relationship=relationship, user=self.user(role_name, name))

    def token(self, role: str) -> str:
        return self.tokens[role]

    def headers(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}", **self.extra_headers}

    # -- the seed
    def seed(self) -> "World":
        from messaging.logic import attachments as message_files
        from messaging.logic import conversations, receipts, reports, sending
        from messaging.models import Conversation
        from notifications import announcements, logic as notifications
        from service.roster import oneroster
        from service.accounts import logic as accounts
        from service.roster import logic as roster
        from service.roster.models import School

        o = self.objects
        a = o["school_a"] = roster.create_school("Trường Tiểu học Kim Đồng", code=f"A{uuid.uuid4().hex[:6]}")
        b = o["school_b"] = roster.create_school("Trường Tiểu học Võ Thị Sáu", code=f"B{uuid.uuid4().hex[:6]}")
        self.staff("admin_a", a, "admin", "Cô Hiệu trưởng A")
        self.staff("homeroom_a", a, "teacher", "Cô Lan")
        self.staff("subject_teacher_a", a, "teacher", "Thầy Hùng")
        self.staff("teacher_other_class", a, "teacher", "Cô Hoa")
        self.staff("spare_teacher_a", a, "teacher", "Thầy Nam")
        self.staff("cafeteria", a, "cafeteria", "Bếp trưởng")
        self.staff("admin_other_school", b, "admin", "Thầy Hiệu trưởng B")
        self.staff("teacher_other_school", b, "teacher", "Cô Thảo")

        r = self.roles
        o["year_a"] = roster.create_school_year(a.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
        o["term_a"] = roster.create_term(o["year_a"].id, "Học kỳ I", dt.date(2026, 9, 1), dt.date(2027, 1, 10))
        o["year_b"] = roster.create_school_year(b.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
        o["term_b"] = roster.create_term(o["year_b"].id, "Học kỳ I", dt.date(2026, 9, 1), dt.date(2027, 1, 10))
        k1 = o["class_a"] = roster.create_class(a.id, "1A", grade=1, homeroom_teacher_id=r["homeroom_a"].id,
                                                school_year_id=o["year_a"].id)
        k2 = o["class_a2"] = roster.create_class(a.id, "1B", grade=1, homeroom_teacher_id=r["teacher_other_class"].id)
        kb = o["class_b"] = roster.create_class(b.id, "1A", grade=1, homeroom_teacher_id=r["teacher_other_school"].id)
        roster.assign_subject_teacher(k1.id, r["subject_teacher_a"].id, "Toán")
        nid = uuid.uuid4().hex[:8].upper()
        o["child_a"] = roster.create_student(a.id, "Nguyễn Minh An", class_id=k1.id, national_id=f"079A{nid}")
        o["child_b"] = roster.create_student(a.id, "Trần Bảo Ngọc", class_id=k1.id, national_id=f"079B{nid}")
        o["child_c"] = roster.create_student(a.id, "Lê Gia Huy", class_id=k2.id, national_id=f"079C{nid}")
        o["child_sb"] = roster.create_student(b.id, "Phạm Thu Hà", class_id=kb.id, national_id=f"079D{nid}")
        self.guardian("guardian_a", o["child_a"], "Chị Mai")
        self.guardian("guardian_a2", o["child_a"], "Anh Dũng", "father")
        self.guardian("guardian_other_family", o["child_b"], "Anh Tuấn")
        self.guardian("guardian_other_class", o["child_c"], "Chị Vy")
        self.guardian("guardian_other_school", o["child_sb"], "Chị Hạnh")
        # people who WERE family A's: a guardian since unlinked, a subject teacher since removed from 1A
        self.guardian("guardian_unlinked", o["child_a"], "Bà Ngoại", "grandparent")
        self.staff("teacher_removed", a, "teacher", "Cô Xuân")
        roster.assign_subject_teacher(k1.id, r["teacher_removed"].id, "Tiếng Anh")

        # conversations: a direct one per family with the homeroom teacher, and the class channels
        conv_a, _ = conversations.open_direct(r["guardian_a"].id, o["child_a"].id,
                                              [r["homeroom_a"].id, r["guardian_unlinked"].id, r["teacher_removed"].id])
        conv_b, _ = conversations.open_direct(r["guardian_other_family"].id, o["child_b"].id, [r["homeroom_a"].id])
        o["conversation_a"], o["conversation_b"] = conv_a, conv_b
        channels = conversations.ensure_class_conversations([k1.id, k2.id, kb.id])
        o["channel_a"] = Conversation.get_by_id(channels[k1.id])
        png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
               b"\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND"
               b"\xaeB`\x82")
        o["attachment_a"] = message_files.store_attachment(r["guardian_a"].id, png, "don-xin-phep.png")
        o["message_a"], _ = sending.send_message(r["guardian_a"].id, conv_a, "seed-a-1",
                                                 "Cô ơi, cháu An bị sốt, xin nghỉ hôm nay.", [o["attachment_a"].id])
        o["reply_a"], _ = sending.send_message(r["homeroom_a"].id, conv_a, "seed-a-2", "Cô đã nhận, chúc cháu mau khỏe.")
        o["message_b"], _ = sending.send_message(r["guardian_other_family"].id, conv_b, "seed-b-1", "Chào cô ạ.")
        o["channel_message_a"], _ = sending.send_message(r["guardian_a"].id, o["channel_a"], "seed-ch-1",
                                                         "Các phụ huynh ơi, mai lớp mình mặc đồng phục nhé.")
        o["channel_reply"], _ = sending.send_message(r["homeroom_a"].id, o["channel_a"], "seed-ch-2",
                                                     "Đúng rồi ạ.")
        o["report_a"], _ = reports.report_message(r["homeroom_a"].id, conv_a, o["message_a"]["id"], "Kiểm tra")
        receipts.mark_read(r["homeroom_a"].id, conv_a, 1)
        roster.unlink_guardian(o["child_a"].id, r["guardian_unlinked"].id)
        roster.remove_subject_teacher(k1.id, r["teacher_removed"].id)

        # devices, announcements and the inbox
        self.device_token = {}
        for role in ("guardian_a", "guardian_a2", "guardian_other_family", "guardian_other_class"):
            token = f"fcm-{role}-{uuid.uuid4().hex}:APA91b" + "x" * 60
            notifications.register_device(r[role].id, token, "android", "vi")
            self.device_token[role] = token
        o["announcement_a"] = announcements.create(
            r["admin_a"].id, "Họp phụ huynh", "Thứ Bảy 8:00 họp phụ huynh lớp 1A.",
            {"guardian_ids": [r["guardian_a"].id, r["guardian_a2"].id]}, requires_ack=True)
        o["scheduled_announcement_a"] = announcements.create(
            r["admin_a"].id, "Nghỉ lễ", "Trường nghỉ lễ.", {"guardian_ids": [r["guardian_a"].id]},
            send_at=dt.datetime.utcnow() + dt.timedelta(days=30))
        notifications.notify([r["guardian_a"].id], "message", "Tin nhắn mới", "Cô Lan: Cô đã nhận.")
        notifications.notify([r["guardian_other_family"].id], "message", "Tin nhắn mới", "Cô Lan: Chào anh.")
        from notifications.models import Notification

        def first_note(role):
            return (Notification.select().where((Notification.user == r[role].id) & Notification.in_inbox)
                    .order_by(Notification.id).first())

        o["notification_a"] = first_note("guardian_a")
        o["notification_b"] = first_note("guardian_other_family")
        assert o["notification_a"] is not None and o["notification_b"] is not None, "the seed's inbox is empty"

        # roster import and invite code
        o["roster_import_a"] = oneroster.create_upload(a.id, r["admin_a"].id, "roster.zip", roster_zip(a))
        o["invite_a"] = roster.create_invite(o["child_a"].id, r["admin_a"].id, "father")

        for seed in SEEDERS:
            seed(self)

        for role, user in r.items():
            self.tokens[role] = accounts.start_session(user)["access_token"]
        self.secrets = {
            "a": [national_number(r["guardian_a"].phone), national_number(r["guardian_a2"].phone),
                  o["child_a"].national_id, self.device_token["guardian_a"], self.device_token["guardian_a2"]],
            "c": [national_number(r["guardian_other_class"].phone), o["child_c"].national_id,
                  self.device_token["guardian_other_class"]],
        }
        assert School.select().count() == 2
        return self


def roster_zip(school) -> bytes:
    """A small, valid OneRoster 1.1 zip for ``school`` (one class, one teacher, one student)."""
    rows = {
        "orgs.csv": [["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"],
                     [school.sourced_id or school.code or f"school-{school.id}", "active", "", school.name,
                      "school", "", ""]],
        "academicSessions.csv": [["sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
                                  "parentSourcedId", "schoolYear"],
                                 ["y1", "active", "", "2026-2027", "schoolYear", "2026-09-01", "2027-05-31", "", "2027"]],
        "classes.csv": [["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
                         "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes",
                         "periods"]],
        "users.csv": [["sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username",
                       "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
                       "agentSourcedIds", "grades", "password"]],
        "enrollments.csv": [["sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "status",
                             "dateLastModified", "primary", "beginDate", "endDate"]],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, lines in rows.items():
            zf.writestr(name, "\n".join(",".join(cell for cell in line) for line in lines) + "\n")
    return out.getvalue()


# --- the core seeds: which object each parameter names ------------------------------------------
def _by_family(a_key: str, b_key: str):
    return lambda w, family: (w.objects[b_key] if family == "b" else w.objects[a_key]).id


given("school_id")(lambda w, family: w.objects["school_a"].id)
given("year_id")(lambda w, family: w.objects["year_a"].id)
given("term_id")(lambda w, family: w.objects["term_a"].id)
given("class_id")(lambda w, family: w.objects["class_a"].id)
given("student_id")(_by_family("child_a", "child_b"))
given("conversation_id")(_by_family("conversation_a", "conversation_b"))
given("attachment_id")(lambda w, family: w.objects["attachment_a"].id if family == "a" else MISSING_ID)
given("notification_id")(_by_family("notification_a", "notification_b"))
given("announcement_id")(lambda w, family: w.objects["announcement_a"].id)
given("announcement_id", under="/announcements/{announcement_id}/cancel")(
    lambda w, family: w.objects["scheduled_announcement_a"].id)
given("import_id")(lambda w, family: w.objects["roster_import_a"].id)
given("token", under="/devices/{token}", missing="fcm-no-such-token")(
    lambda w, family: w.device_token["guardian_other_family" if family == "b" else "guardian_a"])


CHANNEL = "class channel"
given("conversation_id", variant=CHANNEL)(lambda w, family: w.objects["channel_a"].id)
given("message_id", variant=CHANNEL)(lambda w, family: w.objects["channel_message_a"]["id"])
allow("guardian_other_family", "*", "/conversations/{conversation_id}*", variant=CHANNEL,
      reason="family B's child is in class 1A: its guardian is a member of the class channel")
allow("guardian_other_family", "EMIT", "*", variant=CHANNEL, reason="a member of class 1A's channel")


@given("message_id")
def _message_id(w, family):
    return (w.objects["message_b"] if family == "b" else w.objects["message_a"])["id"]


@seeder
def _phoneless_guardian(w):
    """A guardian imported without a phone (a OneRoster email-only parent): an admin may give one, and the
    guardian links of that path name them (removing them works as well)."""
    from service.accounts.models import User
    from service.roster import logic as roster

    user = User.create(name="Ông Nội", phone=None, email=f"ong-noi-{uuid.uuid4().hex[:8]}@example.vn")
    roster.link_guardian(w.objects["child_a"].id, user.id, "grandparent")
    w.objects["phoneless_guardian_a"] = user


given("user_id", under="/students/{student_id}/guardians/")(
    lambda w, family: w.roles["guardian_other_family"].id if family == "b" else w.objects["phoneless_guardian_a"].id)
given("user_id", under="/schools/{school_id}/staff/")(lambda w, family: w.roles["spare_teacher_a"].id)
given("teacher_id", under="/classes/{class_id}/teachers/")(lambda w, family: w.roles["subject_teacher_a"].id)
# body fields
given("teacher_id", under="/classes/{class_id}/teachers")(lambda w, family: w.roles["spare_teacher_a"].id)
given("class_id", under="/conversations")(lambda w, family: OMIT)  # kind "direct": about a student
given("participant_ids", under="/conversations")(lambda w, family: [w.roles["homeroom_a"].id])
given("class_ids")(lambda w, family: [w.objects["class_a"].id])
given("guardian_ids")(lambda w, family: [w.roles["guardian_a"].id])
given("client_id")(lambda w, family: "authz-" + uuid.uuid4().hex)
given("homeroom_teacher_id")(lambda w, family: w.roles["homeroom_a"].id)
given("school_year_id")(lambda w, family: w.objects["year_a"].id)

# school B's objects, which school A's people may not put in a body
elsewhere("school_id")(lambda w: w.objects["school_b"].id)
elsewhere("class_id")(lambda w: w.objects["class_b"].id)
elsewhere("student_id")(lambda w: w.objects["child_sb"].id)
elsewhere("school_year_id")(lambda w: w.objects["year_b"].id)
elsewhere("year_id")(lambda w: w.objects["year_b"].id)
elsewhere("term_id")(lambda w: w.objects["term_b"].id)
for _name in ("teacher_id", "homeroom_teacher_id", "participant_id", "user_id"):
    elsewhere(_name)(lambda w: w.roles["teacher_other_school"].id)
elsewhere("guardian_id")(lambda w: w.roles["guardian_other_school"].id)
given("body", under="/conversations/")(lambda w, family: "Kiểm tra quyền truy cập")
given("body", under="message:send")(lambda w, family: "Kiểm tra quyền truy cập")
given("up_to_seq")(lambda w, family: 2)
given("phone")(lambda w, family: w.phone())
given("reason")(lambda w, family: "Nội dung không phù hợp")
given("name", under="/years/{year_id}/terms")(lambda w, family: "Học kỳ II")
given("starts_on", under="/years/{year_id}/terms")(lambda w, family: "2027-01-15")
given("ends_on", under="/years/{year_id}/terms")(lambda w, family: "2027-05-31")
given("starts_on", under="/schools/{school_id}/years")(lambda w, family: "2031-09-01")
given("ends_on", under="/schools/{school_id}/years")(lambda w, family: "2032-05-31")
given("file", under="/schools/{school_id}/roster-imports")(lambda w, family: roster_zip(w.objects["school_a"]))
given("name", under="/classes/{class_id}")(lambda w, family: "1A (đổi tên)")  # PATCH: a real change
given("name", under="/students/{student_id}")(lambda w, family: "Nguyễn Minh An (đổi tên)")
given("name", under="/schools/{school_id}/staff")(lambda w, family: "Cô Mới")
given("role", under="/schools/{school_id}/staff")(lambda w, family: "teacher")

# --- who legitimately reaches school A's objects ----------------------------------------------
MEMBER_READS = ("GET /schools/{school_id}", "GET /schools/{school_id}/years", "GET /terms/{term_id}")
for _role in ("guardian_other_family", "guardian_other_class", "teacher_other_class", "cafeteria"):
    for _op in MEMBER_READS:
        allow(_role, *_op.split(" "), reason="a member of school A (staff, or a guardian of a student in it) "
                                             "reads the school, its years and their terms")
allow("guardian_other_family", "GET", "/classes/{class_id}",
      "a guardian of a student in class 1A sees the class itself (name, teachers)")
for _op in ("GET /students/{student_id}", "GET /classes/{class_id}", "GET /classes/{class_id}/students",
            "GET /schools/{school_id}/classes"):
    allow("cafeteria", *_op.split(" "), reason="the school's cafeteria staff read its classes and students")
for _op in MEMBER_READS:
    allow("teacher_removed", *_op.split(" "), reason="still a teacher of school A (removed from class 1A only)")
