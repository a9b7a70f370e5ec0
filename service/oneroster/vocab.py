"""OneRoster 1.1 CSV vocabulary the importer knows, and its limits."""
from __future__ import annotations

import re

#: file name → (required file?, columns that must be in its header)
FILES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "manifest.csv": (False, ("propertyName", "value")),
    "orgs.csv": (True, ("sourcedId", "name", "type")),
    "academicSessions.csv": (True, ("sourcedId", "title", "type", "startDate", "endDate")),
    "courses.csv": (False, ("sourcedId", "title")),
    "classes.csv": (True, ("sourcedId", "title", "courseSourcedId", "schoolSourcedId")),
    "users.csv": (True, ("sourcedId", "orgSourcedIds", "role", "givenName", "familyName")),
    "enrollments.csv": (True, ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role")),
    "demographics.csv": (False, ("sourcedId",)),
}
ORG_TYPES = {"department", "school", "district", "local", "state", "national"}
SESSION_TYPES = {"schoolyear": "schoolYear", "term": "term", "semester": "semester",
                 "gradingperiod": "gradingPeriod"}
STUDENT_ROLES = {"student"}
STAFF_ROLE_MAP = {"teacher": "teacher", "aide": "teacher", "proctor": "teacher", "administrator": "admin"}
GUARDIAN_ROLES = {"parent", "guardian", "relative"}
USER_ROLES = STUDENT_ROLES | set(STAFF_ROLE_MAP) | GUARDIAN_ROLES
ENROLLMENT_ROLES = {"student", "teacher", "aide", "administrator", "proctor"}
SEXES = {"male", "female", "other", "unspecified"}
KINDS = ("schools", "school_years", "terms", "classes", "staff", "staff_roles", "class_teachers",
         "students", "guardians", "guardian_links")

MAX_PROBLEMS = 500
MAX_FILE_BYTES = 100 * 1024 * 1024
CHUNK = 500  # rows per INSERT / IN (...) list
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ADVISORY_LOCK = 7226002


