# Generated from a schema diff on 2026-11-25 12:04.
from peewee import *


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

    class Announcement(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        author = ForeignKeyField(User, null=True, on_delete='SET NULL')
        title = CharField(max_length=200)
        body = TextField()
        audience = TextField()
        urgent = BooleanField(default=False)
        requires_ack = BooleanField(default=False)
        remind_after_minutes = IntegerField(null=True)
        status = CharField(index=True, max_length=12, default='queued')
        send_at = DateTimeField(null=True)
        created_at = DateTimeField()
        started_at = DateTimeField(null=True)
        planned_at = DateTimeField(null=True)
        completed_at = DateTimeField(null=True)
        cancelled_at = DateTimeField(null=True)
        reminded_at = DateTimeField(null=True)
        recipients = IntegerField(null=True)
        chunks = IntegerField(null=True)
        class Meta:
            database = db
            table_name = 'announcement'
    db.create_tables([Announcement])

    class AnnouncementAck(Model):
        id = BigAutoField()
        announcement = ForeignKeyField(Announcement, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        acked_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'announcement_ack'
            indexes = ((('announcement', 'user'), True),)
    db.create_tables([AnnouncementAck])

    class AnnouncementChunk(Model):
        id = BigAutoField()
        announcement = ForeignKeyField(Announcement, on_delete='CASCADE')
        seq = IntegerField()
        size = IntegerField()
        user_ids = TextField()
        done_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'announcement_chunk'
            indexes = ((('announcement', 'seq'), True),)
    db.create_tables([AnnouncementChunk])

    class Device(Model):
        id = BigAutoField()
        user = ForeignKeyField(User, on_delete='CASCADE')
        token = CharField(unique=True, max_length=1024)
        platform = CharField(max_length=10)
        locale = CharField(null=True, max_length=35)
        created_at = DateTimeField()
        last_seen_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'device'
    db.create_tables([Device])

    class Notification(Model):
        id = BigAutoField()
        user = ForeignKeyField(User, on_delete='CASCADE')
        category = CharField(max_length=20)
        title = CharField(max_length=300)
        body = TextField()
        data = TextField(default='{}')
        announcement = ForeignKeyField(Announcement, null=True, on_delete='CASCADE')
        dedupe_key = CharField(null=True, max_length=64)
        in_inbox = BooleanField(default=True)
        urgent = BooleanField(default=False)
        silent = BooleanField(default=False)
        collapse_key = CharField(null=True, max_length=100)
        push_status = CharField(max_length=8, default='none')
        push_after = DateTimeField(null=True)
        created_at = DateTimeField()
        read_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'notification'
            indexes = ((('announcement', 'user'), True), (('dedupe_key', 'user'), True), (('user', 'in_inbox', 'id'), False), (('push_status', 'push_after'), False))
    db.create_tables([Notification])

    class Preference(Model):
        user = ForeignKeyField(User, primary_key=True, on_delete='CASCADE')
        disabled = CharField(max_length=200, default='')
        quiet_start = CharField(null=True, max_length=5)
        quiet_end = CharField(null=True, max_length=5)
        language = CharField(max_length=2, default='vi')
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'preference'
    db.create_tables([Preference])

    class PushAttempt(Model):
        id = BigAutoField()
        notification = ForeignKeyField(Notification, on_delete='CASCADE')
        device_id = BigIntegerField()
        announcement_id = BigIntegerField(index=True, null=True)
        status = CharField(max_length=10)
        claim = CharField(index=True, max_length=32)
        tries = IntegerField(default=1)
        error = CharField(null=True, max_length=40)
        next_at = DateTimeField(null=True)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'push_attempt'
            indexes = ((('notification', 'device_id'), True),)
    db.create_tables([PushAttempt])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('push_attempt'))
    migrator.migrate(migrator.drop_table('preference'))
    migrator.migrate(migrator.drop_table('notification'))
    migrator.migrate(migrator.drop_table('device'))
    migrator.migrate(migrator.drop_table('announcement_chunk'))
    migrator.migrate(migrator.drop_table('announcement_ack'))
    migrator.migrate(migrator.drop_table('announcement'))
