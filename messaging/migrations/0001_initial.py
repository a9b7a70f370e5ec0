# Generated from a schema diff on 2026-11-25 12:03.
# Python-side defaults (created_at = utcnow) live on the models, not in the schema.
from peewee import *


def up(migrator, db):
    class School(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'school'

    class SchoolClass(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'school_class'

    class Student(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'student'

    class User(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'user'

    class Conversation(Model):
        id = BigAutoField()
        kind = CharField(max_length=10)
        school = ForeignKeyField(School, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, unique=True, null=True, on_delete='CASCADE')
        student = ForeignKeyField(Student, null=True, on_delete='CASCADE')
        participant_key = CharField(unique=True, null=True, max_length=64)
        title = CharField(max_length=200, default='')
        announcement_only = BooleanField(default=False)
        last_seq = BigIntegerField(default=0)
        last_message_at = DateTimeField(null=True)
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        updated_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'conversation'
    db.create_tables([Conversation])

    class Message(Model):
        id = BigAutoField()
        conversation = ForeignKeyField(Conversation, on_delete='CASCADE')
        seq = BigIntegerField()
        sender = ForeignKeyField(User, on_delete='CASCADE')
        client_id = CharField(max_length=100)
        body = TextField(default='')
        created_at = DateTimeField()
        edited_at = DateTimeField(null=True)
        deleted_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'chat_message'
            indexes = ((('conversation', 'seq'), True), (('sender', 'client_id'), True))
    db.create_tables([Message])

    class Attachment(Model):
        id = BigAutoField()
        uploader = ForeignKeyField(User, on_delete='CASCADE')
        message = ForeignKeyField(Message, null=True, on_delete='SET NULL')
        content_type = CharField(max_length=100)
        size = BigIntegerField()
        filename = CharField(max_length=200, default='')
        storage_key = CharField(max_length=300)
        sha256 = CharField(max_length=64)
        created_at = DateTimeField()
        deleted_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'message_attachment'
    db.create_tables([Attachment])

    class MessageReport(Model):
        id = BigAutoField()
        message = ForeignKeyField(Message, on_delete='CASCADE')
        conversation = ForeignKeyField(Conversation, on_delete='CASCADE')
        school = ForeignKeyField(School, on_delete='CASCADE')
        reporter = ForeignKeyField(User, on_delete='CASCADE')
        reason = TextField()
        body_snapshot = TextField(default='')
        sender_id_snapshot = BigIntegerField()
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'message_report'
            indexes = ((('message', 'reporter'), True), (('school', 'id'), False))
    db.create_tables([MessageReport])

    class OfficeHour(Model):
        id = BigAutoField()
        teacher = ForeignKeyField(User, on_delete='CASCADE')
        weekday = SmallIntegerField()
        start_minute = SmallIntegerField()
        end_minute = SmallIntegerField()
        class Meta:
            database = db
            table_name = 'office_hour'
            indexes = ((('teacher', 'weekday', 'start_minute'), True),)
    db.create_tables([OfficeHour])

    class Participant(Model):
        id = BigAutoField()
        conversation = ForeignKeyField(Conversation, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        joined_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'conversation_participant'
            indexes = ((('conversation', 'user'), True),)
    db.create_tables([Participant])

    class ReadMark(Model):
        id = BigAutoField()
        conversation = ForeignKeyField(Conversation, on_delete='CASCADE')
        user = ForeignKeyField(User, on_delete='CASCADE')
        up_to_seq = BigIntegerField(default=0)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'conversation_read_mark'
            indexes = ((('conversation', 'user'), True),)
    db.create_tables([ReadMark])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('conversation_read_mark'))
    migrator.migrate(migrator.drop_table('conversation_participant'))
    migrator.migrate(migrator.drop_table('office_hour'))
    migrator.migrate(migrator.drop_table('message_report'))
    migrator.migrate(migrator.drop_table('message_attachment'))
    migrator.migrate(migrator.drop_table('chat_message'))
    migrator.migrate(migrator.drop_table('conversation'))
