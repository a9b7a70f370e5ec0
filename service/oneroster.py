"""OneRoster 1.1 CSV import (placeholder until the import lands; see issue 2)."""


def import_path_cli(path, school):  # pragma: no cover - replaced by the OneRoster importer
    raise SystemExit("OneRoster import is not implemented yet")
