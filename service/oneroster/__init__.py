"""OneRoster 1.1 CSV import: a school's years, terms, classes, staff, students and guardians.

A set is a folder or a zip holding ``orgs.csv``, ``academicSessions.csv``, ``classes.csv``,
``users.csv``, ``enrollments.csv`` and optionally ``courses.csv``, ``demographics.csv`` and
``manifest.csv``. One school (an org of type ``school``) is imported per run.

The import works in two phases:

1. *Check*: every file is read and every row validated (columns, dates, statuses, references,
   phone numbers, duplicate sourcedIds), then checked against the database (a class or term of
   another school, a phone or national id owned by someone else). Every problem is collected
   with its file, line and column; if there is any, ``RosterImportError`` is raised and nothing
   is written.
2. *Write*: in one transaction, rows are upserted by ``sourcedId`` using bulk reads (dicts keyed
   by sourcedId) and ``insert_many`` in chunks. A row is only UPDATEd when one of its values
   differs, so importing the same files again changes nothing.

Mapping (OneRoster → Lienlac):

- ``orgs`` (type school) → ``School``; created when missing (the CLI is how operators create
  schools), or adopted by id (``--school 12`` / the admin endpoint) when it has no sourcedId yet.
- ``academicSessions`` ``schoolYear`` → ``SchoolYear``; ``term``/``semester`` → ``Term`` under the
  school year found through ``parentSourcedId`` (walking up) or the ``schoolYear`` column.
  ``gradingPeriod`` sessions are not stored.
- ``classes`` → ``SchoolClass``: name from ``title``, grade from ``grades`` (else the course's),
  school year from ``termSourcedIds`` (else the course's ``schoolYearSourcedId``). The homeroom
  teacher is the active teacher enrollment with ``primary=true``, else the first one; the other
  teacher enrollments become ``ClassTeacher`` rows whose subject is the class's ``subjects`` when
  it names exactly one, else the course title, else the subjects as written.
- ``users``: ``student`` → ``Student`` (name "familyName middleName givenName", national id from
  ``identifier``, birth date from ``demographics``, class from the student's first active
  enrollment); ``teacher``/``aide``/``proctor`` → ``User`` + ``StaffRole`` teacher,
  ``administrator`` → ``User`` + ``StaffRole`` admin; ``parent``/``guardian``/``relative`` → ``User``
  (a valid phone is required) linked to students through ``agentSourcedIds`` on either side.
  Relationship: ``parent`` → ``mother``/``father`` when demographics gives the sex, else
  ``guardian``; ``guardian`` → ``guardian``; ``relative`` → ``relative``. A generic ``guardian``
  never overwrites a more specific relationship already stored (e.g. from an invite code).
- Users are found by sourcedId, else by phone: an account created by OTP login is adopted (its
  sourcedId set). An account that already carries another sourcedId (the same parent exported
  by another school's system) is shared: it is linked, its name filled only if empty.
  Within one file a phone may appear on one staff row and one parent row (a teacher who is a
  parent at the school): both are the same account. Any other repeated phone is an error.
- ``status=tobedeleted``: nothing is created for the row; an existing student leaves the class
  (user or enrollment), a staff member loses their roles and class assignments at this school,
  a guardian loses the links to this school's students. Classes, sessions and orgs marked
  tobedeleted are left in place (deleting them would erase contact-book history).
- Rows missing from a bulk file are not deleted. Passwords in ``users.csv`` are never imported.
"""
from .job import (create_upload, get_upload, import_path_cli, import_roster, run_roster_import,
                  upload_view)
from .plan import Plan, build_plan
from .progress import NullProgress, RichProgress
from .read import Problems, RosterImportError, format_problem, parse_table, read_files
from .validate import Parsed, parse
from .vocab import FILES, KINDS

__all__ = ["FILES", "KINDS", "NullProgress", "Parsed", "Plan", "Problems", "RichProgress", "RosterImportError",
           "build_plan", "create_upload", "format_problem", "get_upload", "import_path_cli", "import_roster",
           "parse", "parse_table", "read_files", "run_roster_import", "upload_view"]
