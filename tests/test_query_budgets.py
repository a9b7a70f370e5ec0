"""Query budgets of the HTTP hot paths (issue 13): each answers in a constant number of SQL
statements whatever the number of conversations, messages, notifications, children or periods.

Each test builds a small world, counts the statements of a request, grows the world (tens of
conversations with several participants and messages each, an inbox of 60, children in several
classes, a full timetable...) and counts again: the two counts must be equal and within the budget
stated beside the endpoint. Both backends (SQLite and PostgreSQL) run every test.

What is counted (``endpoint_statements``): the data statements (SELECT, INSERT, UPDATE, DELETE,
WITH; ``tests/support/queries.py``) of one request **minus those of the request's authentication**.
The authentication's cost is measured on its own just before, by running
``service.accounts.logic.authenticate_request`` in a request context with the same headers, and
subtracted: today it reads the user and the revoked token families (2 statements); once it is
cached it may read nothing. Each measured request follows a warm-up request with the same
arguments, so what is created on first need (class channels) or cached per process (a school's
timezone) is in place: the budget is the steady state of an app the user opens again and again.
"""
from __future__ import annotations

import datetime as dt
import io
import uuid
from unittest import mock

import pytest

from service import db as dbmod
from service import schemas as service_schemas

from service.accounts.logic import authenticate_request
from service.roster import logic as roster
from tests.messaging.conftest import PNG
from tests.support.queries import count_queries

API = "/api/v1"

# The budgets: statements of the endpoint itself, authentication excluded (see the docstring).
# Before issue 13's work: conversations 14, history 4, receipts 5 (direct; 7 for a class channel),
# inbox 1, unread 1, /me 5-6, timetable 3, day page 15-16.
BUDGETS = {
    # PostgreSQL: one statement, the page as JSON text with everything in it (messaging.logic.list_json);
    # the missing class channels are in it too (created, then the page read again, on first need only)
    "conversations": 1,
    "history": 3,  # the conversation with the membership (1), the page (1), its attachments (1)
    "receipts": 4,  # the conversation (1), the members (1), their read marks (1), the page (1)
    "inbox": 1,
    "unread": 1,
    "me": 3,  # staff roles (1), classes taught with their schools (1, teachers only), children (1)
    "timetable": 3,  # access (1), the periods with terms and names (1), the changes (1); timezone cached
    # access, timezone, attendance, check-ins, remarks with authors, meal entries, menus, dishes,
    # allergies, periods, changes, announcements (12); staff also read the child's guardians (13)
    "day_page": 13,
    # a socket connect, authentication included (it is the connect's own work): the session's user and
    # revoked families when not cached yet (cold), nothing once cached (warm); no conversation is read
    "connect_cold": 2,
    "connect": 0,
}


# SQLite answers the list in Python (``conversations.list_conversations``): missing class channels (1),
# the page with last messages, unread counts and student names (1), the last messages' attachments
# (1), direct members with names (1), class members with names (1)
SQLITE_BUDGETS = {"conversations": 5}


def endpoint_statements(app, client, url, headers, warm: bool = True) -> int:
    """The statements of ``GET url`` (after a warm-up request), authentication's subtracted. The
    counted request runs without the tests' own checks (``LIENLAC_CHECK_FAST_DUMP``: the PostgreSQL
    list compared with the Python path's, which reads the database again); the warm-up runs them."""
    if warm:
        assert client.get(url, headers=headers).status_code == 200
    with app.test_request_context(url, headers=headers):
        with count_queries() as auth:
            authenticate_request()
    with count_queries() as q, mock.patch.object(service_schemas, "CHECK_FAST_DUMP", False):
        r = client.get(url, headers=headers)
    assert r.status_code == 200, r.get_json()
    n = q.count - auth.count
    print(f"\n{url}: {n} statements (+{auth.count} for authentication)\n{q}")
    return n


def check(name: str, small: int, large: int) -> None:
    assert small == large, f"{name}: {small} statements in the small world, {large} in the large one"
    budget = BUDGETS[name] if dbmod.is_postgres() else SQLITE_BUDGETS.get(name, BUDGETS[name])
    assert large <= budget, f"{name}: {large} statements, budget {budget}"


def cid() -> str:
    return uuid.uuid4().hex


# --- messaging --------------------------------------------------------------------------------------
class Chats:
    """One school. Class 3A: homeroom ``teacher``, subject teacher ``subject``; class 3B: homeroom
    ``other``, ``teacher`` teaches it a subject. Helpers open conversations and send over HTTP."""

    def __init__(self, client, fast):
        self.client, self.fast = client, fast
        self.school = fast.school()
        self.teacher = fast.teacher(self.school, "Cô Lan")
        self.subject = fast.teacher(self.school, "Thầy Hùng")
        self.other = fast.teacher(self.school, "Cô Hoa")
        self.klass = fast.klass(self.school, homeroom=self.teacher, name="3A")
        roster.assign_subject_teacher(self.klass.id, self.subject.id, "Toán")
        self.klass_b = fast.klass(self.school, homeroom=self.other, name="3B")
        roster.assign_subject_teacher(self.klass_b.id, self.teacher.id, "Tiếng Anh")

    def h(self, user):
        return self.fast.headers(user)

    def family(self, klass, guardians=1):
        student = self.fast.student(klass)
        return student, [self.fast.guardian(student) for _ in range(guardians)]

    def open(self, user, student, *others) -> int:
        r = self.client.post(f"{API}/conversations", headers=self.h(user), json={
            "kind": "direct", "student_id": str(student.id), "participant_ids": [str(o.id) for o in others]})
        assert r.status_code in (200, 201), r.get_json()
        return int(r.get_json()["id"])

    def channel(self, user, klass) -> int:
        r = self.client.post(f"{API}/conversations", headers=self.h(user),
                             json={"kind": "class", "class_id": str(klass.id)})
        assert r.status_code == 200, r.get_json()
        return int(r.get_json()["id"])

    def send(self, user, conv_id, body="Chào cô ạ", attach=False) -> dict:
        attachments = []
        if attach:
            r = self.client.post(f"{API}/attachments", headers=self.h(user),
                                 data={"file": (io.BytesIO(PNG), "a.png")},
                                 content_type="multipart/form-data")
            assert r.status_code == 201, r.get_json()
            attachments = [r.get_json()["id"]]
        r = self.client.post(f"{API}/conversations/{conv_id}/messages", headers=self.h(user),
                             json={"client_id": cid(), "body": body, "attachments": attachments})
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def talk(self, conv_id, *people, n=3, attach_every=0):
        for i in range(n):
            self.send(people[i % len(people)], conv_id, f"Tin nhắn {i}", attach=bool(attach_every) and i % attach_every == 0)

    def read(self, user, conv_id, seq):
        r = self.client.post(f"{API}/conversations/{conv_id}/read", headers=self.h(user), json={"up_to_seq": seq})
        assert r.status_code == 204


@pytest.fixture
def chats(client, fast):
    return Chats(client, fast)


def test_conversation_list_of_a_teacher(app, client, chats):
    """4 conversations (two class channels, two families), then 43 (many participants, messages, attachments, read marks): same count."""
    c, url = chats, f"{API}/conversations"
    channel = c.channel(c.teacher, c.klass)
    c.talk(channel, c.teacher, n=2)
    for _ in range(2):
        student, (guardian,) = c.family(c.klass)
        c.talk(c.open(c.teacher, student, guardian), guardian, c.teacher)
    small = endpoint_statements(app, client, url, c.h(c.teacher))
    assert len(client.get(url, headers=c.h(c.teacher)).get_json()["items"]) == 4

    c.talk(c.channel(c.teacher, c.klass_b), c.other, c.teacher, n=3)
    for i in range(39):
        student, guardians = c.family(c.klass if i % 3 else c.klass_b, guardians=1 + i % 2)
        teachers = [c.teacher, c.subject] if student.school_class_id == c.klass.id else [c.teacher, c.other]
        conv = c.open(guardians[0], student, *teachers[:1 + i % 2], *guardians[1:])
        c.talk(conv, guardians[0], c.teacher, *guardians[1:], n=3 + i % 3, attach_every=4)
        if i % 4 == 0:
            c.read(c.teacher, conv, 2)
    large = endpoint_statements(app, client, url, c.h(c.teacher))
    items = client.get(url, headers=c.h(c.teacher)).get_json()["items"]
    assert len(items) == 43 and all(i["last_message"] for i in items)
    assert any(i["unread_count"] for i in items)
    check("conversations", small, large)
    page = client.get(url + "?limit=10", headers=c.h(c.teacher)).get_json()
    assert endpoint_statements(app, client, url + "?limit=10&cursor=" + page["next_cursor"], c.h(c.teacher)) <= large


def test_conversation_list_of_a_guardian_with_children_in_several_classes(app, client, chats):
    c, url = chats, f"{API}/conversations"
    child, (guardian,) = c.family(c.klass)
    c.talk(c.open(guardian, child, c.teacher), guardian, c.teacher)
    small = endpoint_statements(app, client, url, c.h(guardian))

    klass_c = c.fast.klass(c.school, homeroom=c.subject, name="3C")
    for klass in (c.klass_b, klass_c):
        second = c.fast.student(klass)
        roster.link_guardian(second.id, guardian.id, "mother")
        c.talk(c.open(guardian, second, klass.homeroom_teacher), guardian, klass.homeroom_teacher)
        for _ in range(8):  # other families in the class channels
            c.family(klass, guardians=2)
    c.talk(c.channel(c.teacher, c.klass), c.teacher, n=4)
    c.talk(c.open(guardian, child, c.teacher, c.subject), guardian, c.subject, n=2)
    large = endpoint_statements(app, client, url, c.h(guardian))
    items = client.get(url, headers=c.h(guardian)).get_json()["items"]
    assert len(items) == 7 and {i["class_id"] for i in items if i["kind"] == "class"} == {
        str(k.id) for k in (c.klass, c.klass_b, klass_c)}
    check("conversations", small, large)
    # membership follows the roster live: unlinked from the child in 3C, the guardian loses 3C's
    # channel and the conversation about that child, in the same number of statements
    roster.unlink_guardian(second.id, guardian.id)
    assert endpoint_statements(app, client, url, c.h(guardian)) == large
    items = client.get(url, headers=c.h(guardian)).get_json()["items"]
    assert len(items) == 5 and str(klass_c.id) not in {i["class_id"] for i in items}
    assert str(second.id) not in {i["student_id"] for i in items}


def test_history_and_receipts(app, client, chats):
    c = chats
    student, (guardian,) = c.family(c.klass)
    conv = c.open(guardian, student, c.teacher, c.subject)
    c.talk(conv, guardian, c.teacher, n=3)
    base = f"{API}/conversations/{conv}"
    small = {q: endpoint_statements(app, client, base + q, c.h(guardian))
             for q in ("/messages", "/messages?before=3", "/messages?after=1", "/receipts")}

    c.talk(conv, guardian, c.teacher, c.subject, n=120, attach_every=3)
    c.read(c.teacher, conv, 100)
    large = {q: endpoint_statements(app, client, base + q, c.h(guardian))
             for q in ("/messages", "/messages?before=100", "/messages?after=10", "/receipts")}
    page = client.get(base + "/messages", headers=c.h(guardian)).get_json()
    assert len(page["items"]) == 50 and page["next_cursor"]
    assert any(m["attachments"] for m in page["items"])
    for (q, s_), l_ in zip(small.items(), large.values()):
        check("receipts" if q == "/receipts" else "history", s_, l_)
    # a class channel's receipts: its members in one query too
    channel = c.channel(c.teacher, c.klass)
    c.talk(channel, c.teacher, n=3)
    assert endpoint_statements(app, client, f"{API}/conversations/{channel}/receipts", c.h(guardian)) == large["/receipts"]


# --- notifications -----------------------------------------------------------------------------------
def test_inbox_and_unread_count(app, client, fast):
    import notifications

    family = fast.family()
    guardian = family["guardian"]
    h = fast.headers(guardian)

    def fill(n):
        for i in range(n):
            notifications.notify([guardian.id], "announcement", f"Thông báo {i}", "Nội dung", {"type": "x", "id": i})

    fill(3)
    urls = (f"{API}/notifications", f"{API}/notifications?unread=1", f"{API}/notifications/unread-count")
    small = [endpoint_statements(app, client, u, h) for u in urls]
    fill(60)
    first = client.get(f"{API}/notifications?limit=5", headers=h).get_json()["items"]
    assert client.post(f"{API}/notifications/{first[0]['id']}/read", headers=h).status_code == 204
    large = [endpoint_statements(app, client, u, h) for u in urls]
    assert client.get(urls[2], headers=h).get_json() == {"unread": 62}
    for name, s, l in zip(("inbox", "inbox", "unread"), small, large):
        check(name, s, l)


# --- /me -----------------------------------------------------------------------------------------------
def test_me_of_a_guardian_and_of_a_teacher(app, client, fast):
    school = fast.school()
    teacher = fast.teacher(school)
    klass = fast.klass(school, homeroom=teacher)
    child = fast.student(klass)
    guardian = fast.guardian(child)
    url = f"{API}/me"
    small = [endpoint_statements(app, client, url, fast.headers(u)) for u in (guardian, teacher)]

    other_school = fast.school("Trường Tiểu học Lê Lợi")
    for s in (school, school, other_school, other_school):
        k = fast.klass(s)
        fast.guardian(fast.student(k), user=guardian)
        roster.assign_subject_teacher(k.id, teacher.id, "Toán") if s is school else None
    roster.add_staff(other_school.id, teacher.id, "teacher")
    roster.add_staff(school.id, teacher.id, "admin")
    for s in (school, other_school):
        fast.klass(s, homeroom=teacher)
    fast.guardian(fast.student(fast.klass(other_school)), user=teacher)  # a teacher who is a parent too
    large = [endpoint_statements(app, client, url, fast.headers(u)) for u in (guardian, teacher)]
    me = client.get(url, headers=fast.headers(guardian)).get_json()
    assert len(me["children"]) == 5
    for s, l in zip(small, large):
        check("me", s, l)


# --- the timetable and the day's page ---------------------------------------------------------------
#: Wednesday 25 November 2026, 08:00 in Hồ Chí Minh City: the contact book's clock and the announcements'
NOW = dt.datetime(2026, 11, 25, 1, 0)
TODAY = dt.date(2026, 11, 25)


class Day:
    """A school with a term around ``TODAY``, class 1A (homeroom ``teacher``), a child with two
    guardians, an admin, a cafeteria; helpers fill the child's day over HTTP."""

    def __init__(self, app, client, fast):
        app.extensions["lienlac.clock"] = lambda: NOW
        self.client, self.fast = client, fast
        self.school = fast.school()
        self.admin = fast.admin(self.school)
        self.cafeteria = fast.staff(self.school, "cafeteria")
        self.teacher = fast.teacher(self.school, "Cô Lan")
        year = roster.create_school_year(self.school.id, "2026-2027", dt.date(2026, 9, 1), dt.date(2027, 5, 31))
        self.term = roster.create_term(year.id, "Học kỳ I", dt.date(2026, 9, 7), dt.date(2026, 12, 31))
        self.klass = fast.klass(self.school, homeroom=self.teacher, name="1A")
        roster.update_class(self.klass.id, {"school_year_id": year.id})
        self.child = fast.student(self.klass, "Nguyễn An")
        self.mother, self.father = fast.guardian(self.child), fast.guardian(self.child)
        self.key = self.call("POST", self.admin, f"/schools/{self.school.id}/gate-devices", {"name": "Cổng"})["api_key"]
        self.dishes = []

    def call(self, method, user, path, body=None, status=(200, 201, 202)):
        r = self.client.open(API + path, method=method, headers=self.fast.headers(user), json=body)
        assert r.status_code in status, (path, r.status_code, r.get_json())
        return r.get_json()

    def periods(self, n, teachers):
        periods = [{"weekday": d, "period": p, "start": f"{6 + p:02d}:00", "end": f"{6 + p:02d}:45",
                    "subject": f"Môn {p}", "teacher_id": str(teachers[p % len(teachers)].id)}
                   for d in (1, 3, 5) for p in range(1, n + 1)]
        self.call("PUT", self.admin, f"/classes/{self.klass.id}/timetable",
                  {"term_id": str(self.term.id), "periods": periods})

    def change(self, period, kind, **extra):
        self.call("POST", self.admin, f"/classes/{self.klass.id}/timetable/changes",
                  {"date": TODAY.isoformat(), "period": period, "kind": kind, **extra})

    def fill(self, n):
        """``n`` of each: check-ins, remarks, dishes in each of the day's meals, announcements."""
        events = [{"event_id": cid(), "student_id": str(self.child.id), "direction": "in" if i % 2 == 0 else "out",
                   "at": (NOW - dt.timedelta(minutes=50 - i)).isoformat() + "Z"} for i in range(n)]
        r = self.client.post(f"{API}/checkins", json={"events": events}, headers={"X-Device-Key": self.key})
        assert r.status_code == 200, r.get_json()
        self.call("POST", self.teacher, f"/classes/{self.klass.id}/attendance", {
            "date": TODAY.isoformat(), "records": [{"student_id": str(self.child.id), "status": "present"}]})
        for i in range(n):
            self.call("POST", self.teacher, f"/students/{self.child.id}/remarks",
                      {"body": f"Nhận xét {i}", "date": TODAY.isoformat()})
            self.dishes.append(self.call("POST", self.admin, f"/schools/{self.school.id}/dishes", {
                "name": f"Món {len(self.dishes)}", "kcal": 300, "protein_g": 10, "fat_g": 5, "carbs_g": 50,
                "allergens": ["egg"] if i % 2 else []})["id"])
        meals = ("breakfast", "lunch", "snack")
        self.call("PUT", self.admin, f"/schools/{self.school.id}/menus/{TODAY.isoformat()}",
                  {"meals": [{"meal": m, "dish_ids": self.dishes} for m in meals]})
        self.call("POST", self.admin, f"/schools/{self.school.id}/menus/publish",
                  {"from": TODAY.isoformat(), "to": TODAY.isoformat()})
        self.call("PUT", self.mother, f"/students/{self.child.id}/allergies", {"allergens": ["egg"]})
        self.call("POST", self.teacher, f"/classes/{self.klass.id}/meal-logs", {
            "date": TODAY.isoformat(), "meal": "lunch", "entries": [{"student_id": str(self.child.id),
                                                                     "portion": "most"}]})
        from notifications import announcements

        for i in range(n):
            announcements.create(self.admin.id, f"Thông báo {i}", "Nội dung", {"school_id": self.school.id},
                                 now=NOW + dt.timedelta(minutes=i))


@pytest.fixture
def day(app, client, fast):
    from schedules.logic import common

    common._tz_cache.clear()  # school ids repeat from test to test (and backend to backend)
    yield Day(app, client, fast)
    common._tz_cache.clear()


def test_timetable_week(app, client, day):
    """Kept at its budget (it was 5–6 with authentication): access, timezone (cached), periods, changes."""
    d, url = day, f"{API}/students/{day.child.id}/timetable?week=2026-W48"
    d.periods(1, [d.teacher])
    small = endpoint_statements(app, client, url, d.fast.headers(d.mother))
    d.periods(8, [d.teacher] + [d.fast.teacher(d.school) for _ in range(5)])
    d.change(1, "cancelled")
    d.change(2, "substitute", teacher_id=str(d.fast.teacher(d.school).id))
    large = endpoint_statements(app, client, url, d.fast.headers(d.mother))
    week = client.get(url, headers=d.fast.headers(d.mother)).get_json()
    assert sum(len(x["periods"]) for x in week["days"]) == 24
    check("timetable", small, large)


def test_day_page(app, client, day):
    """The day's page of a guardian and of the homeroom teacher: one of everything, then many."""
    d, url = day, f"{API}/students/{day.child.id}/contact-book?date={TODAY.isoformat()}"
    d.periods(1, [d.teacher])
    d.fill(1)
    small = [endpoint_statements(app, client, url, d.fast.headers(u)) for u in (d.mother, d.teacher)]
    d.periods(8, [d.teacher] + [d.fast.teacher(d.school) for _ in range(5)])
    d.change(1, "cancelled")
    d.change(2, "substitute", teacher_id=str(d.fast.teacher(d.school).id))
    d.fill(6)
    large = [endpoint_statements(app, client, url, d.fast.headers(u)) for u in (d.mother, d.teacher)]
    page = client.get(url, headers=d.fast.headers(d.mother)).get_json()
    assert len(page["timetable"]) == 8 and len(page["remarks"]) == 7 and len(page["checkins"]) == 7
    assert len(page["meals"]) == 3 and len(page["meals"][0]["dishes"]) == 7
    assert len(page["announcements"]) == 7, page["announcements"]
    for s, l in zip(small, large):
        check("day_page", s, l)


# --- a socket connect ---------------------------------------------------------------------------------
def connect_statements(app, token: str, user_id: int) -> tuple[int, int]:
    """The statements of a Socket.IO connect with ``token``: cold (this process's authentication
    cache emptied first) and warm (the next one), each a real connect through Flask-SocketIO's test client."""
    from service.realtime import socketio

    app.extensions["lienlac.session_cache"].clear()
    counts = []
    for _ in range(2):
        with count_queries() as q:
            sock = socketio.test_client(app, auth={"token": token})
        assert sock.is_connected()
        sid = socketio.server.manager.sid_from_eio_sid(sock.eio_sid, "/")
        rooms = set(socketio.server.manager.get_rooms(sid, "/"))
        sock.disconnect()
        print(f"\nconnect: {q}")
        assert rooms == {sid, f"user:{user_id}"}, rooms  # its own room only, no conversation's
        counts.append(q.count)
    return counts[0], counts[1]


def test_socket_connect_of_a_teacher_in_3_then_42_conversations(app, client, chats):
    """Connecting joins the user's own room ``user:<id>`` only: the same statements with 3
    conversations as with 42 (messaging events reach members through their user rooms)."""
    c = chats
    channel = c.channel(c.teacher, c.klass)
    student, (guardian,) = c.family(c.klass)
    c.talk(c.open(guardian, student, c.teacher), guardian, c.teacher)
    c.talk(channel, c.teacher, n=1)
    token = c.fast.token(c.teacher)
    assert len(client.get(f"{API}/conversations", headers=c.h(c.teacher)).get_json()["items"]) == 3  # (+ 3B's channel)
    small = connect_statements(app, token, c.teacher.id)

    for i in range(39):
        student, guardians = c.family(c.klass if i % 2 else c.klass_b, guardians=1 + i % 2)
        c.talk(c.open(guardians[0], student, c.teacher, *guardians[1:]), guardians[0], c.teacher, n=2)
    assert len(client.get(f"{API}/conversations?limit=200", headers=c.h(c.teacher)).get_json()["items"]) == 42
    large = connect_statements(app, token, c.teacher.id)
    assert small == large, f"connect: {small} statements (cold, warm) with 3 conversations, {large} with 42"
    assert large[0] <= BUDGETS["connect_cold"] and large[1] <= BUDGETS["connect"], large
