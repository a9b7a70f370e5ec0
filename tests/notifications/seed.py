"""Bulk roster seeding for the fan-out tests and benchmarks/fanout.py (tests may write service tables).

``seed_school(n)``: one school, classes of 40, ``n`` guardians: 80 % of them have one child each,
the rest are second guardians with two children (siblings); ``with_device`` of the guardians have
a device, ``two_devices`` of those two (defaults 100 % and 30 %: ``n`` = 100,000 → 130,000 devices).
"""
from __future__ import annotations

import dataclasses

from notifications.models import Device
from service.roster import logic as roster
from service.db import db, is_postgres
from service.accounts.models import User
from service.roster.models import SchoolClass, Student, StudentGuardian


@dataclasses.dataclass
class Seeded:
    school_id: int
    admin_id: int
    class_ids: list[int]
    guardian_ids: list[int]
    tokens: dict[str, int]  # device token → guardian id


def token_for(k: int, j: int) -> str:
    # about the length of a real FCM registration token
    return f"tok{k:07d}{j}:APA91b" + ("x" * 140)


def _insert(model, rows, size=1000, returning=False):
    """Bulk insert; ids in row order if ``returning``. PostgreSQL: psycopg2's execute_values
    (peewee builds SQL in Python, too slow for 400,000 rows); SQLite: insert_many."""
    if not rows:
        return []
    for name, field in model._meta.fields.items():
        if name != "id" and field.default is not None and name not in rows[0]:
            for row in rows:
                row[name] = field.default() if callable(field.default) else field.default
    columns = list(rows[0])
    if is_postgres():
        from psycopg2.extras import execute_values

        names = ", ".join(f'"{model._meta.fields[c].column_name}"' for c in columns)
        sql = f'INSERT INTO "{model._meta.table_name}" ({names}) VALUES %s' + (" RETURNING id" if returning else "")
        values = [tuple(getattr(r[c], "id", r[c]) for c in columns) for r in rows]
        with db.atomic():
            cursor = db.cursor()
            out = execute_values(cursor, sql, values, page_size=size, fetch=returning)
        return [row[0] for row in out] if returning else []
    with db.atomic():
        for start in range(0, len(rows), size):
            model.insert_many(rows[start:start + size]).execute()
    if not returning:
        return []
    key = model.sourced_id
    values = [r["sourced_id"] for r in rows]
    found = {}
    for start in range(0, len(values), 5000):
        found.update({r.sourced_id: r.id for r in model.select(model.id, key).where(key.in_(values[start:start + 5000]))})
    return [found[v] for v in values]


def seed_school(n_guardians: int, *, grades: int = 5, with_device: float = 1.0, two_devices: float = 0.3,
                name: str = "Trường Fan-out") -> Seeded:
    school = roster.create_school(name)
    admin = roster.ensure_user(f"+84988{school.id:06d}", "Hiệu trưởng", "mat-khau-123")
    roster.add_staff(school.id, admin.id, "admin")
    n_students = max(1, n_guardians * 4 // 5)
    n_classes = max(1, (n_students + 39) // 40)
    tag = f"s{school.id}"
    class_ids = _insert(SchoolClass, [{"school": school.id, "name": f"{1 + i % grades}A{i}", "grade": 1 + i % grades,
                                       "sourced_id": f"{tag}-c{i}"} for i in range(n_classes)], returning=True)
    student_ids = _insert(Student, [{"school": school.id, "school_class": class_ids[i // 40], "name": f"Học sinh {i}",
                                     "sourced_id": f"{tag}-st{i}"} for i in range(n_students)], returning=True)
    guardian_ids = _insert(User, [{"name": f"Phụ huynh {k}", "sourced_id": f"{tag}-g{k}"} for k in range(n_guardians)],
                           returning=True)
    links = []
    for k, gid in enumerate(guardian_ids):
        if k < n_students:
            links.append({"student": student_ids[k], "guardian": gid, "relationship": "mother"})
        else:
            a = ((k - n_students) * 2) % n_students
            for s in {a, (a + 1) % n_students}:
                links.append({"student": student_ids[s], "guardian": gid, "relationship": "father"})
    _insert(StudentGuardian, links)
    tokens = {}
    if with_device:
        rows = []
        for k, gid in enumerate(guardian_ids):
            if (k * 37) % 100 >= with_device * 100:
                continue
            for j in range(2 if (k % 100) < two_devices * 100 else 1):
                token = token_for(k, j)
                tokens[token] = gid
                rows.append({"user": gid, "token": token, "platform": "android" if j == 0 else "ios"})
        _insert(Device, rows)
    return Seeded(school.id, admin.id, class_ids, guardian_ids, tokens)
