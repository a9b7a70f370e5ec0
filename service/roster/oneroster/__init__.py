"""OneRoster 1.1 CSV import: a school's years, terms, classes, staff, students and guardians.

A bundle is a folder or a zip of OneRoster 1.1 CSV files (``manifest.csv``, ``orgs.csv``,
``academicSessions.csv``, ``courses.csv``, ``classes.csv``, ``users.csv``, ``enrollments.csv``,
``demographics.csv``; the gradebook and resource files are skipped with a warning). One school (an
org of type ``school``) is imported per run. The package goes by stage: ``read`` (files, CSV with
BOM, CRLF and quoted fields), ``validate`` (typed rows, references across files), ``plan`` (what it
means for one school), ``write`` (checks against the database, then bulk upserts), ``job`` (entry
points: CLI, uploads as background jobs), ``vocab`` (the 1.1 vocabulary: every column used or not).

Three kinds of findings, each with file, line and column:

- *problems* refuse the whole bundle (nothing is written), all of them listed: a broken reference,
  a duplicate sourcedId, a malformed value (date, status, boolean), a row naming another school's
  student or an account this school does not manage;
- *warnings*: what Lienlac cannot use is left out and the rest imported (a phone it cannot text, a
  grade outside 1..12, a column or file it has no place for, a proctor's class enrollment, a
  district administrator, a relative linked to no student, a guardian without a phone);
- ``dry_run`` runs everything in a transaction that is rolled back: the counts are the plan.

Mapping (OneRoster → Lienlac):

- ``orgs`` (type school) → ``School``; created when missing (the CLI is how operators create
  schools), or adopted by id (``--school 12`` / the admin endpoint) when it has no sourcedId yet.
- ``academicSessions`` ``schoolYear`` → ``SchoolYear``; ``term``/``semester`` → ``Term`` under the
  school year found through ``parentSourcedId`` (walking up), else a schoolYear session whose
  ``schoolYear`` value matches, else one ``SchoolYear`` per ``schoolYear`` value, dated by its
  sessions' earliest start and latest end. ``gradingPeriod`` sessions are not stored.
- ``classes`` → ``SchoolClass``: name from ``title``, grade from ``grades`` (else the course's),
  school year from ``termSourcedIds`` (else the course's ``schoolYearSourcedId``). The homeroom
  teacher is the active ``teacher`` enrollment with ``primary=true``, else the first one; the other
  teacher and ``aide`` enrollments become ``ClassTeacher`` rows whose subject is the class's
  ``subjects`` when it names exactly one, else the course title, else the subjects as written.
- ``users``: ``student`` → ``Student`` (name "familyName middleName givenName", national id from
  ``identifier``, birth date from ``demographics``, class from the first active enrollment);
  ``teacher``/``aide``/``proctor`` → ``User`` + ``StaffRole`` teacher, ``administrator`` of the school
  → ``User`` + ``StaffRole`` admin; ``parent``/``guardian``/``relative`` → ``User`` linked to students
  through ``agentSourcedIds`` on either side (a relative linked to nobody is not imported). A
  guardian without a phone is imported and linked; invite codes (``roster-invites``) or a phone
  added by an admin let them sign in. Relationship: ``parent`` → ``mother``/``father`` when
  demographics gives the sex, else ``guardian``; ``guardian`` → ``guardian``; ``relative`` →
  ``relative``. A generic ``guardian`` never overwrites a more specific stored relationship.
- Users are found by sourcedId, else by phone. An account whose every role and child is in this
  school is ours: an OTP account is adopted (its sourcedId set) and the roster is the source of
  truth for it. An account with a role or child in another school is only linked: nothing of it
  changes, and a sourcedId it carries is never adopted through the sourcedId alone. A student of
  another school is refused. Within one file a phone may appear on one staff row and one parent
  row (a teacher who is a parent here: one account); any other repeated phone is a warning and
  the later person is imported without it.
- ``status=tobedeleted`` (bulk or delta): nothing is created for the row; a student leaves the
  class (user or enrollment), a staff member loses their roles and class assignments at this
  school, a guardian loses the links to this school's students. Users and their history stay;
  classes, sessions and orgs marked tobedeleted are left in place.
- A delta (``file.X=delta`` in the manifest) may leave files out and name rows imported before:
  those references are checked against this school's data only.
- Rows missing from a bulk file are not deleted. Passwords in ``users.csv`` are never imported.
"""
from .job import (create_upload, get_upload, import_path_cli, import_roster, run_roster_import, upload,
                  upload_view)
from .plan import Plan, build_plan
from .progress import NullProgress, RichProgress
from .read import Problems, RosterImportError, format_problem, parse_table, read_files
from .validate import Parsed, parse
from .vocab import FILES, KINDS

__all__ = ["FILES", "KINDS", "NullProgress", "Parsed", "Plan", "Problems", "RichProgress", "RosterImportError",
           "build_plan", "create_upload", "format_problem", "get_upload", "import_path_cli", "import_roster",
           "parse", "parse_table", "read_files", "run_roster_import", "upload", "upload_view"]
