"""OneRoster 1.1 CSV vocabulary the importer knows, and its limits."""
from __future__ import annotations

import re

#: file name → (required file?, columns that must be in its header). A file the manifest declares
#: ``absent`` (or a delta bundle leaves out) is not required.
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
#: OneRoster 1.1 CSV files Lienlac has no use for (gradebook and resources): a warning, then skipped.
UNUSED_FILES = ("categories.csv", "classResources.csv", "courseResources.csv", "lineItems.csv", "resources.csv",
                "results.csv")

#: every OneRoster 1.1 column of the files Lienlac reads → used (True) or ignored with a warning (False)
COLUMNS: dict[str, dict[str, bool]] = {
    "manifest.csv": {"propertyName": True, "value": True},
    "orgs.csv": {"sourcedId": True, "status": True, "dateLastModified": True, "name": True, "type": True,
                 "identifier": True, "parentSourcedId": True},
    "academicSessions.csv": {"sourcedId": True, "status": True, "dateLastModified": True, "title": True,
                             "type": True, "startDate": True, "endDate": True, "parentSourcedId": True,
                             "schoolYear": True},
    "courses.csv": {"sourcedId": True, "status": True, "dateLastModified": True, "schoolYearSourcedId": True,
                    "title": True, "courseCode": False, "grades": True, "orgSourcedId": True, "subjects": False,
                    "subjectCodes": False},
    "classes.csv": {"sourcedId": True, "status": True, "dateLastModified": True, "title": True, "grades": True,
                    "courseSourcedId": True, "classCode": False, "classType": False, "location": False,
                    "schoolSourcedId": True, "termSourcedIds": True, "subjects": True, "subjectCodes": False,
                    "periods": False},
    "users.csv": {"sourcedId": True, "status": True, "dateLastModified": True, "enabledUser": True,
                  "orgSourcedIds": True, "role": True, "username": False, "userIds": False, "givenName": True,
                  "familyName": True, "middleName": True, "identifier": True, "email": True, "sms": True,
                  "phone": True, "agentSourcedIds": True, "grades": False, "password": False},
    "enrollments.csv": {"sourcedId": True, "classSourcedId": True, "schoolSourcedId": True, "userSourcedId": True,
                        "role": True, "status": True, "dateLastModified": True, "primary": True,
                        "beginDate": True, "endDate": True},
    "demographics.csv": {"sourcedId": True, "status": True, "dateLastModified": True, "birthDate": True,
                         "sex": True, "americanIndianOrAlaskaNative": False, "asian": False,
                         "blackOrAfricanAmerican": False, "nativeHawaiianOrOtherPacificIslander": False,
                         "white": False, "demographicRaceTwoOrMoreRaces": False,
                         "hispanicOrLatinoEthnicity": False, "countryOfBirthCode": False,
                         "stateOfBirthAbbreviation": False, "cityOfBirth": False,
                         "publicSchoolResidenceStatus": False},
}
#: why an ignored column is not used (shown in its warning)
IGNORED_WHY = {"password": "passwords are never imported: people sign in by phone (OTP)",
               "username": "people sign in by phone, not by user name"}
MANIFEST_MODES = {"absent", "bulk", "delta"}
ORG_TYPES = {"department", "school", "district", "local", "state", "national"}
SESSION_TYPES = {"schoolyear": "schoolYear", "term": "term", "semester": "semester",
                 "gradingperiod": "gradingPeriod"}
STUDENT_ROLES = {"student"}
#: aide (a teaching assistant) and proctor (an exam invigilator) are school staff: the teacher role at the
#: school; an aide enrolled in a class is one of its teachers (never the homeroom one), a proctor is not.
STAFF_ROLE_MAP = {"teacher": "teacher", "aide": "teacher", "proctor": "teacher", "administrator": "admin"}
GUARDIAN_ROLES = {"parent", "guardian", "relative"}
USER_ROLES = STUDENT_ROLES | set(STAFF_ROLE_MAP) | GUARDIAN_ROLES
ENROLLMENT_ROLES = {"student", "teacher", "aide", "administrator", "proctor"}
SEXES = {"male", "female", "other", "unspecified"}
KINDS = ("schools", "school_years", "terms", "classes", "staff", "staff_roles", "class_teachers",
         "students", "guardians", "guardian_links")
MAX_WARNINGS = 2000

MAX_PROBLEMS = 500
MAX_FILE_BYTES = 100 * 1024 * 1024
CHUNK = 500  # rows per INSERT / IN (...) list
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ADVISORY_LOCK = 7226002


