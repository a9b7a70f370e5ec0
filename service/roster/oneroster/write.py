"""Stage 4: check the plan against the database and write it (bulk reads, chunked inserts)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from peewee import chunked

from ...accounts import logic as accounts
from ...accounts import sessioncache
from ...db import utcnow
from ...accounts.models import User
from ..models import ClassTeacher, School, SchoolClass, SchoolYear, StaffRole, Student, StudentGuardian, Term
from .plan import Plan
from .read import Problems
from .validate import Parsed, Person
from .vocab import CHUNK, KINDS, STAFF_ROLE_MAP

# --- database ------------------------------------------------------------------------------
def _select_in(query_factory, field, values: Iterable) -> list:
    values = list(dict.fromkeys(v for v in values if v is not None))
    out = []
    for chunk in chunked(values, CHUNK):
        out.extend(query_factory().where(field.in_(chunk)))
    return out


def _diff(row, values: dict) -> dict:
    return {k: v for k, v in values.items() if row.__data__.get(k) != v}


def _insert(model, rows: list[dict], progress) -> None:
    for chunk in chunked(rows, CHUNK):
        model.insert_many(chunk).execute()
        progress.advance(len(chunk))


def _counts() -> dict[str, dict[str, int]]:
    return {kind: {"created": 0, "updated": 0, "unchanged": 0, "removed": 0} for kind in KINDS}


class _Writer:
    def __init__(self, plan: Plan, parsed: Parsed, school: School | None, problems: Problems, progress):
        self.plan, self.p, self.school, self.problems, self.progress = plan, parsed, school, problems, progress
        self.counts = _counts()
        self.now = utcnow()

    # -- checks against the database (no writes) --
    def check(self) -> None:
        plan, school_id = self.plan, getattr(self.school, "id", None)
        self.progress.start("Checking the database", 5)
        self.years = {y.sourced_id: y for y in _select_in(SchoolYear.select, SchoolYear.sourced_id,
                                                              [s.sid for s in plan.years])}
        for s in plan.years:
            row = self.years.get(s.sid)
            if row is not None and row.school_id != school_id:
                self.problems.add("academicSessions.csv", s.line, "sourcedId",
                                  f"school year {s.sid!r} belongs to another school")
        self.terms = {t.sourced_id: t for t in _select_in(
            lambda: Term.select(Term, SchoolYear.id, SchoolYear.school).join(SchoolYear), Term.sourced_id,
            [s.sid for s, _ in plan.terms])}
        for s, _ in plan.terms:
            row = self.terms.get(s.sid)
            if row is not None and row.school_year.school_id != school_id:
                self.problems.add("academicSessions.csv", s.line, "sourcedId",
                                  f"term {s.sid!r} belongs to another school")
        self.progress.advance()
        self.classes = {c.sourced_id: c for c in _select_in(SchoolClass.select, SchoolClass.sourced_id,
                                                                [k.sid for k in plan.classes])}
        for k in plan.classes:
            row = self.classes.get(k.sid)
            if row is not None and row.school_id != school_id:
                self.problems.add("classes.csv", k.line, "sourcedId", f"class {k.sid!r} belongs to another school")
        self.progress.advance()
        self._check_users()
        self.progress.advance()
        self._check_students()
        self._check_external()
        self.progress.advance(2)

    def _check_external(self) -> None:
        """A delta's references to rows not in the bundle must name this school's data (never another's)."""
        school_id = getattr(self.school, "id", None)
        wanted: dict[str, set[str]] = defaultdict(set)
        for _, _, _, kind, sid in self.p.external:
            wanted[kind].add(sid)
        self.ext_classes = {c.sourced_id: c.id for c in _select_in(
            lambda: SchoolClass.select(SchoolClass.id, SchoolClass.sourced_id).where(SchoolClass.school == school_id),
            SchoolClass.sourced_id, wanted["class"])}
        sessions = {y.sourced_id for y in _select_in(
            lambda: SchoolYear.select(SchoolYear.sourced_id).where(SchoolYear.school == school_id),
            SchoolYear.sourced_id, wanted["session"])}
        sessions |= {t.sourced_id for t in _select_in(
            lambda: Term.select(Term.sourced_id).join(SchoolYear).where(SchoolYear.school == school_id),
            Term.sourced_id, wanted["session"])}
        self.ext_students = {s.sourced_id: s for s in _select_in(
            lambda: Student.select(Student.id, Student.sourced_id, Student.school_class).where(
                Student.school == school_id), Student.sourced_id, wanted["user"])}
        in_school = (StaffRole.select(StaffRole.user).where(StaffRole.school == school_id)
                     | StudentGuardian.select(StudentGuardian.guardian).join(Student)
                     .where(Student.school == school_id))
        self.ext_users = {u.sourced_id: u.id for u in _select_in(
            lambda: User.select(User.id, User.sourced_id).where(User.id.in_(in_school)), User.sourced_id,
            wanted["user"])}
        known = {"class": self.ext_classes, "session": sessions, "user": set(self.ext_students) | set(self.ext_users)}
        for file, line, column, kind, sid in self.p.external:
            if kind in known and sid not in known[kind]:
                self.problems.add(file, line, column, f"unknown {kind} {sid!r}: not in this bundle, and not "
                                                      "imported before for this school")

    def _foreign_users(self, user_ids: Iterable[int]) -> set[int]:
        """Accounts holding a role or a child link outside the importing school: never modified here."""
        school_id = getattr(self.school, "id", None)
        ids = list(dict.fromkeys(user_ids))
        foreign: set[int] = set()
        for chunk in chunked(ids, CHUNK):
            roles = StaffRole.select(StaffRole.user).where(StaffRole.user.in_(chunk))
            links = (StudentGuardian.select(StudentGuardian.guardian).join(Student)
                     .where(StudentGuardian.guardian.in_(chunk)))
            if school_id is not None:
                roles = roles.where(StaffRole.school != school_id)
                links = links.where(Student.school != school_id)
            foreign.update(r.user_id for r in roles)
            foreign.update(r.guardian_id for r in links)
        return foreign

    def _check_users(self) -> None:
        people = self.plan.people
        by_sid = {u.sourced_id: u for u in _select_in(User.select, User.sourced_id, [r.sid for r in people])}
        by_phone = {u.phone: u for u in _select_in(User.select, User.phone, [r.phone for r in people])}
        self.foreign = self._foreign_users([u.id for u in by_sid.values()] + [u.id for u in by_phone.values()])
        self.user_match: dict[str, User] = {}
        claimed: dict[int, Person] = {}
        for r in people:
            user = by_sid.get(r.sid)
            column = "sourcedId"
            if user is not None and user.id in self.foreign and not (r.phone and user.phone == r.phone):
                # a sourcedId another school's roster uses: never adopted through the sourcedId alone
                self.problems.add("users.csv", r.line, "sourcedId",
                                  f"sourcedId {r.sid!r} is already used by an account this school does not "
                                  "manage; give this person another sourcedId")
                continue
            if user is None and r.phone:
                user, column = by_phone.get(r.phone), r.phone_column
            if user is None:
                continue
            if user.id in claimed:
                self.problems.add("users.csv", r.line, column,
                                  f"the same account as line {claimed[user.id].line} (phone or sourcedId)")
                continue
            if user.id not in self.foreign and r.phone and user.phone != r.phone and r.phone in by_phone \
                    and by_phone[r.phone].id != user.id:
                self.problems.add("users.csv", r.line, r.phone_column,
                                  f"phone {r.phone} is already the sign-in number of another account")
                continue
            claimed[user.id] = r
            self.user_match[r.sid] = user

    def _check_students(self) -> None:
        students = self.plan.students
        school_id = getattr(self.school, "id", None)
        by_sid = {s.sourced_id: s for s in _select_in(Student.select, Student.sourced_id, [r.sid for r in students])}
        by_nid = {s.national_id: s for s in _select_in(Student.select, Student.national_id,
                                                       [r.identifier for r in students if r.identifier])}
        self.student_match: dict[str, Student] = {}
        for r in students:
            row = by_sid.get(r.sid)
            other = by_nid.get(r.identifier) if r.identifier else None
            # a student of another school is refused, and the answer names nothing of theirs
            if row is not None and row.school_id != school_id:
                self.problems.add("users.csv", r.line, "sourcedId",
                                  f"sourcedId {r.sid!r} is already used by a student outside this school")
                continue
            if other is not None and other.school_id != school_id and (row is None or other.id != row.id):
                self.problems.add("users.csv", r.line, "identifier",
                                  f"national id {r.identifier!r} is already used by a student outside this school")
                continue
            if row is None and other is not None:
                if other.sourced_id is not None:
                    self.problems.add("users.csv", r.line, "identifier",
                                      f"national id {r.identifier!r} belongs to another student of this school "
                                      f"({other.sourced_id!r})")
                    continue
                row = other
            elif row is not None and other is not None and other.id != row.id:
                self.problems.add("users.csv", r.line, "identifier",
                                  f"national id {r.identifier!r} belongs to another student of this school")
                continue
            if row is not None:
                self.student_match[r.sid] = row

    # -- writes --
    def write(self) -> dict:
        self._school()
        self._sessions()
        self._users()
        self._staff_roles()
        self._classes()
        self._class_teachers()
        self._students()
        self._links()
        self._removals()
        self._delta()
        return self.counts

    def _delta(self) -> None:
        """Enrollments and links of a delta that name classes, students or users imported before."""
        plan, school_id = self.plan, self.school.id
        if not (plan.delta_enrollments or plan.delta_links):
            return
        self.progress.start("Applying the delta", len(plan.delta_enrollments) + len(plan.delta_links))
        class_ids = {**self.ext_classes, **self.class_ids}
        student_ids = {**{sid: s.id for sid, s in self.ext_students.items()}, **self.student_ids}
        user_ids = {**self.ext_users, **self.user_ids}
        current = {s.id: s.school_class_id for s in _select_in(
            lambda: Student.select(Student.id, Student.school_class), Student.id, list(student_ids.values()))}
        for e in plan.delta_enrollments:
            class_id = class_ids.get(e.class_sid)
            if class_id is None:
                continue
            if e.role == "student" and e.user_sid in student_ids:
                sid = student_ids[e.user_sid]
                if e.status == "active" and current.get(sid) != class_id:
                    Student.update(school_class=class_id).where(Student.id == sid).execute()
                    current[sid] = class_id
                    self._count("students", "updated")
                elif e.status == "tobedeleted" and current.get(sid) == class_id:
                    Student.update(school_class=None).where(Student.id == sid).execute()
                    current[sid] = None
                    self._count("students", "removed")
            elif e.role in ("teacher", "aide") and e.user_sid in user_ids:
                uid = user_ids[e.user_sid]
                mine = ClassTeacher.select().where((ClassTeacher.school_class == class_id)
                                                   & (ClassTeacher.teacher == uid))
                if e.status == "active" and not mine.exists():
                    ClassTeacher.create(school_class=class_id, teacher=uid, subject="")
                    StaffRole.get_or_create(user=uid, school=school_id, role="teacher")
                    self._count("class_teachers", "created")
                elif e.status == "tobedeleted":
                    self._count("class_teachers", "removed", ClassTeacher.delete().where(
                        (ClassTeacher.school_class == class_id) & (ClassTeacher.teacher == uid)).execute())
                    self._count("classes", "updated", SchoolClass.update(homeroom_teacher=None).where(
                        (SchoolClass.id == class_id) & (SchoolClass.homeroom_teacher == uid)).execute())
        for (student_sid, guardian_sid), relationship in plan.delta_links.items():
            sid, gid = student_ids.get(student_sid), user_ids.get(guardian_sid)
            if sid is None or gid is None:
                continue
            _, created = StudentGuardian.get_or_create(student=sid, guardian=gid,
                                                       defaults={"relationship": relationship})
            self._count("guardian_links", "created" if created else "unchanged")

    def _count(self, kind: str, what: str, n: int = 1) -> None:
        self.counts[kind][what] += n

    def _school(self) -> None:
        org = self.plan.org
        values = {"name": org.name, "sourced_id": org.sid}
        if org.identifier:
            values["code"] = org.identifier[:50]
        if self.school is None:
            self.school = School.create(created_at=self.now, **values)
            self._count("schools", "created")
            return
        changes = _diff(self.school, values)
        if changes:
            School.update(**changes).where(School.id == self.school.id).execute()
            self._count("schools", "updated")
        else:
            self._count("schools", "unchanged")

    def _upsert(self, kind: str, model, desired: dict[str, dict], existing: dict[str, object]) -> dict[str, int]:
        """Upsert ``{sourced_id: values}``; returns ``{sourced_id: id}``."""
        self.progress.start(f"Writing {kind.replace('_', ' ')}", len(desired))
        new = []
        ids: dict[str, int] = {}
        for sid, values in desired.items():
            row = existing.get(sid)
            if row is None:
                new.append({**values, "sourced_id": sid})
                continue
            ids[sid] = row.id
            changes = _diff(row, {**values, "sourced_id": sid})
            if changes:
                model.update(**changes).where(model.id == row.id).execute()
                self._count(kind, "updated")
            else:
                self._count(kind, "unchanged")
            self.progress.advance()
        if new:
            _insert(model, new, self.progress)
            self._count(kind, "created", len(new))
            for row in _select_in(lambda: model.select(model.id, model.sourced_id), model.sourced_id,
                                  [r["sourced_id"] for r in new]):
                ids[row.sourced_id] = row.id
        return ids

    def _sessions(self) -> None:
        school_id = self.school.id
        self.year_ids = self._upsert("school_years", SchoolYear, {
            s.sid: {"school": school_id, "name": s.title, "starts_on": s.start, "ends_on": s.end}
            for s in self.plan.years}, self.years)
        self.term_ids = self._upsert("terms", Term, {
            s.sid: {"school_year": self.year_ids[year], "name": s.title, "starts_on": s.start, "ends_on": s.end}
            for s, year in self.plan.terms}, self.terms)

    def _users(self) -> None:
        self.progress.start("Writing users", len(self.plan.people))
        new, self.user_ids, changed = [], {}, []
        kind_of = lambda r: "staff" if r.role in STAFF_ROLE_MAP else "guardians"  # noqa: E731
        for r in self.plan.people:
            user = self.user_match.get(r.sid)
            if user is None:
                new.append({"name": r.name, "phone": r.phone, "email": r.email or None, "sourced_id": r.sid,
                            "is_active": r.enabled is not False, "created_at": self.now})
                self._count(kind_of(r), "created")
                continue
            self.user_ids[r.sid] = user.id
            if user.id in self.foreign:  # an account of another school too: linked here, never changed
                values = {}
            elif user.sourced_id in (None, r.sid):  # ours (or adopted now): the roster is the source of truth
                values = {"name": r.name, "sourced_id": r.sid}
                if r.phone:
                    values["phone"] = r.phone
                if r.email:
                    values["email"] = r.email
                if r.enabled is not None:
                    values["is_active"] = r.enabled
            else:  # shared with another school's roster: fill in, never overwrite
                values = {"name": r.name} if not user.name else {}
            changes = _diff(user, values)
            if changes:
                User.update(**changes).where(User.id == user.id).execute()
                changed.append(user.id)
                if changes.get("is_active") is False:  # disabled by the roster: its sessions and sockets end
                    accounts.end_all_sessions(user.id, reason="deactivated", now=self.now)
                self._count(kind_of(r), "updated")
            else:
                self._count(kind_of(r), "unchanged")
            self.progress.advance()
        sessioncache.invalidate(users=changed)  # after the import commits, in every web process
        _insert(User, new, self.progress)
        for user in _select_in(lambda: User.select(User.id, User.sourced_id), User.sourced_id,
                               [r["sourced_id"] for r in new]):
            self.user_ids[user.sourced_id] = user.id
        for alias, owner in self.p.alias_of.items():
            if owner in self.user_ids:
                self.user_ids[alias] = self.user_ids[owner]

    def _staff_roles(self) -> None:
        school_id = self.school.id
        existing = {(r.user_id, r.role) for r in StaffRole.select(StaffRole.user, StaffRole.role)
                    .where(StaffRole.school == school_id)}
        desired = sorted({(self.user_ids[sid], role) for sid, role in self.plan.staff_roles})
        new = [{"user": u, "school": school_id, "role": role} for u, role in desired if (u, role) not in existing]
        self.progress.start("Writing staff roles", len(desired))
        _insert(StaffRole, new, self.progress)
        self._count("staff_roles", "created", len(new))
        self._count("staff_roles", "unchanged", len(desired) - len(new))

    def _classes(self) -> None:
        plan, desired = self.plan, {}
        for k in plan.classes:
            values = {"school": self.school.id, "name": k.title, "grade": plan.class_grade[k.sid]}
            if plan.class_year[k.sid] or k.sid not in self.classes:  # a delta's class keeps its year
                values["school_year"] = self.year_ids.get(plan.class_year[k.sid]) if plan.class_year[k.sid] else None
            teacher = plan.homeroom.get(k.sid)
            if teacher is not None:
                values["homeroom_teacher"] = self.user_ids[teacher]
            elif k.sid not in self.classes:
                values["homeroom_teacher"] = None
            if k.sid not in self.classes:
                values["created_at"] = self.now
            desired[k.sid] = values
        self.class_ids = self._upsert("classes", SchoolClass, desired, self.classes)

    def _class_teachers(self) -> None:
        plan = self.plan
        class_ids = list(self.class_ids.values())
        existing: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
        for row in _select_in(lambda: ClassTeacher.select(), ClassTeacher.school_class, class_ids):
            existing[(row.school_class_id, row.teacher_id)][row.subject] = row.id
        self.existing_class_teachers = existing
        new, stale = [], []
        self.progress.start("Writing class teachers", len(plan.subject_teachers))
        for (class_sid, user_sid), subject in plan.subject_teachers.items():
            pair = (self.class_ids[class_sid], self.user_ids[user_sid])
            subjects = existing.get(pair, {})
            if subject in subjects:
                self._count("class_teachers", "unchanged")
            else:
                new.append({"school_class": pair[0], "teacher": pair[1], "subject": subject})
                self._count("class_teachers", "created")
            stale.extend(row_id for s, row_id in subjects.items() if s != subject)
        _insert(ClassTeacher, new, self.progress)
        if stale:
            ClassTeacher.delete().where(ClassTeacher.id.in_(stale)).execute()
            self._count("class_teachers", "removed", len(stale))

    def _students(self) -> None:
        plan, desired = self.plan, {}
        for r in plan.students:
            values = {"school": self.school.id, "name": r.name}
            class_sid = plan.student_class.get(r.sid)
            if class_sid is not None:
                values["school_class"] = self.class_ids[class_sid]
            elif r.sid not in self.student_match:
                values["school_class"] = None
            if r.identifier:
                values["national_id"] = r.identifier
            elif r.sid not in self.student_match:
                values["national_id"] = None
            if r.sid in plan.birth_dates:
                values["birth_date"] = plan.birth_dates[r.sid]
            elif r.sid not in self.student_match:
                values["birth_date"] = None
            if r.sid not in self.student_match:
                values["created_at"] = self.now
            desired[r.sid] = values
        self.student_ids = self._upsert("students", Student, desired, self.student_match)

    def _links(self) -> None:
        plan = self.plan
        existing = {(r.student_id, r.guardian_id): r for r in _select_in(
            lambda: StudentGuardian.select(), StudentGuardian.student, list(self.student_ids.values()))}
        new, seen = [], set()
        self.progress.start("Writing guardian links", len(plan.links))
        for (student_sid, guardian_sid), relationship in plan.links.items():
            key = (self.student_ids[student_sid], self.user_ids[guardian_sid])
            if key in seen:  # two rows (e.g. a teacher and their parent row) naming one account
                continue
            seen.add(key)
            row = existing.get(key)
            if row is None:
                new.append({"student": key[0], "guardian": key[1], "relationship": relationship})
                self._count("guardian_links", "created")
            elif row.relationship != relationship and relationship != "guardian":
                StudentGuardian.update(relationship=relationship).where(StudentGuardian.id == row.id).execute()
                self._count("guardian_links", "updated")
                self.progress.advance()
            else:
                self._count("guardian_links", "unchanged")
                self.progress.advance()
        _insert(StudentGuardian, new, self.progress)

    def _removals(self) -> None:
        plan, school_id = self.plan, self.school.id
        if not (plan.leave_class or plan.drop_staff or plan.drop_guardians or plan.drop_class_teachers):
            return
        self.progress.start("Applying tobedeleted", 4)
        class_by_sid = {c.sourced_id: c.id for c in SchoolClass.select(SchoolClass.id, SchoolClass.sourced_id)
                        .where((SchoolClass.school == school_id) & SchoolClass.sourced_id.is_null(False))}
        for sid, class_sid in plan.leave_class.items():
            query = Student.update(school_class=None).where(
                (Student.sourced_id == sid) & (Student.school == school_id) & Student.school_class.is_null(False))
            if class_sid is not None:
                if class_sid not in class_by_sid:
                    continue
                query = query.where(Student.school_class == class_by_sid[class_sid])
            self._count("students", "removed", query.execute())
        self.progress.advance()
        school_classes = SchoolClass.select(SchoolClass.id).where(SchoolClass.school == school_id)
        if plan.drop_staff:
            ids = [u.id for u in _select_in(lambda: User.select(User.id), User.sourced_id, plan.drop_staff)]
            if ids:
                self._count("staff_roles", "removed", StaffRole.delete().where(
                    StaffRole.user.in_(ids) & (StaffRole.school == school_id)).execute())
                self._count("class_teachers", "removed", ClassTeacher.delete().where(
                    ClassTeacher.teacher.in_(ids) & ClassTeacher.school_class.in_(school_classes)).execute())
                self._count("classes", "updated", SchoolClass.update(homeroom_teacher=None).where(
                    SchoolClass.homeroom_teacher.in_(ids) & (SchoolClass.school == school_id)).execute())
        self.progress.advance()
        if plan.drop_guardians:
            ids = [u.id for u in _select_in(lambda: User.select(User.id), User.sourced_id, plan.drop_guardians)]
            if ids:
                students = Student.select(Student.id).where(Student.school == school_id)
                self._count("guardian_links", "removed", StudentGuardian.delete().where(
                    StudentGuardian.guardian.in_(ids) & StudentGuardian.student.in_(students)).execute())
        self.progress.advance()
        user_by_sid = {u.sourced_id: u.id for u in _select_in(lambda: User.select(User.id, User.sourced_id),
                                                              User.sourced_id, [u for _, u in plan.drop_class_teachers])}
        for class_sid, user_sid in sorted(plan.drop_class_teachers):
            class_id, user_id = class_by_sid.get(class_sid), user_by_sid.get(user_sid)
            if class_id is None or user_id is None:
                continue
            self._count("class_teachers", "removed", ClassTeacher.delete().where(
                (ClassTeacher.school_class == class_id) & (ClassTeacher.teacher == user_id)).execute())
            if plan.homeroom.get(class_sid) is None:
                self._count("classes", "updated", SchoolClass.update(homeroom_teacher=None).where(
                    (SchoolClass.id == class_id) & (SchoolClass.homeroom_teacher == user_id)).execute())
        self.progress.advance()


