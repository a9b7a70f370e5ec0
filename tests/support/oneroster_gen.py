"""A generator of valid OneRoster 1.1 CSV sets (a Vietnamese high school), with optional bad rows.

``write_roster(folder)`` writes the acceptance set by default: 1 school (inside a district), one
school year with two semesters, one course per grade, 40 classes, 60 teachers (40 homeroom
teachers, 20 subject teachers each teaching two classes), 2 administrators, 1,600 students
(40 per class) and 2,400 parents (the first 800 students have a mother and a father, the others a
mother), with Vietnamese names (diacritics) and phones like 09xxxxxxxx. ``bad=`` injects one bad
row (see ``BAD_KINDS``); the returned ``RosterSet.expected`` names the file, line and column
the importer must report.
"""
from __future__ import annotations

import csv
import dataclasses
import random
import zipfile
from pathlib import Path

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
          "Ngô", "Dương", "Lý"]
MIDDLE_M = ["Văn", "Đức", "Minh", "Quốc", "Hữu", "Gia", "Thành", "Công"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Mỹ", "Khánh", "Bảo", "Diệu"]
GIVEN_M = ["An", "Bình", "Dũng", "Hải", "Hùng", "Khoa", "Long", "Nam", "Phúc", "Quân", "Sơn", "Tuấn", "Việt",
           "Đạt", "Hiếu", "Trí"]
GIVEN_F = ["Chi", "Giang", "Hà", "Hạnh", "Hoa", "Lan", "Linh", "Ngọc", "Nhung", "Thảo", "Trang", "Vy", "Yến",
           "Ánh", "Hương", "Mai"]
SUBJECTS = ["Tiếng Anh", "Tin học", "Giáo dục thể chất", "Âm nhạc"]

HEADERS = {
    "manifest.csv": ["propertyName", "value"],
    "orgs.csv": ["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"],
    "academicSessions.csv": ["sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
                             "parentSourcedId", "schoolYear"],
    "courses.csv": ["sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode",
                    "grades", "orgSourcedId", "subjects", "subjectCodes"],
    "classes.csv": ["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
                    "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes",
                    "periods"],
    "users.csv": ["sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username",
                  "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
                  "agentSourcedIds", "grades", "password"],
    "enrollments.csv": ["sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "status",
                        "dateLastModified", "primary", "beginDate", "endDate"],
    "demographics.csv": ["sourcedId", "status", "dateLastModified", "birthDate", "sex",
                         "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
                         "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
                         "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation",
                         "cityOfBirth", "publicSchoolResidenceStatus"],
}

#: bad row kinds → (file, column) the importer must name
BAD_KINDS = {
    "missing_column": ("users.csv", "familyName"),
    "bad_date": ("academicSessions.csv", "endDate"),
    "unknown_reference": ("enrollments.csv", "userSourcedId"),
    "duplicate_sourced_id": ("classes.csv", "sourcedId"),
    "bad_status": ("users.csv", "status"),
}

#: kinds of odd rows imported with a warning naming file, line and column
WARNING_KINDS = {"bad_phone": ("users.csv", "phone")}

SCHOOL_SID = "org-thpt-kim-lien"
DISTRICT_SID = "org-sgd-ha-noi"


@dataclasses.dataclass
class RosterSet:
    folder: Path
    school_sourced_id: str
    counts: dict
    expected: dict | None  # {"file", "line", "column"} of the injected bad row
    tables: dict  # file name → list of row dicts (as written)

    def zip(self, path: Path | None = None) -> Path:
        path = Path(path or self.folder.with_suffix(".zip"))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(self.folder.glob("*.csv")):
                archive.write(file, f"oneroster/{file.name}")
        return path

    def phones(self, role: str = "parent") -> list[str]:
        return [u["phone"] for u in self.tables["users.csv"] if u["role"] == role]


def _name(rng: random.Random, female: bool) -> tuple[str, str, str]:
    return (rng.choice(FAMILY), rng.choice(MIDDLE_F if female else MIDDLE_M),
            rng.choice(GIVEN_F if female else GIVEN_M))


def write_roster(folder, *, classes: int = 40, students: int = 1600, guardians: int = 2400, teachers: int = 60,
                 admins: int = 2, seed: int = 7, bad: str | None = None, with_demographics: bool = True,
                 with_manifest: bool = True) -> RosterSet:
    """Write a OneRoster 1.1 CSV set into ``folder`` and describe it."""
    if not students <= guardians <= 2 * students:
        raise ValueError("every student has one or two guardians")
    if teachers < classes:
        raise ValueError("every class needs a homeroom teacher")
    if bad is not None and bad not in BAD_KINDS and bad not in WARNING_KINDS:
        raise ValueError(f"bad is one of {sorted(BAD_KINDS)}")
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = "2026-08-20T08:00:00.000Z"
    # 090..098 followed by 7 digits: valid Vietnamese mobile numbers (some 099 ones are not)
    phone_numbers = iter(rng.sample(range(90_000_000), teachers + admins + guardians))

    def phone() -> str:
        return f"09{next(phone_numbers):08d}"

    t: dict[str, list[dict]] = {name: [] for name in HEADERS}
    t["manifest.csv"] = [{"propertyName": k, "value": v} for k, v in [
        ("manifest.version", "1.0"), ("oneroster.version", "1.1"), ("file.academicSessions", "bulk"),
        ("file.categories", "absent"), ("file.classes", "bulk"), ("file.classResources", "absent"),
        ("file.courses", "bulk"), ("file.courseResources", "absent"),
        ("file.demographics", "bulk" if with_demographics else "absent"), ("file.enrollments", "bulk"),
        ("file.lineItems", "absent"), ("file.orgs", "bulk"), ("file.resources", "absent"),
        ("file.results", "absent"), ("file.users", "bulk"), ("source.systemName", "lienlac-test-generator")]]
    t["orgs.csv"] = [
        {"sourcedId": DISTRICT_SID, "name": "Sở Giáo dục và Đào tạo Hà Nội", "type": "district", "identifier": "SGDHN"},
        {"sourcedId": SCHOOL_SID, "status": "active", "dateLastModified": stamp,
         "name": "Trường THPT Kim Liên", "type": "school", "identifier": "THPT-KL", "parentSourcedId": DISTRICT_SID},
    ]
    t["academicSessions.csv"] = [
        {"sourcedId": "as-2026", "title": "Năm học 2026-2027", "type": "schoolYear", "startDate": "2026-09-05",
         "endDate": "2027-05-31", "schoolYear": "2027"},
        {"sourcedId": "as-2026-hk1", "title": "Học kỳ I", "type": "semester", "startDate": "2026-09-05",
         "endDate": "2027-01-15", "parentSourcedId": "as-2026", "schoolYear": "2027"},
        {"sourcedId": "as-2026-hk2", "title": "Học kỳ II", "type": "semester", "startDate": "2027-01-18",
         "endDate": "2027-05-31", "parentSourcedId": "as-2026", "schoolYear": "2027"},
    ]
    grades = [10, 11, 12]
    t["courses.csv"] = [{"sourcedId": f"course-{g}", "schoolYearSourcedId": "as-2026", "title": f"Khối {g}",
                         "courseCode": f"K{g}", "grades": str(g), "orgSourcedId": SCHOOL_SID} for g in grades]

    # staff
    staff_ids = []
    for i in range(teachers):
        female = rng.random() < 0.7
        fam, mid, giv = _name(rng, female)
        sid = f"u-gv-{i + 1:03d}"
        staff_ids.append(sid)
        t["users.csv"].append({"sourcedId": sid, "enabledUser": "true", "orgSourcedIds": SCHOOL_SID,
                               "role": "teacher", "username": f"gv{i + 1:03d}", "givenName": giv,
                               "familyName": fam, "middleName": mid, "email": f"gv{i + 1:03d}@kimlien.edu.vn",
                               "phone": phone()})
        if with_demographics:
            t["demographics.csv"].append({"sourcedId": sid, "sex": "female" if female else "male"})
    for i in range(admins):
        fam, mid, giv = _name(rng, False)
        t["users.csv"].append({"sourcedId": f"u-bgh-{i + 1}", "enabledUser": "true", "orgSourcedIds": SCHOOL_SID,
                               "role": "administrator", "username": f"bgh{i + 1}", "givenName": giv,
                               "familyName": fam, "middleName": mid, "phone": phone()})

    # classes: homeroom teacher i for class i; the remaining teachers teach a subject in two classes each
    class_ids = []
    per_grade = [classes // 3 + (1 if i < classes % 3 else 0) for i in range(3)]
    n = 0
    for g, count in zip(grades, per_grade):
        for j in range(count):
            sid = f"cls-{g}a{j + 1}"
            class_ids.append(sid)
            t["classes.csv"].append({"sourcedId": sid, "title": f"{g}A{j + 1}", "grades": f"{g:02d}" if g < 10 else str(g),
                                     "courseSourcedId": f"course-{g}", "classCode": f"{g}A{j + 1}",
                                     "classType": "homeroom", "location": f"Phòng {100 + n}",
                                     "schoolSourcedId": SCHOOL_SID, "termSourcedIds": "as-2026-hk1,as-2026-hk2",
                                     "subjects": SUBJECTS[n % len(SUBJECTS)]})
            t["enrollments.csv"].append({"sourcedId": f"enr-gvcn-{n + 1}", "classSourcedId": sid,
                                         "schoolSourcedId": SCHOOL_SID, "userSourcedId": staff_ids[n],
                                         "role": "teacher", "primary": "true", "beginDate": "2026-09-05"})
            n += 1
    subject_teachers = staff_ids[classes:]
    links = 0
    for i, class_sid in enumerate(class_ids):
        if not subject_teachers:
            break
        teacher = subject_teachers[(i // 2) % len(subject_teachers)]
        t["enrollments.csv"].append({"sourcedId": f"enr-gvbm-{i + 1}", "classSourcedId": class_sid,
                                     "schoolSourcedId": SCHOOL_SID, "userSourcedId": teacher, "role": "teacher",
                                     "primary": "false"})
        links += 1

    # students and their parents
    two_parents = guardians - students
    for i in range(students):
        class_sid = class_ids[i * len(class_ids) // students]
        grade = class_sid.split("-")[1][:2]
        female = rng.random() < 0.5
        fam, mid, giv = _name(rng, female)
        sid = f"u-hs-{i + 1:05d}"
        parents = [f"u-ph-{i + 1:05d}-m"] + ([f"u-ph-{i + 1:05d}-f"] if i < two_parents else [])
        t["users.csv"].append({"sourcedId": sid, "enabledUser": "true", "orgSourcedIds": SCHOOL_SID,
                               "role": "student", "username": f"hs{i + 1:05d}", "givenName": giv, "familyName": fam,
                               "middleName": mid, "identifier": f"0011{i + 1:08d}",
                               "agentSourcedIds": parents[0] if i % 2 else "", "grades": grade})
        t["enrollments.csv"].append({"sourcedId": f"enr-hs-{i + 1:05d}", "classSourcedId": class_sid,
                                     "schoolSourcedId": SCHOOL_SID, "userSourcedId": sid, "role": "student",
                                     "primary": "false"})
        if with_demographics:
            year = 2027 - int(grade) - 6
            t["demographics.csv"].append({"sourcedId": sid, "birthDate": f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                                          "sex": "female" if female else "male"})
        for k, parent in enumerate(parents):
            mother = k == 0
            pm, pmid, pg = _name(rng, mother)
            if mother:
                pm = rng.choice(FAMILY)
            else:
                pm = fam  # the child takes the father's family name
            t["users.csv"].append({"sourcedId": parent, "enabledUser": "true", "orgSourcedIds": SCHOOL_SID,
                                   "role": "parent", "givenName": pg, "familyName": pm, "middleName": pmid,
                                   "phone": phone(), "agentSourcedIds": sid})
            if with_demographics:
                t["demographics.csv"].append({"sourcedId": parent, "sex": "female" if mother else "male"})

    expected = None
    if bad is not None:
        file, column = {**BAD_KINDS, **WARNING_KINDS}[bad]
        rows = t[file]
        if bad == "missing_column":
            expected = {"file": file, "line": 1, "column": column}
        elif bad == "bad_date":
            rows[-1]["endDate"] = "2027-02-30"
            expected = {"file": file, "line": len(rows) + 1, "column": column}
        elif bad == "unknown_reference":
            index = len(rows) * 2 // 3
            rows[index]["userSourcedId"] = "u-hs-khong-co"
            expected = {"file": file, "line": index + 2, "column": column}
        elif bad == "bad_phone":  # not a refusal: a warning (see WARNING_KINDS)
            index = max(i for i, u in enumerate(rows) if u["role"] == "parent")
            rows[index]["phone"] = "12345"
            expected = {"file": file, "line": index + 2, "column": column}
        elif bad == "duplicate_sourced_id":
            rows.append({**rows[0], "title": "Lớp trùng mã"})
            expected = {"file": file, "line": len(rows) + 1, "column": column}
        elif bad == "bad_status":
            index = len(rows) // 2
            rows[index]["status"] = "inactive"
            expected = {"file": file, "line": index + 2, "column": column}

    for name, header in HEADERS.items():
        if name == "demographics.csv" and not with_demographics or name == "manifest.csv" and not with_manifest:
            continue
        if bad == "missing_column" and name == "users.csv":
            header = [h for h in header if h != "familyName"]
        with open(folder / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, header, extrasaction="ignore", lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(t[name])

    counts = {"schools": 1, "school_years": 1, "terms": 2, "classes": classes, "teachers": teachers,
              "admins": admins, "students": students, "guardians": guardians, "guardian_links": guardians,
              "class_teachers": links, "staff_roles": teachers + admins}
    return RosterSet(folder, SCHOOL_SID, counts, expected, t)


# --- helpers for the import tests ------------------------------------------------------------
def rewrite_csv(path, rows) -> None:
    """Write ``rows`` (dicts) back into a roster CSV file under its own header."""
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def dump_roster() -> dict:
    """Every row of every roster table (to assert that an import changed nothing)."""
    from service.accounts.models import User
    from service.roster.models import (ClassTeacher, School, SchoolClass, SchoolYear, StaffRole, Student,
                                       StudentGuardian, Term)

    tables = (School, SchoolYear, Term, User, StaffRole, SchoolClass, ClassTeacher, Student, StudentGuardian)
    return {m.__name__: list(m.select().order_by(*m._meta.sorted_fields[:1]).tuples()) for m in tables}
