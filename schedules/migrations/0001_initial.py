# Schedules: timetables, changes, school events and sign-ups, calendar feeds.
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

    class Term(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'term'

    class TimetablePeriod(Model):
        id = BigAutoField()
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        term = ForeignKeyField(Term, on_delete='CASCADE')
        weekday = SmallIntegerField()
        period = SmallIntegerField()
        start_min = SmallIntegerField()
        end_min = SmallIntegerField()
        subject = CharField(max_length=100)
        teacher = ForeignKeyField(User, null=True, on_delete='SET NULL')
        room = CharField(max_length=50, null=True)
        class Meta:
            database = db
            table_name = 'timetable_period'
            indexes = ((('school_class', 'term', 'weekday', 'period'), True), (('term', 'teacher', 'weekday'), False))
    db.create_tables([TimetablePeriod])

    class TimetableChange(Model):
        id = BigAutoField()
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        date = DateField()
        period = SmallIntegerField()
        kind = CharField(max_length=12)
        subject = CharField(max_length=100)
        regular_teacher = ForeignKeyField(User, null=True, on_delete='SET NULL', backref='+')
        room = CharField(max_length=50, null=True)
        start_min = SmallIntegerField()
        end_min = SmallIntegerField()
        teacher = ForeignKeyField(User, null=True, on_delete='SET NULL', backref='+')
        to_date = DateField(null=True)
        to_period = SmallIntegerField(null=True)
        to_start_min = SmallIntegerField(null=True)
        to_end_min = SmallIntegerField(null=True)
        note = CharField(max_length=500, null=True)
        digest = CharField(max_length=64)
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL', backref='+')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'timetable_change'
            indexes = ((('school_class', 'date', 'period'), True), (('school_class', 'to_date'), False))
    db.create_tables([TimetableChange])

    class SchoolEvent(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        title = CharField(max_length=200)
        description = TextField(null=True)
        kind = CharField(max_length=20, default='other')
        location = CharField(max_length=200, null=True)
        starts_at = DateTimeField()
        ends_at = DateTimeField()
        grades = TextField(default='[]')
        class_ids = TextField(default='[]')
        capacity = IntegerField(null=True)
        signup = BooleanField(default=False)
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'school_event'
            indexes = ((('school', 'starts_at'), False),)
    db.create_tables([SchoolEvent])

    class EventSignup(Model):
        id = BigAutoField()
        event = ForeignKeyField(SchoolEvent, on_delete='CASCADE')
        student = ForeignKeyField(Student, on_delete='CASCADE')
        signed_up_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'event_signup'
            indexes = ((('event', 'student'), True),)
    db.create_tables([EventSignup])

    class CalendarFeed(Model):
        id = BigAutoField()
        user = ForeignKeyField(User, on_delete='CASCADE')
        token_hash = CharField(max_length=64, unique=True)
        created_at = DateTimeField()
        revoked_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'calendar_feed'
            indexes = ((('user', 'revoked_at'), False),)
    db.create_tables([CalendarFeed])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('calendar_feed'))
    migrator.migrate(migrator.drop_table('event_signup'))
    migrator.migrate(migrator.drop_table('school_event'))
    migrator.migrate(migrator.drop_table('timetable_change'))
    migrator.migrate(migrator.drop_table('timetable_period'))
