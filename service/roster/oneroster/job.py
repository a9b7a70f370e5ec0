"""Entry points: import_roster (CLI and jobs), the CLI's output, admin uploads as background jobs."""
from __future__ import annotations

import json
import logging
import time

from ... import jobs
from ...db import db, is_postgres, utcnow, write_transaction
from .. import policy
from ..models import RosterImport
from .plan import _resolve_school, build_plan
from .progress import NullProgress, RichProgress
from .read import Problems, RosterImportError, format_problem, read_files
from .validate import parse
from .vocab import _ADVISORY_LOCK
from .write import _Writer

log = logging.getLogger("lienlac.oneroster")

# --- entry points --------------------------------------------------------------------------
class _DryRun(Exception):
    """Raised inside the import's transaction so that a dry run writes nothing."""


def import_roster(source, *, school_ref: str | None = None, school_id: int | None = None,
                  progress=None, dry_run: bool = False) -> dict:
    """Import a OneRoster 1.1 CSV set (folder path, zip path or zip bytes) for one school.

    ``school_ref``: the school org's sourcedId, or our school id as a string (the CLI's --school);
    ``school_id``: our school id (the admin endpoint). Returns ``{"school_id", "school_name", "dry_run",
    "counts": {kind: {created, updated, unchanged, removed}}, "warnings": [{file, line, column, message}],
    "seconds"}``. Raises ``RosterImportError`` (nothing written) when the bundle is inconsistent.
    ``dry_run``: the same checks and counts (the plan), in a transaction rolled back: nothing is written.
    """
    if (school_ref is None) == (school_id is None):
        raise ValueError("give school_ref or school_id")
    progress = progress or NullProgress()
    started = time.monotonic()
    problems = Problems()
    progress.start("Reading files", 1)
    files = read_files(source, problems)
    progress.advance()
    problems.raise_if_any()
    parsed = parse(files, problems, progress)
    problems.raise_if_any()
    result: dict = {}
    try:
        with write_transaction():
            if is_postgres():  # one import at a time: they upsert the same users
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            school, org = _resolve_school(parsed, school_ref, school_id, problems)
            problems.raise_if_any()
            plan = build_plan(parsed, org, problems)
            writer = _Writer(plan, parsed, school, problems, progress)
            writer.check()
            problems.raise_if_any()
            result["counts"] = writer.write()
            result["school_id"] = school.id if school is not None else None
            result["school_name"] = writer.school.name
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    seconds = round(time.monotonic() - started, 3)
    log.info("roster imported", extra={"event": "oneroster.import", "ms": round(seconds * 1000),
                                       "dry_run": dry_run})
    if not dry_run:
        result["school_id"] = writer.school.id
    return {"school_id": result["school_id"], "school_name": result["school_name"], "dry_run": dry_run,
            "counts": result["counts"], "warnings": problems.warning_list(), "seconds": seconds}


def import_path_cli(path, school, dry_run: bool = False) -> None:
    """``lienlac import-roster PATH --school S [--dry-run]``: progress on stderr, summary and warnings on stdout."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    err = Console(stderr=True)
    try:
        with RichProgress(err) as progress:
            result = import_roster(path, school_ref=str(school), progress=progress, dry_run=dry_run)
    except RosterImportError as exc:
        err.print(f"[bold red]Nothing was imported[/]: {len(exc.errors)} problem(s) in {path}", highlight=False)
        for problem in exc.errors:
            err.print(format_problem(problem), markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    out = Console(highlight=False)
    where = f"school id {result['school_id']}" if result["school_id"] is not None else "a new school"
    title = f"{result['school_name']} ({where})" + (" — dry run: the plan, nothing written" if dry_run else "")
    table = RichTable("kind", "created", "updated", "unchanged", "removed", box=box.SIMPLE_HEAD, title=title)
    for kind, c in result["counts"].items():
        table.add_row(kind, *(str(c[k]) for k in ("created", "updated", "unchanged", "removed")))
    out.print(table)
    if result["warnings"]:
        out.print(f"{len(result['warnings'])} warning(s): imported without what Lienlac cannot use")
        for warning in result["warnings"]:
            out.print(format_problem(warning), markup=False, soft_wrap=True)
    out.print("Dry run: nothing was written." if dry_run else f"Imported in {result['seconds']:.2f} s.")


# --- admin uploads as background jobs --------------------------------------------------------
def create_upload(school_id: int, user_id: int | None, file_name: str, payload: bytes,
                  dry_run: bool = False) -> RosterImport:
    """Store an uploaded zip and enqueue its import (or its dry run); obviously wrong uploads answer 422 at once."""
    problems = Problems()
    read_files(payload, problems)
    problems.raise_if_any()
    run = RosterImport.create(school=school_id, created_by=user_id, status="queued",
                              file_name=(file_name or "")[:200], payload=payload, dry_run=bool(dry_run))
    jobs.enqueue(run_roster_import, run.id, job_id=f"roster-import-{run.id}", queue="default",
                 retry=(2, [10, 60]), timeout=1800)
    return RosterImport.get_by_id(run.id)


def upload(user, school_id: int, file_name: str, payload: bytes, dry_run: bool = False) -> RosterImport:
    """An admin's upload (acting user first): the policy lets the school's admin only, then ``create_upload``."""
    policy.may_upload_roster(user, school_id)
    return create_upload(school_id, user.id, file_name, payload, dry_run=dry_run)


def get_upload(user, import_id: int) -> RosterImport:
    """An import the caller may read (``roster.policy.roster_import_for``): an admin of its school."""
    return policy.roster_import_for(user, import_id)


def upload_view(run: RosterImport) -> dict:
    return {"id": run.id, "school_id": run.school_id, "status": run.status, "file_name": run.file_name,
            "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
            "dry_run": run.dry_run, "counts": json.loads(run.counts) if run.counts else None,
            "errors": json.loads(run.errors) if run.errors else [],
            "warnings": json.loads(run.warnings) if run.warnings else []}


@jobs.job
def run_roster_import(import_id: int) -> None:
    """Import one upload. Idempotent: a finished import is not run again; a crashed one reruns whole."""
    run = RosterImport.get_or_none(RosterImport.id == import_id)
    if run is None or run.payload is None or run.status == "done":
        return
    RosterImport.update(status="running", started_at=utcnow()).where(RosterImport.id == import_id).execute()
    try:
        result = import_roster(bytes(run.payload), school_id=run.school_id, dry_run=run.dry_run)
    except RosterImportError as exc:
        RosterImport.update(status="failed", errors=json.dumps(exc.errors, ensure_ascii=False), payload=None,
                            finished_at=utcnow()).where(RosterImport.id == import_id).execute()
        return
    except Exception:
        RosterImport.update(status="failed", finished_at=utcnow(), errors=json.dumps(
            [{"file": None, "line": None, "column": None, "message": "internal error; the import will be retried"}])
        ).where(RosterImport.id == import_id).execute()
        raise
    RosterImport.update(status="done", counts=json.dumps(result["counts"]), errors="[]", payload=None,
                        warnings=json.dumps(result["warnings"], ensure_ascii=False),
                        finished_at=utcnow()).where(RosterImport.id == import_id).execute()
