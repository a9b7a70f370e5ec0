# Grades (Circular 22/2021/TT-BGDĐT), their publication and audit, and teachers' remarks.
# Python-side defaults (updated_at = utcnow) live on the models, not in the schema.
from peewee import *


def up(migrator, db):
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

    class User(Model):
        id = BigAutoField()
        class Meta:
            database = db
            table_name = 'user'

    class GradeSubject(Model):
        id = BigAutoField()
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        subject = CharField(max_length=100)
        yearly_periods = IntegerField(null=True)
        assessment = CharField(max_length=10, null=True)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'grade_subject'
            indexes = ((('school_class', 'subject'), True),)

    class Grade(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        term = ForeignKeyField(Term, on_delete='CASCADE')
        subject = CharField(max_length=100)
        kind = CharField(max_length=10)
        slot = SmallIntegerField(default=1)
        score = DecimalField(max_digits=4, decimal_places=1, null=True)
        mark = CharField(max_length=2, null=True)
        updated_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'grade'
            indexes = ((('student', 'term', 'subject', 'kind', 'slot'), True),
                       (('school_class', 'term', 'subject'), False))

    class GradePublication(Model):
        id = BigAutoField()
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        term = ForeignKeyField(Term, on_delete='CASCADE')
        subject = CharField(max_length=100)
        published_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        published_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'grade_publication'
            indexes = ((('school_class', 'term', 'subject'), True),)

    class GradeChange(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        term = ForeignKeyField(Term, on_delete='CASCADE')
        subject = CharField(max_length=100)
        kind = CharField(max_length=10)
        slot = SmallIntegerField(default=1)
        old = CharField(max_length=4, null=True)
        new = CharField(max_length=4)
        changed_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        changed_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'grade_change'
            indexes = ((('school_class', 'term', 'subject'), False),)

    class Remark(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, null=True, on_delete='SET NULL')
        author = ForeignKeyField(User, null=True, on_delete='SET NULL')
        body = TextField()
        date = DateField()
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'remark'
            indexes = ((('student', 'date'), False),)

    db.create_tables([GradeSubject, Grade, GradePublication, GradeChange, Remark])


def down(migrator, db):
    migrator.migrate(*[migrator.drop_table(t) for t in
                       ('remark', 'grade_change', 'grade_publication', 'grade', 'grade_subject')])
