"""Grades by Circular 22/2021/TT-BGDĐT: the grade book, publishing, and what each reader sees.

The arithmetic and the learning result live in :mod:`contactbook.logic.circular22` (pure). Here:

- A subject of a class is scored or comment-assessed: ``GradeSubject.assessment`` when an admin
  set it, otherwise by name (the Circular's list, ``circular22.COMMENT_SUBJECTS``). Scored
  subjects take 0–10 with one decimal; comment-assessed ones ``Đ`` / ``CĐ``.
- Regular assessments per term: with the subject's yearly periods set (``GradeSubject``), exactly
  2, 3 or 4 slots (≤ 35, 36–70, > 70 periods) and the average waits for all of them; without,
  slots 1–4 are accepted (the Circular's most) and the average needs at least 2 (its least).
  An average also needs the midterm and the final.
- Scores are a draft until published per class, subject and term; publishing notifies the
  guardians of the graded students once (category ``grade``). A later change to a published
  score is stored in ``GradeChange`` (who, when, old, new) and the guardians of the students whose
  scores changed are told (category ``grade``), once per request.
- Guardians read published scores only (an unpublished subject is left out, and the term's result
  waits until every subject is published); the class's teachers and the admins read drafts too.
"""
from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from decimal import Decimal

import peewee as pw

import notifications
from service.roster import logic as roster
from service.db import db, is_postgres, utcnow, write_transaction
from service.errors import NotFound, ValidationError
from service.accounts.models import User
from service.roster.models import ClassTeacher, SchoolClass, SchoolYear, Student, Term

from .. import policy
from ..models import ASSESSMENTS, GRADE_KINDS, Grade, GradeChange, GradePublication, GradeSubject
from . import circular22 as c22

log = logging.getLogger("lienlac.contactbook.grades")

MAX_REGULAR = 4  # the Circular's most regular assessments per term
MIN_REGULAR = 2  # and its least


# --- subjects of a class ------------------------------------------------------------------------
def class_subjects(class_id: int) -> dict[str, str]:
    """``{subject_key: name}``: the subjects the class's teachers teach and those set up for grading."""
    out: dict[str, str] = {}
    teachers = ClassTeacher.select(ClassTeacher.subject).where(ClassTeacher.school_class == class_id)
    for row in teachers.order_by(ClassTeacher.id):
        if row.subject.strip():
            out.setdefault(c22.subject_key(row.subject), row.subject.strip())
    for row in GradeSubject.select().where(GradeSubject.school_class == class_id).order_by(GradeSubject.id):
        out.setdefault(c22.subject_key(row.subject), row.subject)
    return out


def _clean_subject(subject) -> str:
    if not isinstance(subject, str) or not subject.strip() or len(subject.strip()) > 100:
        raise ValidationError("Name the subject.", fields={"subject": ["1 to 100 characters."]})
    return " ".join(unicodedata.normalize("NFC", subject).split())


def canonical_subject(class_id: int, subject: str) -> str:
    """The class's spelling of ``subject`` when it has one, else the cleaned text."""
    subject = _clean_subject(subject)
    return class_subjects(class_id).get(c22.subject_key(subject), subject)


class SubjectRules:
    """How a subject is assessed in a class."""

    def __init__(self, name: str, setting: GradeSubject | None):
        self.name = name
        self.yearly_periods = setting.yearly_periods if setting else None
        if setting is not None and setting.assessment:
            self.assessment = setting.assessment
        else:
            self.assessment = "comment" if c22.is_comment_subject(name) else "score"
        if self.yearly_periods:
            self.max_slots = self.required = c22.regular_slots(self.yearly_periods)
        else:
            self.max_slots, self.required = MAX_REGULAR, MIN_REGULAR

    @property
    def comment(self) -> bool:
        return self.assessment == "comment"

    def view(self) -> dict:
        return {"subject": self.name, "assessment": self.assessment, "yearly_periods": self.yearly_periods,
                "regular_slots": self.max_slots, "regular_required": self.required}


def _settings(class_ids) -> dict[tuple[int, str], GradeSubject]:
    ids = list({int(c) for c in class_ids if c})
    if not ids:
        return {}
    return {(row.school_class_id, c22.subject_key(row.subject)): row
            for row in GradeSubject.select().where(GradeSubject.school_class.in_(ids))}


def rules_for(class_id: int, subject: str, settings=None) -> SubjectRules:
    settings = _settings([class_id]) if settings is None else settings
    return SubjectRules(subject, settings.get((class_id, c22.subject_key(subject))))


def list_grade_subjects(user: User, class_id: int) -> list[dict]:
    """The class's subjects and how each is assessed (its teachers and the school's admins)."""
    klass, _ = policy.grades_class_settings_for(user, class_id)
    settings = _settings([klass.id])
    return [rules_for(klass.id, name, settings).view() for name in class_subjects(klass.id).values()]


def set_grade_subject(user: User, class_id: int, subject: str, yearly_periods: int | None,
                      assessment: str | None) -> dict:
    """Set a subject's yearly periods (→ its regular slots) and assessment in a class (admin)."""
    klass = policy.grades_admin_class_for(user, class_id)
    name = canonical_subject(klass.id, subject)
    if yearly_periods is not None and not 1 <= int(yearly_periods) <= 1000:
        raise ValidationError("Yearly periods from 1 to 1000.", fields={"yearly_periods": ["From 1 to 1000."]})
    if assessment is not None and assessment not in ASSESSMENTS:
        raise ValidationError("Unknown assessment.", fields={"assessment": ['"score" or "comment".']})
    with write_transaction():
        row = GradeSubject.get_or_none((GradeSubject.school_class == klass.id) & (GradeSubject.subject == name))
        if row is None:
            row = GradeSubject.create(school_class=klass.id, subject=name, yearly_periods=yearly_periods,
                                      assessment=assessment)
        else:
            row.yearly_periods, row.assessment, row.updated_at = yearly_periods, assessment, utcnow()
            row.save()
    return rules_for(klass.id, name).view()


# --- terms ---------------------------------------------------------------------------------------
def _term_in_school(term_id, school_id: int) -> Term | None:
    try:
        term_id = int(term_id)
    except (TypeError, ValueError):
        return None
    if not 0 < term_id < 2**63:
        return None
    return (Term.select(Term, SchoolYear).join(SchoolYear)
            .where((Term.id == term_id) & (SchoolYear.school == school_id)).first())


def _term_for_class(term_id, klass: SchoolClass) -> Term:
    term = _term_in_school(term_id, klass.school_id)
    if term is None:
        raise ValidationError("No such term in this school.", fields={"term_id": ["No such term in this school."]})
    if klass.school_year_id and term.school_year_id != klass.school_year_id:
        raise ValidationError("The term is not in the class's school year.",
                              fields={"term_id": ["Not a term of the class's school year."]})
    return term


def term_for_student(term_id, student: Student) -> Term:
    term = _term_in_school(term_id, student.school_id)
    if term is None:
        raise NotFound("No such term.")
    return term


# --- writing -------------------------------------------------------------------------------------
def _format(value) -> str:
    return value if isinstance(value, str) else f"{value:.1f}"


def _check_scores(rules: SubjectRules, kind, slot, scores, class_student_ids: set[int]) -> tuple[int, list[tuple]]:
    """Validate a whole request (nothing is stored unless all of it is valid)."""
    problems: dict = {}
    if kind not in GRADE_KINDS:
        problems["kind"] = ['One of "regular", "midterm", "final".']
    if kind == "regular":
        if slot is None:
            problems["slot"] = ["Number the regular assessment: 1, 2, …"]
        elif isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= rules.max_slots:
            problems["slot"] = [f"From 1 to {rules.max_slots} for {rules.name}."]
    elif slot not in (None, 1):
        problems["slot"] = ["Only regular assessments are numbered."]
    if not isinstance(scores, list) or not scores:
        problems["scores"] = ["At least one score."]
        scores = []
    parsed: list[tuple[int, object]] = []
    seen: set[int] = set()
    for i, item in enumerate(scores):
        student_id = item.get("student_id") if isinstance(item, dict) else None
        if student_id not in class_student_ids:
            problems[f"scores.{i}.student_id"] = ["Not a student of this class."]
        elif student_id in seen:
            problems[f"scores.{i}.student_id"] = ["Listed twice."]
        seen.add(student_id)
        value = item.get("score") if isinstance(item, dict) else None
        try:
            parsed.append((student_id, c22.parse_mark(value) if rules.comment else c22.parse_score(value)))
        except ValueError as exc:
            problems[f"scores.{i}.score"] = [str(exc)]
    if problems:
        raise ValidationError("The request has invalid fields.", fields=problems)
    return (slot or 1), parsed


def put_grades(user: User, class_id: int, term_id, subject: str, kind: str, slot, scores: list[dict]) -> dict:
    """Store (draft) or correct one assessment of a class for some of its students.

    All or nothing: a score outside 0–10 or with two decimals, a student not in the class, a slot
    beyond the subject's regular assessments → 422 and nothing stored.
    """
    subject = _clean_subject(subject)
    klass = policy.grades_class_for(user, class_id, subject)
    subject = canonical_subject(klass.id, subject)
    term = _term_for_class(term_id, klass)
    rules = rules_for(klass.id, subject)
    slot, parsed = _check_scores(rules, kind, slot, scores, set(roster.class_student_ids(klass.id)))
    now = utcnow()
    changed_students: list[int] = []
    with write_transaction():
        if is_postgres():  # one grade-book writer per class at a time
            SchoolClass.select(SchoolClass.id).where(SchoolClass.id == klass.id).for_update().execute()
        published = GradePublication.select().where(
            (GradePublication.school_class == klass.id) & (GradePublication.term == term.id)
            & (GradePublication.subject == subject)).exists()
        ids = [student_id for student_id, _ in parsed]
        existing = {g.student_id: g for g in Grade.select().where(
            Grade.student.in_(ids) & (Grade.term == term.id) & (Grade.subject == subject)
            & (Grade.kind == kind) & (Grade.slot == slot))}
        for student_id, value in parsed:
            column = "mark" if rules.comment else "score"
            row = existing.get(student_id)
            old = None if row is None else (row.mark if row.mark is not None else row.score)
            if row is None:
                Grade.create(student=student_id, school_class=klass.id, term=term.id, subject=subject, kind=kind,
                             slot=slot, updated_by=user.id, updated_at=now, **{column: value})
            elif old != value or row.school_class_id != klass.id:
                Grade.update(school_class=klass.id, score=value if column == "score" else None,
                             mark=value if column == "mark" else None, updated_by=user.id,
                             updated_at=now).where(Grade.id == row.id).execute()
            if published and old != value:
                GradeChange.create(student=student_id, school_class=klass.id, term=term.id, subject=subject,
                                   kind=kind, slot=slot, old=None if old is None else _format(old),
                                   new=_format(value), changed_by=user.id, changed_at=now)
                changed_students.append(student_id)
    if changed_students:  # after the commit
        _notify_change(klass, term, subject, changed_students)
    return {"class_id": klass.id, "term_id": term.id, "subject": subject, "kind": kind,
            "slot": slot if kind == "regular" else None, "published": published,
            "scores": [{"student_id": s, "score": v} for s, v in parsed]}


def publish(user: User, class_id: int, term_id, subject: str) -> dict:
    """Publish a class's scores of a subject for a term; the guardians are told once."""
    subject = _clean_subject(subject)
    klass = policy.grades_class_for(user, class_id, subject)
    subject = canonical_subject(klass.id, subject)
    term = _term_for_class(term_id, klass)
    scope = (Grade.school_class == klass.id) & (Grade.term == term.id) & (Grade.subject == subject)
    with write_transaction():
        if not Grade.select().where(scope).exists():
            raise ValidationError("No scores to publish for this subject and term.",
                                  fields={"subject": ["No scores entered yet."]})
        created = True
        try:
            with db.atomic():
                pub = GradePublication.create(school_class=klass.id, term=term.id, subject=subject,
                                              published_by=user.id, published_at=utcnow())
        except pw.IntegrityError:
            created = False
            pub = GradePublication.get((GradePublication.school_class == klass.id)
                                       & (GradePublication.term == term.id) & (GradePublication.subject == subject))
    guardians: list[int] = []
    if created:  # after the commit, once
        student_ids = sorted({g.student_id for g in Grade.select(Grade.student).where(scope)})
        guardians = sorted({gid for ids in roster.guardians_by_student(student_ids).values() for gid in ids})
        _notify(guardians, "Điểm {subject} đã có", "Điểm môn {subject} ({term}) của lớp {klass} đã được công bố.",
                "Grades published: {subject}", "{subject} grades for {term}, class {klass}, are published.",
                klass, term, subject)
    return {"class_id": klass.id, "term_id": term.id, "subject": subject, "published_at": pub.published_at,
            "newly_published": created, "guardians_notified": len(guardians)}


def _notify(guardian_ids, vi_title, vi_body, en_title, en_body, klass, term, subject) -> None:
    if not guardian_ids:
        return
    names = {"subject": subject, "term": term.name, "klass": klass.name}
    texts = {"vi": (vi_title.format(**names), vi_body.format(**names)),
             "en": (en_title.format(**names), en_body.format(**names))}
    notifications.notify(guardian_ids, "grade", texts["vi"][0], texts["vi"][1], texts=texts,
                         data={"type": "grades", "id": term.id, "class_id": str(klass.id), "subject": subject})


def _notify_change(klass, term, subject, student_ids) -> None:
    guardians = sorted({gid for ids in roster.guardians_by_student(student_ids).values() for gid in ids})
    _notify(guardians, "Điểm {subject} được cập nhật", "Điểm môn {subject} ({term}) của lớp {klass} vừa được sửa.",
            "Grades updated: {subject}", "{subject} grades for {term}, class {klass}, were changed.",
            klass, term, subject)


def grade_changes(user: User, class_id: int, term_id, subject: str) -> list[dict]:
    """The audit of changes after publishing (the class's teachers and the admins)."""
    klass, _ = policy.grades_class_settings_for(user, class_id)
    subject = canonical_subject(klass.id, subject)
    term = _term_for_class(term_id, klass)
    rows = list(GradeChange.select().where((GradeChange.school_class == klass.id) & (GradeChange.term == term.id)
                                           & (GradeChange.subject == subject)).order_by(GradeChange.id))
    names = roster.user_names(r.changed_by_id for r in rows if r.changed_by_id)
    return [{"student_id": r.student_id, "kind": r.kind, "slot": r.slot if r.kind == "regular" else None,
             "old": r.old, "new": r.new, "changed_by": r.changed_by_id, "changed_by_name": names.get(r.changed_by_id),
             "changed_at": r.changed_at} for r in rows]


# --- reading -------------------------------------------------------------------------------------
def _value(row: Grade):
    return row.mark if row.mark is not None else Decimal(str(row.score)).quantize(c22.TENTH)


def _grade_rows(student_ids, term_ids, published_only: bool) -> list[Grade]:
    query = Grade.select().where(Grade.student.in_(list(student_ids)) & Grade.term.in_(list(term_ids)))
    if published_only:
        query = query.join(GradePublication, on=(
            (GradePublication.school_class == Grade.school_class) & (GradePublication.term == Grade.term)
            & (GradePublication.subject == Grade.subject)))
    return list(query.order_by(Grade.subject, Grade.kind, Grade.slot))


def subject_view(rules: SubjectRules, rows: list[Grade]) -> dict:
    """``{subject, assessment, regular, midterm, final, average}`` of one subject in one term."""
    regular = [_value(r) for r in sorted((r for r in rows if r.kind == "regular"), key=lambda r: r.slot)]
    midterm = next((_value(r) for r in rows if r.kind == "midterm"), None)
    final = next((_value(r) for r in rows if r.kind == "final"), None)
    average = None
    if midterm is not None and final is not None and len(regular) >= rules.required:
        if rules.comment:
            average = c22.comment_term_result([*regular, midterm, final], rules.required + 2)
        elif all(isinstance(v, Decimal) for v in (*regular, midterm, final)):
            average = c22.term_average(regular, midterm, final)
    return {"subject": rules.name, "assessment": rules.assessment, "regular": regular, "midterm": midterm,
            "final": final, "average": average}


def result_of(subjects: list[dict], expected: set[str], key: str = "average") -> str | None:
    """The learning result once every expected subject has its average, else None."""
    present = {c22.subject_key(s["subject"]): s for s in subjects}
    if not expected or not expected <= set(present) or any(present[k][key] is None for k in expected):
        return None
    chosen = [present[k] for k in sorted(expected)]
    scores = [s[key] for s in chosen if s["assessment"] == "score"]
    marks = [s[key] for s in chosen if s["assessment"] == "comment"]
    return c22.learning_result(scores, marks)


def _term_subjects(student: Student, term_ids: list[int], drafts: bool):
    """Per term: ``{subject_key: (rules, rows)}`` visible to the reader, plus every expected subject key."""
    all_rows = _grade_rows([student.id], term_ids, published_only=False)
    visible = all_rows if drafts else _grade_rows([student.id], term_ids, published_only=True)
    expected = {k for k in class_subjects(student.school_class_id)} if student.school_class_id else set()
    expected |= {c22.subject_key(r.subject) for r in all_rows}
    settings = _settings([r.school_class_id for r in all_rows] + [student.school_class_id])
    by_term: dict[int, dict[str, tuple[SubjectRules, list[Grade]]]] = {t: {} for t in term_ids}
    for row in visible:
        key = c22.subject_key(row.subject)
        entry = by_term[row.term_id].get(key)
        if entry is None:
            entry = by_term[row.term_id][key] = (rules_for(row.school_class_id, row.subject, settings), [])
        entry[1].append(row)
    return by_term, expected


def student_term_grades(user: User, student_id: int, term_id) -> dict:
    """``GET /students/{id}/grades?term_id=``."""
    student, drafts = policy.grades_student_for(user, student_id)
    term = term_for_student(term_id, student)
    return {"term_id": term.id, "student_id": student.id, **term_summary(student, term, drafts)}


def terms_of_year(year_id: int) -> list[Term]:
    return list(Term.select().where(Term.school_year == year_id).order_by(Term.starts_on, Term.id))


def student_year_grades(user: User, student_id: int, year_id) -> dict:
    """``GET /students/{id}/grades?year_id=``: per subject (term I + 2·term II) / 3, and the year's result.

    Term I and term II are the year's first two terms by date. A comment-assessed subject's year is
    its term II result (Điều 9.1.a).
    """
    student, drafts = policy.grades_student_for(user, student_id)
    try:
        year = SchoolYear.get_or_none((SchoolYear.id == int(year_id)) & (SchoolYear.school == student.school_id))
    except (TypeError, ValueError, OverflowError):
        year = None
    if year is None:
        raise NotFound("No such school year.")
    terms = terms_of_year(year.id)[:2]
    by_term, expected = _term_subjects(student, [t.id for t in terms], drafts)
    keys = sorted({k for t in terms for k in by_term[t.id]})
    subjects = []
    for key in keys:
        views = [subject_view(*by_term[t.id][key]) if key in by_term[t.id] else None for t in terms]
        first = next(v for v in views if v is not None)
        t1 = views[0]["average"] if views and views[0] else None
        t2 = views[1]["average"] if len(views) > 1 and views[1] else None
        if first["assessment"] == "comment":
            average = c22.comment_year_result(t1, t2) if t2 is not None else None
        else:
            average = c22.year_average(t1, t2) if t1 is not None and t2 is not None else None
        subjects.append({"subject": first["subject"], "assessment": first["assessment"], "term1": t1, "term2": t2,
                         "average": average})
    result = result_of(subjects, expected) if len(terms) == 2 else None
    return {"year_id": year.id, "student_id": student.id, "term_ids": [t.id for t in terms],
            "subjects": subjects, "result": result}


def class_grade_book(user: User, class_id: int, term_id, subject: str) -> dict:
    """A class's scores of one subject and term, drafts included (its teachers and the admins)."""
    klass, _ = policy.grades_class_settings_for(user, class_id)
    subject = canonical_subject(klass.id, subject)
    term = _term_for_class(term_id, klass)
    rules = rules_for(klass.id, subject)
    rows = defaultdict(list)
    for row in Grade.select().where((Grade.school_class == klass.id) & (Grade.term == term.id)
                                    & (Grade.subject == subject)):
        rows[row.student_id].append(row)
    pub = GradePublication.get_or_none((GradePublication.school_class == klass.id)
                                       & (GradePublication.term == term.id) & (GradePublication.subject == subject))
    students = (Student.select(Student.id, Student.name).where(Student.school_class == klass.id)
                .order_by(Student.name, Student.id))
    items = []
    for s in students:
        view = subject_view(rules, rows.get(s.id, []))
        items.append({"student_id": s.id, "name": s.name,
                      **{k: view[k] for k in ("regular", "midterm", "final", "average")}})
    return {"class_id": klass.id, "term_id": term.id, **rules.view(),
            "published_at": pub.published_at if pub else None, "students": items}


def term_summary(student: Student, term: Term, drafts: bool) -> dict:
    """For the report (already authorized): the term's subjects and result."""
    by_term, expected = _term_subjects(student, [term.id], drafts)
    subjects = [subject_view(rules, rows) for rules, rows in sorted(by_term[term.id].values(), key=lambda e: e[0].name)]
    return {"subjects": subjects, "result": result_of(subjects, expected)}


__all__ = ["put_grades", "publish", "student_term_grades", "student_year_grades", "class_grade_book",
           "grade_changes", "list_grade_subjects", "set_grade_subject", "term_summary"]
