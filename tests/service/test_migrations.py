"""`lienlac migrate`: idempotent, safe when several processes start at once, and in step with the models."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
import os
import subprocess
import uuid
from pathlib import Path

import peewee
import pytest
from playhouse.db_url import parse
from playhouse.migrations import Migration
from playhouse.schema_diff import diff_models

from service import db as dbmod

from ..support.servers import PG_ADMIN_URL, ROOT, lienlac, process_env, run_lienlac

BACKENDS = [b for b in os.environ.get("LIENLAC_TEST_DBS", "sqlite,postgres").split(",") if b]


def expected_migrations() -> list[str]:
    names = []
    for package in dbmod.MIGRATION_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None:
            continue
        directory = Path(spec.origin).parent / "migrations"
        if directory.is_dir():
            names.extend(f"{package}:{m.name}" for m in Migration.load_directory(str(directory)))
    return names


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path):
    """An empty database of its own (never migrated)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"lienlac_mig_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = peewee.PostgresqlDatabase(**parse(PG_ADMIN_URL))
    with admin.connection_context():
        admin.execute_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connection_context():
            admin.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrate_twice_applies_nothing_the_second_time(backend, tmp_path):
    expected = expected_migrations()
    assert "service:0001_initial" in expected
    with fresh_database(backend, tmp_path) as url:
        env = process_env(url, None, tmp_path)
        first = run_lienlac(env, "migrate")
        assert first.returncode == 0, first.stderr
        assert first.stdout.split() == expected  # in MIGRATION_PACKAGES order, each file once
        second = run_lienlac(env, "migrate")
        assert second.returncode == 0, second.stderr
        assert second.stdout.split() == []
        assert "schema is up to date" in second.stderr


@pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL only")
def test_processes_starting_together_migrate_once(tmp_path):
    """Several instances may run `lienlac migrate` (or `serve`) at once: one migrates, the others wait."""
    with fresh_database("postgres", tmp_path) as url:
        env = process_env(url, None, tmp_path)
        runs = [subprocess.Popen(lienlac("migrate"), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True) for _ in range(3)]
        outputs = []
        try:
            for run in runs:
                out, err = run.communicate(timeout=120)
                assert run.returncode == 0, err
                outputs.append(out.split())
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
                    run.wait(5)
        applied = [name for out in outputs for name in out]
        assert sorted(applied) == sorted(expected_migrations())  # every migration exactly once


def _models_by_package() -> dict[str, list]:
    found = {}
    for package in dbmod.MIGRATION_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not (Path(spec.origin).parent / "migrations").is_dir():
            continue
        models = []  # ``models`` modules of the package and of its subpackages (service.accounts, ...)
        for info in pkgutil.walk_packages([str(Path(spec.origin).parent)], prefix=f"{package}."):
            if info.name.rsplit(".", 1)[-1] == "models" and "migrations" not in info.name:
                models.extend(importlib.import_module(info.name).MODELS)
        if models:
            found[package] = models
    return found


def test_migrated_schema_matches_the_models(app):
    """A model changed without a migration shows here (tables, columns and indexes)."""
    packages = _models_by_package()
    assert "service" in packages
    differences = {package: str(diff) for package, models in packages.items()
                   if (diff := diff_models(dbmod.db.obj, models))}
    assert differences == {}
