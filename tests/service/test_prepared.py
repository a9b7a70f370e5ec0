"""service.prepared: hot-path reads built once per backend, PREPAREd once per PostgreSQL connection."""
from __future__ import annotations

import datetime as dt

import peewee
import pytest

from service import db as dbmod
from service.accounts.models import User
from service.prepared import Prepared, any_of
from service.roster.models import School

from ..support.queries import count_queries


def _users(p):
    return (User.select(User.id, User.name, peewee.Value("k").alias("konst"))
            .where(any_of(User.id, p.ids) & ((User.name == p.name) | (User.id == p.first)))
            .order_by(User.id).tuples())


USERS = Prepared("test_users", _users)
SCHOOLS = Prepared("test_schools", lambda p: School.select().where(
    (School.created_at < p.before) & (School.id >= p.min_id)).order_by(School.id).limit(p.limit))


@pytest.fixture
def people(app, make):
    school = make.school()
    ids = [make.user(name=f"Người {i}", password=None).id for i in range(5)]
    return school, ids


def test_values_lists_and_constants(app, people):
    _school, ids = people
    with app.app_context():
        assert USERS.run(ids=ids[:3], name="Người 1", first=ids[0]) == [(ids[0], "Người 0", "k"), (ids[1], "Người 1", "k")]
        assert USERS.run(ids=ids, name="Người 4", first=ids[2]) == [(ids[2], "Người 2", "k"), (ids[4], "Người 4", "k")]
        assert USERS.run(ids=[], name="Người 4", first=ids[2]) == []  # an empty list matches nothing
        assert USERS.run(ids=set(ids[3:]), name="nobody", first=ids[3]) == [(ids[3], "Người 3", "k")]
        with pytest.raises(TypeError, match="no value for first"):
            USERS.run(ids=ids, name="x")


def test_models_and_datetimes(app, people):
    school, _ids = people
    with app.app_context():
        later = dt.datetime.utcnow() + dt.timedelta(days=1)
        rows = SCHOOLS.run(before=later, min_id=school.id, limit=5)
        assert [(type(r), r.id, r.name) for r in rows] == [(School, school.id, school.name)]
        assert SCHOOLS.run(before=later - dt.timedelta(days=3), min_id=school.id, limit=5) == []


def test_prepared_once_per_connection_then_executed(app, people, database_url):
    _school, ids = people
    with app.app_context():
        dbmod.db.close()
        seen = []
        original = dbmod.db.obj.execute_sql

        def spy(sql, params=None):
            seen.append(sql.split(" ", 1)[0])
            return original(sql, params)

        dbmod.db.obj.execute_sql = spy
        try:
            with count_queries() as log:
                for _ in range(3):
                    assert len(USERS.run(ids=ids, name="-", first=ids[0])) == 1
        finally:
            vars(dbmod.db.obj).pop("execute_sql", None)  # count_queries took it off already
        assert log.count == 3  # EXECUTE (PostgreSQL) or SELECT (SQLite) counts as a statement
        if database_url.startswith("postgres"):
            assert seen == ["PREPARE", "EXECUTE", "EXECUTE", "EXECUTE"]
        else:
            assert seen == ["SELECT"] * 3


def test_survives_rollback_and_new_connections(app, people, database_url):
    _school, ids = people
    with app.app_context():
        with pytest.raises(RuntimeError):
            with dbmod.db.atomic():
                assert USERS.run(ids=ids, name="-", first=ids[1]) == [(ids[1], "Người 1", "k")]
                raise RuntimeError("roll back")
        assert USERS.run(ids=ids, name="-", first=ids[2]) == [(ids[2], "Người 2", "k")]  # still prepared
        if database_url.startswith("postgres"):
            # the server ends every session: a new connection prepares again
            dbmod.db.close()
            dbmod.db.obj.close_all()
        assert USERS.run(ids=ids, name="-", first=ids[3]) == [(ids[3], "Người 3", "k")]


def test_a_prepared_read_on_a_connection_postgresql_ended_is_read_again(app, people, database_url):
    """As a plain SELECT (service.db.PooledPostgres): outside a transaction, the read is made once
    more on a new connection, prepared anew there."""
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL connections")
    from playhouse.db_url import parse

    _school, ids = people
    with app.app_context():
        assert USERS.run(ids=ids, name="-", first=ids[0]) == [(ids[0], "Người 0", "k")]  # prepared here
        old = dbmod.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        params = parse(database_url)
        admin = peewee.PostgresqlDatabase(params.pop("database"), **params)
        admin.connect()
        admin.execute_sql("SELECT pg_terminate_backend(%s)", (old,))
        admin.close()
        assert USERS.run(ids=ids, name="-", first=ids[1]) == [(ids[1], "Người 1", "k")]
        assert dbmod.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != old


def test_postgresql_plans_a_prepared_read_generically_from_its_first_execution(app, people, database_url):
    """Pooled PostgreSQL connections run with ``plan_cache_mode=force_generic_plan`` (service.db):
    a new connection does not plan the statement afresh for its first five executions."""
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL connections")
    _school, ids = people
    with app.app_context():
        dbmod.db.close()
        for _ in range(2):
            assert len(USERS.run(ids=ids, name="-", first=ids[0])) == 1
        generic, custom = dbmod.db.execute_sql(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ("PREPARE %test_users%",)).fetchone()  # (the PREPARE's text names the statement)
        assert (generic, custom) == (2, 0)
