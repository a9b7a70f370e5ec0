"""HTTP (``/roster-imports``): a school admin uploads a OneRoster 1.1 CSV zip; a background job imports it."""
from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from ...accounts.logic import login_required
from ...schemas import ErrorEnvelope, Id, UtcDateTime
from . import job as oneroster
from .vocab import KINDS

blp = Blueprint("roster_import", __name__, url_prefix="", description="OneRoster roster import (school admins)")
blueprints = (blp,)

STATUSES = ["queued", "running", "done", "failed"]


class RosterUploadIn(Schema):
    file = Upload(required=True, metadata={"description": "a zip of OneRoster 1.1 CSV files: orgs.csv, "
                                                          "academicSessions.csv, classes.csv, users.csv, "
                                                          "enrollments.csv; courses.csv, demographics.csv, "
                                                          "manifest.csv optional (a delta manifest may leave "
                                                          "files out); other 1.1 files are skipped"})


class RosterUploadArgs(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={
        "description": "true: check and plan only (the import's counts say what would be created, updated, "
                       "unchanged or removed, with its warnings); nothing is written"})


class RosterImportAccepted(Schema):
    id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class RosterProblemOut(Schema):
    file = fields.String(allow_none=True, required=True)
    line = fields.Integer(allow_none=True, required=True, metadata={"description": "1 is the header row"})
    column = fields.String(allow_none=True, required=True)
    message = fields.String(required=True)


class RosterCountsOut(Schema):
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    removed = fields.Integer(required=True)


class RosterImportOut(Schema):
    id = Id(required=True)
    school_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    file_name = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    started_at = UtcDateTime(allow_none=True, required=True)
    finished_at = UtcDateTime(allow_none=True, required=True)
    counts = fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)),
                         values=fields.Nested(RosterCountsOut), allow_none=True, required=True,
                         metadata={"description": "per kind (schools, school_years, terms, classes, staff, "
                                                  "staff_roles, class_teachers, students, guardians, "
                                                  "guardian_links); null until done"})
    errors = fields.List(fields.Nested(RosterProblemOut), required=True,
                         metadata={"description": "why a failed import imported nothing (every problem: a broken "
                                                  "reference, a duplicate sourcedId, a malformed value)"})
    warnings = fields.List(fields.Nested(RosterProblemOut), required=True,
                           metadata={"description": "what was imported without the part Lienlac cannot use "
                                                    "(file, line, column), e.g. a guardian without a phone and "
                                                    "how to let them sign in"})
    dry_run = fields.Boolean(required=True, metadata={"description": "a plan only: nothing was written"})


@blp.route("/schools/<int:school_id>/roster-imports", methods=["POST"])
@blp.arguments(RosterUploadIn, location="files")
@blp.arguments(RosterUploadArgs, location="query")
@blp.response(202, RosterImportAccepted)
@blp.alt_response(403, schema=ErrorEnvelope, description="the caller is not a school admin")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such school (or not the caller's)")
@blp.alt_response(422, schema=ErrorEnvelope, description="not a zip, or required files missing "
                                                         "(error.fields.rows lists them)")
@login_required
def upload_roster(files, args, school_id):
    """Upload a OneRoster 1.1 CSV zip; it is imported (or, with ?dry_run=true, planned) in the background: poll
    the import's status for its counts, warnings and errors."""
    upload = files["file"]
    run = oneroster.upload(g.user, school_id, upload.filename or "", upload.read(), dry_run=args["dry_run"])
    return {"id": run.id, "status": run.status}


@blp.route("/roster-imports/<int:import_id>")
@blp.response(200, RosterImportOut)
@blp.alt_response(403, schema=ErrorEnvelope, description="the caller is no school's admin")
@blp.alt_response(404, schema=ErrorEnvelope, description="no such import (or not the caller's school)")
@login_required
def get_roster_import(import_id):
    """A roster import's status, counts (when done) and errors (when failed)."""
    run = oneroster.get_upload(g.user, import_id)
    return oneroster.upload_view(run)
