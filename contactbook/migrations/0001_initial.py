# Contact book, first half (issue 10): settings, attendance and its audit, gate devices and
# check-ins, leave requests. Python-side defaults (created_at = utcnow) live on the models.
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

    class ContactBookSetting(Model):
        school = ForeignKeyField(School, primary_key=True, on_delete='CASCADE')
        start_time = CharField(max_length=5, default='07:30')
        school_days = CharField(max_length=20, default='1,2,3,4,5')
        updated_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'contact_book_setting'
    db.create_tables([ContactBookSetting])

    class AttendanceRecord(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        date = DateField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, null=True, on_delete='SET NULL')
        status = CharField(max_length=20)
        note = CharField(max_length=500, default='')
        source = CharField(max_length=10)
        check_in_at = DateTimeField(null=True)
        check_out_at = DateTimeField(null=True)
        updated_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'attendance_record'
            indexes = ((('student', 'date'), True), (('school_class', 'date'), False))
    db.create_tables([AttendanceRecord])

    class AttendanceChange(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        date = DateField()
        old_status = CharField(max_length=20, null=True)
        new_status = CharField(max_length=20)
        old_note = CharField(max_length=500, null=True)
        new_note = CharField(max_length=500, default='')
        source = CharField(max_length=10)
        changed_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        device_id = BigIntegerField(null=True)
        leave_request_id = BigIntegerField(null=True)
        changed_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'attendance_change'
            indexes = ((('student', 'date'), False),)
    db.create_tables([AttendanceChange])

    class GateDevice(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        name = CharField(max_length=100)
        key_hash = CharField(max_length=64, unique=True)
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        revoked_at = DateTimeField(null=True)
        last_seen_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'gate_device'
    db.create_tables([GateDevice])

    class CheckIn(Model):
        id = BigAutoField()
        device = ForeignKeyField(GateDevice, on_delete='CASCADE')
        event_id = CharField(max_length=100)
        student = ForeignKeyField(Student, on_delete='CASCADE')
        school = ForeignKeyField(School, on_delete='CASCADE')
        at = DateTimeField()
        date = DateField()
        direction = CharField(max_length=3)
        batch = CharField(max_length=32)
        received_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'check_in'
            indexes = ((('device', 'event_id'), True), (('student', 'date'), False))
    db.create_tables([CheckIn])

    class LeaveRequest(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        school = ForeignKeyField(School, on_delete='CASCADE')
        from_date = DateField()
        to_date = DateField()
        reason = TextField()
        status = CharField(max_length=10, default='pending')
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        decided_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        decided_at = DateTimeField(null=True)
        decision_note = TextField(default='')
        cancelled_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'leave_request'
            indexes = ((('student', 'status', 'from_date'), False),)
    db.create_tables([LeaveRequest])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('leave_request'))
    migrator.migrate(migrator.drop_table('check_in'))
    migrator.migrate(migrator.drop_table('gate_device'))
    migrator.migrate(migrator.drop_table('attendance_change'))
    migrator.migrate(migrator.drop_table('attendance_record'))
    migrator.migrate(migrator.drop_table('contact_book_setting'))
