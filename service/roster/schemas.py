"""Marshmallow schemas of the roster administration API (``service.roster.api``)."""
from __future__ import annotations

from marshmallow import Schema, fields, pre_load, validate

from .models import STAFF_ROLES
from ..schemas import Id, ListArgs, UtcDateTime, page_schema


class _Stripped(Schema):
    """Leading and trailing spaces of text fields are dropped before validation."""

    @pre_load
    def _strip(self, data, **kwargs):
        if isinstance(data, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return data


def _name(**kw):
    return fields.String(validate=validate.Length(min=1, max=200), **kw)


# --- schools, years, terms ----------------------------------------------------------------
class SchoolOut(Schema):
    id = Id(required=True)
    name = fields.String(required=True)
    code = fields.String(allow_none=True)
    timezone = fields.String(required=True, metadata={"description": "IANA name; dates are in this zone"})


class TermIn(_Stripped):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class TermOut(Schema):
    id = Id(required=True)
    school_year_id = Id(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class YearIn(TermIn):
    pass


class YearOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    terms = fields.List(fields.Nested(TermOut), required=True)


YearPage = page_schema(YearOut, "YearPage")


# --- classes --------------------------------------------------------------------------------
class ClassIn(_Stripped):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    grade = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=12))
    homeroom_teacher_id = Id(allow_none=True, metadata={"description": "a teacher of the school"})
    school_year_id = Id(allow_none=True)


class ClassPatch(ClassIn):
    name = fields.String(validate=validate.Length(min=1, max=100))


class ClassTeacherOut(Schema):
    teacher_id = Id(required=True)
    name = fields.String(required=True)
    subject = fields.String(required=True)


class ClassOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    school_year_id = Id(allow_none=True)
    name = fields.String(required=True)
    grade = fields.Integer(allow_none=True)
    homeroom_teacher_id = Id(allow_none=True)
    homeroom_teacher_name = fields.String(allow_none=True)
    teachers = fields.List(fields.Nested(ClassTeacherOut), required=True,
                           metadata={"description": "subject teachers (the homeroom teacher is apart)"})
    student_count = fields.Integer(required=True)


ClassPage = page_schema(ClassOut, "ClassPage")


class ClassListArgs(ListArgs):
    grade = fields.Integer(validate=validate.Range(min=1, max=12))
    school_year_id = Id()


class ClassTeacherIn(_Stripped):
    teacher_id = Id(required=True)
    subject = fields.String(load_default="", validate=validate.Length(max=100),
                            metadata={"description": "e.g. Toán, Ngữ văn"})


class ClassTeacherDeleteArgs(Schema):
    subject = fields.String(validate=validate.Length(max=100),
                            metadata={"description": "only this subject (default: every subject of theirs)"})


# --- staff ----------------------------------------------------------------------------------
class StaffIn(_Stripped):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32))
    name = _name(required=True)
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


class StaffOut(Schema):
    user_id = Id(required=True)
    school_id = Id(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


StaffPage = page_schema(StaffOut, "StaffPage")


class StaffListArgs(ListArgs):
    role = fields.String(validate=validate.OneOf(STAFF_ROLES))


class StaffDeleteArgs(Schema):
    role = fields.String(validate=validate.OneOf(STAFF_ROLES),
                         metadata={"description": "only this role (default: every role in the school)"})


# --- students and guardians -------------------------------------------------------------------
class StudentIn(_Stripped):
    name = _name(required=True)
    class_id = Id(allow_none=True)
    national_id = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9A-Za-z]{1,32}$"),
                                metadata={"description": "mã định danh học sinh (unique)"})
    birth_date = fields.Date(allow_none=True)


class StudentPatch(StudentIn):
    name = _name()


class StudentOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    class_id = Id(allow_none=True, attribute="school_class_id")
    name = fields.String(required=True)
    birth_date = fields.Date(allow_none=True)
    national_id = fields.String(allow_none=True, metadata={
        "description": "shown to the school admin, the class's teachers and the student's guardians"})
    guardian_ids = fields.List(Id(), required=True)


StudentPage = page_schema(StudentOut, "StudentPage")


class StudentListArgs(ListArgs):
    class_id = Id()


class GuardianIn(_Stripped):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32))
    name = _name(required=True)
    relationship = fields.String(load_default="guardian", validate=validate.Length(min=1, max=30),
                                 metadata={"description": "mother, father, grandparent, guardian, ..."})


class GuardianOut(Schema):
    user_id = Id(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True, metadata={
        "description": "null when a guardian looks at another guardian of the child"})
    relationship = fields.String(required=True)


GuardianPage = page_schema(GuardianOut, "GuardianPage")


class InviteIn(_Stripped):
    relationship = fields.String(load_default="guardian", validate=validate.Length(min=1, max=30))


class InviteOut(Schema):
    code = fields.String(required=True, metadata={"description": "shown once: only its hash is stored"})
    expires_at = UtcDateTime(required=True)
    student_id = Id(required=True)
    relationship = fields.String(required=True)


class GuardianPhoneIn(_Stripped):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32), metadata={
        "description": "the phone of a guardian imported without one; they then sign in with it by OTP"})


class GuardianInviteOut(Schema):
    student_id = Id(required=True)
    student_name = fields.String(required=True)
    guardian_id = Id(required=True)
    guardian_name = fields.String(required=True)
    guardian_email = fields.String(allow_none=True, required=True)
    relationship = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "shown once: the guardian signs in with "
                                                                  "their phone and claims the child with it"})
    expires_at = UtcDateTime(required=True)


class GuardianInviteList(Schema):
    items = fields.List(fields.Nested(GuardianInviteOut), required=True)
