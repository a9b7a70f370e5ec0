# Roster imports: dry runs and the warnings of an import (issue 8).
from peewee import BooleanField, TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('roster_import', 'dry_run', BooleanField(default=False)),
        migrator.add_column('roster_import', 'warnings', TextField(null=True)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column('roster_import', 'warnings'),
        migrator.drop_column('roster_import', 'dry_run'),
    )
