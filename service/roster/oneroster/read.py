"""Stage 1: read the files of a folder or zip, parse CSV (BOM, CRLF, quoted fields), collect problems."""
from __future__ import annotations

import csv
import dataclasses
import io
import unicodedata
import zipfile
from pathlib import Path

from ...errors import ValidationError
from .vocab import COLUMNS, FILES, IGNORED_WHY, MANIFEST_MODES, MAX_FILE_BYTES, MAX_PROBLEMS, MAX_WARNINGS, UNUSED_FILES

# --- problems ------------------------------------------------------------------------------
class RosterImportError(ValidationError):
    """The files cannot be imported; ``errors`` lists every problem as {file, line, column, message}."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        first = errors[0] if errors else {}
        super().__init__(
            f"The roster has {len(errors)} problem{'s' if len(errors) != 1 else ''}; nothing was imported. "
            f"First: {format_problem(first)}",
            fields={"rows": errors[:100]},
        )


def format_problem(p: dict) -> str:
    where = ":".join(str(x) for x in (p.get("file"), p.get("line"), p.get("column")) if x not in (None, ""))
    return f"{where}: {p.get('message', '')}" if where else p.get("message", "")


class Problems:
    """What refuses the bundle (``items``, via ``add``) and what is only reported (``warnings``, via ``warn``)."""

    def __init__(self):
        self.items: list[dict] = []
        self.dropped = 0
        self.warnings: list[dict] = []
        self.warnings_dropped = 0

    def warn(self, file: str | None, line: int | None, column: str | None, message: str) -> None:
        """Something Lienlac cannot use: reported with its place, the rest is imported."""
        if len(self.warnings) >= MAX_WARNINGS:
            self.warnings_dropped += 1
            return
        self.warnings.append({"file": file, "line": line, "column": column, "message": message})

    def warning_list(self) -> list[dict]:
        out = list(self.warnings)
        if self.warnings_dropped:
            out.append({"file": None, "line": None, "column": None,
                        "message": f"... and {self.warnings_dropped} more warnings"})
        return out

    def add(self, file: str | None, line: int | None, column: str | None, message: str) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        self.items.append({"file": file, "line": line, "column": column, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            items = list(self.items)
            if self.dropped:
                items.append({"file": None, "line": None, "column": None,
                              "message": f"... and {self.dropped} more problems"})
            raise RosterImportError(items)


# --- reading -------------------------------------------------------------------------------
@dataclasses.dataclass
class Table:
    name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line of the row's first character, {column: value})


def _canonical(name: str, problems: Problems | None = None) -> str | None:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for known in FILES:
        if base.lower() == known.lower():
            return known
    if problems is not None:
        unused = next((u for u in UNUSED_FILES if u.lower() == base.lower()), None)
        if unused:
            problems.warn(unused, None, None, "Lienlac does not use this OneRoster file (gradebook or resources): "
                                              "skipped")
        elif base.lower().endswith(".csv"):
            problems.warn(base, None, None, "not a OneRoster 1.1 CSV file: skipped")
    return None


def manifest_modes(data: bytes | None) -> dict[str, str]:
    """``{file name: absent|bulk|delta}`` from manifest.csv's ``file.<name>`` rows (empty without one)."""
    if not data:
        return {}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}
    modes = {}
    for row in csv.DictReader(io.StringIO(text, newline="")):
        prop, value = (row.get("propertyName") or "").strip(), (row.get("value") or "").strip().lower()
        if prop.startswith("file.") and value in MANIFEST_MODES:
            modes[prop[5:] + ".csv"] = value
    return modes


def read_files(source, problems: Problems) -> dict[str, bytes]:
    """The known CSV files of a folder, a zip file path, or zip bytes: {canonical name: bytes}."""
    found: dict[str, bytes] = {}
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        for path in sorted(Path(source).iterdir()):
            name = _canonical(path.name, problems if path.is_file() else None)
            if name and path.is_file():
                if name in found:
                    problems.add(name, None, None, f"two files are named {name} (case differs)")
                found[name] = path.read_bytes()
    else:
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            problems.add(None, None, None, f"not a folder or a zip file ({exc})")
            return found
        with archive:
            total = 0
            for info in archive.infolist():
                if info.is_dir() or info.filename.startswith("__MACOSX/") or \
                        info.filename.rsplit("/", 1)[-1].startswith("._"):
                    continue
                name = _canonical(info.filename, problems)
                if not name:
                    continue
                if name in found:
                    problems.add(name, None, None, f"the zip holds {name} twice")
                    continue
                total += info.file_size
                if info.file_size > MAX_FILE_BYTES or total > 2 * MAX_FILE_BYTES:
                    problems.add(name, None, None, "the file is too large")
                    continue
                try:
                    found[name] = archive.read(info)
                except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                    problems.add(name, None, None, f"cannot be read from the zip ({exc})")
    modes = manifest_modes(found.get("manifest.csv"))
    delta = "delta" in modes.values()
    for name, (required, _) in FILES.items():
        # a file the manifest declares absent, or that a delta bundle leaves out, is not required
        if required and name not in found and modes.get(name) != "absent" and not delta:
            problems.add(name, None, None, "the file is missing")
    for name, mode in modes.items():
        if mode == "absent" and name in found:
            problems.warn(name, None, None, "the manifest declares this file absent: skipped")
            del found[name]
    return found


def parse_table(name: str, data: bytes, problems: Problems) -> Table | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(name, data[:exc.start].count(b"\n") + 1, None, "the file is not UTF-8 text")
        return None
    text = unicodedata.normalize("NFC", text)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.add(name, 1, None, f"unreadable CSV ({exc})")
        return None
    if not header:
        problems.add(name, 1, None, "the file is empty (no header row)")
        return None
    header = [h.strip().lstrip("\ufeff") for h in header]
    ok = True
    for column in FILES[name][1]:
        if column not in header:
            problems.add(name, 1, column, f"required column {column} is missing from the header")
            ok = False
    if not ok:
        return None
    rows: list[tuple[int, dict[str, str]]] = []
    last = reader.line_num
    try:
        for cells in reader:
            line = last + 1
            last = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                problems.add(name, line, None, f"{len(cells)} values for {len(header)} columns")
                continue
            nul = next((h for h, cell in zip(header, cells) if "\x00" in cell), None)
            if nul is not None:  # PostgreSQL stores no NUL in text: a clear problem, not a failed job
                problems.add(name, line, nul, "contains the NUL character")
                continue
            rows.append((line, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}))
    except csv.Error as exc:
        problems.add(name, reader.line_num, None, f"unreadable CSV ({exc})")
    _warn_columns(name, header, rows, problems)
    return Table(name, header, rows)


def _warn_columns(name: str, header: list[str], rows, problems: Problems) -> None:
    """One warning per column Lienlac does not use: unknown ones, and known ones that carry values."""
    known = COLUMNS.get(name, {})
    for column in header:
        if column in known and known[column] or column.startswith("metadata."):
            continue
        if column not in known:
            problems.warn(name, 1, column, f"{column} is not a OneRoster 1.1 column of {name}: ignored")
            continue
        filled = [line for line, data in rows if data.get(column)]
        if filled:
            why = IGNORED_WHY.get(column, "Lienlac has no place for it")
            problems.warn(name, filled[0], column, f"{column} is not imported ({why}); "
                                                   f"{len(filled)} row{'s' if len(filled) != 1 else ''} fill it, "
                                                   "the first on this line")


