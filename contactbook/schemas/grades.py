"""Marshmallow schemas of grades, remarks and the term report (``contactbook.api.grades``)."""
from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.schemas import Id, ListArgs, UtcDateTime, page_schema

from ..logic.circular22 import LEVELS
from ..models import ASSESSMENTS, GRADE_KINDS

SCORE_TEXT = ('a number 0–10 with at most one decimal (scored subjects), or "Đ" / "CĐ" '
              "(Đạt / Chưa đạt, comment-assessed subjects)")


class ScoreValue(fields.Field):
    """A score out: a JSON number for scored subjects, ``"Đ"`` / ``"CĐ"`` for comment-assessed ones."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, Decimal):
            return float(value)  # one decimal: the float's shortest repr is the same text
        return value

    def _deserialize(self, value, attr, data, **kwargs):  # checked by the logic (all or nothing)
        return value


def _score(metadata: dict | None = None, **kw):
    meta = {"description": SCORE_TEXT, "oneOf": [{"type": "number"}, {"type": "string"}], **(metadata or {})}
    return ScoreValue(metadata=meta, **kw)


class _Subject(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=100),
                            metadata={"description": "as the class's teachers are assigned, e.g. Toán, Ngữ văn"})


# --- writing --------------------------------------------------------------------------------------
class ScoreIn(Schema):
    student_id = Id(required=True)
    score = _score(required=True, allow_none=True)


class GradesIn(_Subject):
    term_id = Id(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(GRADE_KINDS),
                         metadata={"description": "regular (weight 1), midterm (weight 2), final (weight 3)"})
    slot = fields.Integer(strict=True, allow_none=True, metadata={
        "description": "numbers the regular assessments 1, 2, … up to the subject's count (2, 3 or 4 by its "
                       "yearly periods; 4 when not set); absent for midterm and final"})
    scores = fields.List(fields.Nested(ScoreIn), required=True, validate=validate.Length(min=1, max=200))


class ScoreOut(Schema):
    student_id = Id(required=True)
    score = _score(required=True)


class GradesOut(Schema):
    class_id = Id(required=True)
    term_id = Id(required=True)
    subject = fields.String(required=True)
    kind = fields.String(required=True)
    slot = fields.Integer(allow_none=True)
    published = fields.Boolean(required=True, metadata={
        "description": "true: the subject is already published, the change is audited and guardians are told"})
    scores = fields.List(fields.Nested(ScoreOut), required=True)


class PublishIn(_Subject):
    term_id = Id(required=True)


class PublishOut(Schema):
    class_id = Id(required=True)
    term_id = Id(required=True)
    subject = fields.String(required=True)
    published_at = UtcDateTime(required=True)
    newly_published = fields.Boolean(required=True, metadata={"description": "false: it was already published"})
    guardians_notified = fields.Integer(required=True)


class GradeBookArgs(_Subject):
    term_id = Id(required=True)


class GradeBookStudent(Schema):
    student_id = Id(required=True)
    name = fields.String(required=True)
    regular = fields.List(_score(), required=True)
    midterm = _score(allow_none=True)
    final = _score(allow_none=True)
    average = _score(allow_none=True)


class GradeSubjectIn(_Subject):
    yearly_periods = fields.Integer(strict=True, allow_none=True, load_default=None,
                                    validate=validate.Range(min=1, max=1000),
                                    metadata={"description": "số tiết/năm học: ≤ 35 → 2 regular assessments a term, "
                                                             "36–70 → 3, > 70 → 4"})
    assessment = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(ASSESSMENTS),
                               metadata={"description": "override; null: by the Circular's list of "
                                                        "comment-assessed subjects"})


class GradeSubjectOut(Schema):
    subject = fields.String(required=True)
    assessment = fields.String(required=True, validate=validate.OneOf(ASSESSMENTS))
    yearly_periods = fields.Integer(allow_none=True)
    regular_slots = fields.Integer(required=True, metadata={"description": "highest regular slot accepted"})
    regular_required = fields.Integer(required=True, metadata={"description": "regular scores an average needs"})


class GradeSubjectList(Schema):
    items = fields.List(fields.Nested(GradeSubjectOut), required=True)


class GradeBookOut(GradeSubjectOut):
    class_id = Id(required=True)
    term_id = Id(required=True)
    published_at = UtcDateTime(allow_none=True)
    students = fields.List(fields.Nested(GradeBookStudent), required=True)


class GradeChangeOut(Schema):
    student_id = Id(required=True)
    kind = fields.String(required=True)
    slot = fields.Integer(allow_none=True)
    old = fields.String(allow_none=True, metadata={"description": "null: the score was new"})
    new = fields.String(required=True)
    changed_by = Id(allow_none=True)
    changed_by_name = fields.String(allow_none=True)
    changed_at = UtcDateTime(required=True)


class GradeChangeList(Schema):
    items = fields.List(fields.Nested(GradeChangeOut), required=True)


# --- reading a student's grades ---------------------------------------------------------------
class StudentGradesArgs(Schema):
    term_id = Id()
    year_id = Id()

    @validates_schema
    def _one(self, data, **kwargs):
        if ("term_id" in data) == ("year_id" in data):
            raise ValidationError("Give term_id or year_id.", field_name="term_id")


class SubjectGradesOut(Schema):
    subject = fields.String(required=True)
    assessment = fields.String(required=True, validate=validate.OneOf(ASSESSMENTS))
    regular = fields.List(_score(), metadata={"description": "term: regular scores by slot"})
    midterm = _score(allow_none=True, metadata={"description": "term only"})
    final = _score(allow_none=True, metadata={"description": "term only"})
    term1 = _score(allow_none=True, metadata={"description": "year only: term I average"})
    term2 = _score(allow_none=True, metadata={"description": "year only: term II average"})
    average = _score(allow_none=True, metadata={
        "description": "term: (Σ regular + 2·midterm + 3·final) / (number of regular + 5); year: (term I + "
                       "2·term II) / 3; both half up to one decimal. Comment-assessed: Đ / CĐ. null until complete"})


class StudentGradesOut(Schema):
    student_id = Id(required=True)
    term_id = Id(metadata={"description": "with ?term_id="})
    year_id = Id(metadata={"description": "with ?year_id="})
    term_ids = fields.List(Id(), metadata={"description": "with ?year_id=: term I and term II"})
    subjects = fields.List(fields.Nested(SubjectGradesOut), required=True,
                           metadata={"description": "guardians: published subjects only"})
    result = fields.String(allow_none=True, validate=validate.OneOf(LEVELS), metadata={
        "description": "the learning result (Circular 22, Article 9) once every subject has its average"})


# --- remarks ----------------------------------------------------------------------------------
class RemarkIn(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    date = fields.Date(metadata={"description": "the day it is about; default today (school's timezone)"})


class RemarkOut(Schema):
    id = Id(required=True)
    student_id = Id(required=True)
    author_id = Id(allow_none=True)
    author_name = fields.String(allow_none=True)
    body = fields.String(required=True)
    date = fields.Date(required=True)
    created_at = UtcDateTime(required=True)


RemarkPage = page_schema(RemarkOut, "RemarkPage")


class RemarkListArgs(ListArgs):
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")


# --- the term report --------------------------------------------------------------------------
class ReportArgs(Schema):
    term_id = Id(required=True)


class ReportTerm(Schema):
    id = Id(required=True)
    school_year_id = Id(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class ReportSubject(Schema):
    subject = fields.String(required=True)
    assessment = fields.String(required=True)
    average = _score(allow_none=True)


class AttendanceTotals(Schema):
    present = fields.Integer(required=True)
    late = fields.Integer(required=True)
    absent_excused = fields.Integer(required=True)
    absent_unexcused = fields.Integer(required=True)
    available = fields.Boolean(required=True, metadata={"description": "false: attendance is not recorded yet"})


class ReportOut(Schema):
    student_id = Id(required=True)
    student_name = fields.String(required=True)
    class_id = Id(allow_none=True)
    term = fields.Nested(ReportTerm, required=True)
    subjects = fields.List(fields.Nested(ReportSubject), required=True)
    result = fields.String(allow_none=True, validate=validate.OneOf(LEVELS))
    attendance = fields.Nested(AttendanceTotals, required=True)
    remarks = fields.List(fields.Nested(RemarkOut), required=True)
