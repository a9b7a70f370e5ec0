# Push claims that a killed worker left "sending" are taken up again after a timeout (issue 14):
# when each claim was made, and an index for the sweep that finds the stale ones.
from peewee import DateTimeField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column('push_attempt', 'claimed_at', DateTimeField(null=True)),
        migrator.add_index('push_attempt', ('status', 'claimed_at'), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index('push_attempt', 'push_attempt_status_claimed_at'),
        migrator.drop_column('push_attempt', 'claimed_at'),
    )
