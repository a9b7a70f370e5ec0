# Generated from a schema diff on 2026-12-01 23:29.
# Python-side defaults (created_at, updated_at = utcnow) live on the models, not in the schema.
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

    class Dish(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        name = CharField(max_length=200)
        kcal = DecimalField(max_digits=10, decimal_places=2)
        protein_g = DecimalField(max_digits=10, decimal_places=2)
        fat_g = DecimalField(max_digits=10, decimal_places=2)
        carbs_g = DecimalField(max_digits=10, decimal_places=2)
        fibre_g = DecimalField(null=True, max_digits=10, decimal_places=2)
        sodium_mg = DecimalField(null=True, max_digits=10, decimal_places=2)
        allergens = CharField(max_length=200, default='')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        deleted_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'nutrition_dish'
    db.create_tables([Dish])

    class AllergyAlert(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        dish = ForeignKeyField(Dish, on_delete='CASCADE')
        date = DateField()
        allergens = CharField(max_length=200)
        source = CharField(max_length=20)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'nutrition_allergy_alert'
            indexes = ((('student', 'dish', 'date'), True),)
    db.create_tables([AllergyAlert])

    class MealLog(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        school_class = ForeignKeyField(SchoolClass, on_delete='CASCADE')
        date = DateField()
        meal = CharField(max_length=20)
        dish_ids = TextField(default='[]')
        logged_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'nutrition_meal_log'
            indexes = ((('school_class', 'date', 'meal'), True),)
    db.create_tables([MealLog])

    class MealEntry(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        date = DateField()
        meal = CharField(max_length=20)
        meal_log = ForeignKeyField(MealLog, on_delete='CASCADE')
        portion = CharField(max_length=10)
        note = TextField(default='')
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'nutrition_meal_entry'
            indexes = ((('student', 'date', 'meal'), True),)
    db.create_tables([MealEntry])

    class MenuDay(Model):
        id = BigAutoField()
        school = ForeignKeyField(School, on_delete='CASCADE')
        date = DateField()
        draft = TextField(default='{}')
        published = TextField(null=True)
        published_at = DateTimeField(null=True)
        updated_at = DateTimeField()
        updated_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        class Meta:
            database = db
            table_name = 'nutrition_menu_day'
            indexes = ((('school', 'date'), True),)
    db.create_tables([MenuDay])

    class StudentAllergy(Model):
        id = BigAutoField()
        student = ForeignKeyField(Student, on_delete='CASCADE')
        allergen = CharField(max_length=30)
        created_at = DateTimeField()
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        class Meta:
            database = db
            table_name = 'nutrition_student_allergy'
            indexes = ((('student', 'allergen'), True),)
    db.create_tables([StudentAllergy])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('nutrition_student_allergy'))
    migrator.migrate(migrator.drop_table('nutrition_menu_day'))
    migrator.migrate(migrator.drop_table('nutrition_meal_entry'))
    migrator.migrate(migrator.drop_table('nutrition_meal_log'))
    migrator.migrate(migrator.drop_table('nutrition_allergy_alert'))
    migrator.migrate(migrator.drop_table('nutrition_dish'))
