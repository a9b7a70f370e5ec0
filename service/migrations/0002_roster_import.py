# Generated from a schema diff on 2026-11-25 11:59.
from peewee import *

# Python-side defaults (created_at = utcnow) live on the models, not in the schema.

def up(migrator, db):
    class School(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'school'

    class User(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'user'

    class RosterImport(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        status = CharField(max_length=20, default='queued')
        file_name = CharField(max_length=200, default='')
        payload = BlobField(null=True)
        counts = TextField(null=True)
        errors = TextField(null=True)
        created_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'roster_import'
    db.create_tables([RosterImport])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('roster_import'))
