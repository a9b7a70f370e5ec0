# Generated from a schema diff on 2026-11-25 11:49.
# Python-side defaults (created_at = utcnow) live on the models, not in the schema.
from peewee import *


def up(migrator, db):
    class School(Model):
        id = BigAutoField()
        name = CharField(max_length=200)
        code = CharField(null=True, max_length=50)
        timezone = CharField(max_length=64, default='Asia/Ho_Chi_Minh')
        sourced_id = CharField(unique=True, null=True, max_length=100)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'school'
    db.create_tables([School])

    class SchoolYear(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        name = CharField(max_length=100)
        starts_on = DateField()
        ends_on = DateField()
        sourced_id = CharField(unique=True, null=True, max_length=100)
        class Meta:
            database = db
            table_name = 'school_year'
    db.create_tables([SchoolYear])

    class User(Model):
        id = BigAutoField()
        phone = CharField(unique=True, null=True, max_length=20)
        name = CharField(max_length=200)
        email = CharField(null=True, max_length=200)
        password_hash = CharField(null=True, max_length=200)
        sourced_id = CharField(unique=True, null=True, max_length=100)
        is_active = BooleanField(default=True)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'user'
    db.create_tables([User])

    class SchoolClass(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        school_year = ForeignKeyField(SchoolYear, null=True, on_delete='SET NULL')
        name = CharField(max_length=100)
        grade = IntegerField(null=True)
        homeroom_teacher = ForeignKeyField(User, null=True, on_delete='SET NULL')
        sourced_id = CharField(unique=True, null=True, max_length=100)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'school_class'
    db.create_tables([SchoolClass])

    class ClassTeacher(Model):
        id = BigAutoField()
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        teacher = ForeignKeyField(User, on_delete='CASCADE')
        subject = CharField(max_length=100, default='')
        class Meta:
            database = db
            table_name = 'class_teacher'
            indexes = ((('school_class', 'teacher', 'subject'), True),)
    db.create_tables([ClassTeacher])

    class Student(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, null=True, on_delete='SET NULL')
        name = CharField(max_length=200)
        national_id = CharField(unique=True, null=True, max_length=32)
        birth_date = DateField(null=True)
        sourced_id = CharField(unique=True, null=True, max_length=100)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'student'
    db.create_tables([Student])

    class InviteCode(Model):
        id = BigAutoField()
        code_hash = CharField(unique=True, max_length=64)
        student = ForeignKeyField(Student, on_delete='CASCADE')
        relationship = CharField(max_length=30, default='guardian')
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)
        used_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        class Meta:
            database = db
            table_name = 'invite_code'
    db.create_tables([InviteCode])

    class OtpCode(Model):
        id = BigAutoField()
        phone = CharField(index=True, max_length=20)
        code_hash = CharField(max_length=200)
        created_at = DateTimeField()
        expires_at = DateTimeField()
        attempts = IntegerField(default=0)
        consumed_at = DateTimeField(null=True)
        locked = BooleanField(default=False)
        class Meta:
            database = db
            table_name = 'otp_code'
    db.create_tables([OtpCode])

    class RefreshToken(Model):
        id = BigAutoField()
        token_hash = CharField(unique=True, max_length=64)
        user = ForeignKeyField(User, on_delete='CASCADE')
        family = CharField(index=True, max_length=36)
        created_at = DateTimeField()
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'refresh_token'
    db.create_tables([RefreshToken])

    class RevokedFamily(Model):
        family = CharField(primary_key=True, max_length=36)
        user = ForeignKeyField(User, on_delete='CASCADE')
        revoked_at = DateTimeField()
        reason = CharField(max_length=20)
        class Meta:
            database = db
            table_name = 'revoked_family'
    db.create_tables([RevokedFamily])

    class StaffRole(Model):
        id = BigAutoField()
        user = ForeignKeyField(User, on_delete='CASCADE')
        school = ForeignKeyField(School, on_delete='CASCADE')
        role = CharField(max_length=20)
        class Meta:
            database = db
            table_name = 'staff_role'
            indexes = ((('user', 'school', 'role'), True),)
    db.create_tables([StaffRole])

    class StudentGuardian(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        guardian = ForeignKeyField(User, on_delete='CASCADE')
        relationship = CharField(max_length=30, default='guardian')
        class Meta:
            database = db
            table_name = 'student_guardian'
            indexes = ((('student', 'guardian'), True),)
    db.create_tables([StudentGuardian])

    class Term(Model):
        id = BigAutoField()
        school_year = ForeignKeyField(SchoolYear, on_delete='CASCADE')
        name = CharField(max_length=100)
        starts_on = DateField()
        ends_on = DateField()
        sourced_id = CharField(unique=True, null=True, max_length=100)
        class Meta:
            database = db
            table_name = 'term'
    db.create_tables([Term])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('term'))
    migrator.migrate(migrator.drop_table('student_guardian'))
    migrator.migrate(migrator.drop_table('staff_role'))
    migrator.migrate(migrator.drop_table('revoked_family'))
    migrator.migrate(migrator.drop_table('refresh_token'))
    migrator.migrate(migrator.drop_table('otp_code'))
    migrator.migrate(migrator.drop_table('invite_code'))
    migrator.migrate(migrator.drop_table('student'))
    migrator.migrate(migrator.drop_table('class_teacher'))
    migrator.migrate(migrator.drop_table('school_class'))
    migrator.migrate(migrator.drop_table('user'))
    migrator.migrate(migrator.drop_table('school_year'))
    migrator.migrate(migrator.drop_table('school'))
