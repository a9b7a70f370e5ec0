"""The real servers the tests use, and helpers to run Lienlac processes (web, worker, CLI) for real.

Every process starts in a session of its own (``start_new_session``) so ``Proc.kill`` reaches its
children too (RQ's work horses and scheduler); a process a test forgot is SIGKILLed at exit.
Subprocesses run with the repository root as working directory and on ``PYTHONPATH``, so job
functions defined under ``tests/`` import in a worker.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

PG_ADMIN_URL = os.environ.get("LIENLAC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("LIENLAC_TEST_REDIS", "redis://127.0.0.1:6379")
ROOT = Path(__file__).resolve().parents[2]
SHARED_SECRET = "shared-test-secret-" + "x" * 32  # every process of one test signs tokens alike


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_channel() -> str:
    """A Socket.IO pub/sub channel of its own (Redis pub/sub ignores the database number)."""
    return f"t-{uuid.uuid4().hex}"


def process_env(database_url: str, redis_url: str | None, tmp_path, **extra) -> dict:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, SECRET_KEY=SHARED_SECRET, LIENLAC_INSTANCE=str(tmp_path / "instance"),
               UPLOAD_DIR=str(tmp_path / "uploads"), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p))
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


_running: set["Proc"] = set()


class Proc:
    def __init__(self, args, env, log_path):
        self.args = list(args)
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                      start_new_session=True)
        _running.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code; on timeout the process is killed and the test fails with its output."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            raise AssertionError(f"{self.args[3:5]} did not finish in {timeout}s:\n{self.output()[-4000:]}") from None

    def kill(self, sig=signal.SIGTERM, timeout=10):
        """Stop the process and everything it started (its process group); SIGKILL what lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            # the group may outlive its leader (a work horse, the scheduler): make sure it is gone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            if self.popen.poll() is None:
                self.popen.wait(5)
        if not self.log.closed:
            self.log.close()
        _running.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_running):
        proc.kill(signal.SIGKILL, timeout=2)


def lienlac(*args) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]


def run_lienlac(env, *args, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one ``lienlac`` command to completion (stdout and stderr captured as text)."""
    return subprocess.run(lienlac(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def wait_http_ok(proc: Proc, url: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{proc.output()}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not start:\n{proc.output()}")


def _spawn_web(env, tmp_path, name) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(lienlac("serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"), env,
                tmp_path / f"{name}.log")
    return proc, f"http://127.0.0.1:{port}"


def start_web(env, tmp_path, name="web") -> tuple[Proc, str]:
    """``lienlac serve`` on a free port; returns once /healthz answers."""
    proc, url = _spawn_web(env, tmp_path, name)
    wait_http_ok(proc, url, name)
    return proc, url


def start_webs(env, tmp_path, *names) -> list[tuple[Proc, str]]:
    """Several ``lienlac serve`` processes started side by side (quicker than one after the other)."""
    started = [_spawn_web(env, tmp_path, name) for name in names]
    try:
        for (proc, url), name in zip(started, names):
            wait_http_ok(proc, url, name)
    except Exception:
        for proc, _url in started:
            proc.kill()
        raise
    return started


def start_gunicorn(env, tmp_path, name="gunicorn") -> tuple[Proc, str]:
    """The production entry point: ``gunicorn -k gevent -w 1 service.wsgi:app`` on a free port."""
    port = free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{port}",
                "--graceful-timeout", "2", "--no-control-socket", "service.wsgi:app"]
    proc = Proc(gunicorn, env, tmp_path / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(proc, url, name)
    return proc, url


def start_worker(env, tmp_path, name="worker", *extra) -> Proc:
    """``lienlac worker`` (pass "--burst" in ``extra`` to drain the queues and exit)."""
    return Proc(lienlac("worker", "--name", f"{name}-{os.getpid()}-{time.monotonic_ns()}", *extra), env,
                tmp_path / f"{name}-{time.monotonic_ns()}.log")


def wait_for(predicate, timeout: float = 10, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Processes:
    """Processes a test starts, all stopped at teardown (use as the ``procs`` fixture)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started: list[Proc] = []

    def web(self, env, name="web") -> tuple[Proc, str]:
        proc, url = start_web(env, self.tmp_path, name)
        self.started.append(proc)
        return proc, url

    def webs(self, env, *names) -> list[tuple[Proc, str]]:
        started = start_webs(env, self.tmp_path, *names)
        self.started.extend(proc for proc, _url in started)
        return started

    def gunicorn(self, env, name="gunicorn") -> tuple[Proc, str]:
        proc, url = start_gunicorn(env, self.tmp_path, name)
        self.started.append(proc)
        return proc, url

    def worker(self, env, *extra, name="worker") -> Proc:
        proc = start_worker(env, self.tmp_path, name, *extra)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.kill()
        self.started.clear()


requires_postgres = pytest.mark.skipif(
    "postgres" not in os.environ.get("LIENLAC_TEST_DBS", "sqlite,postgres").split(","),
    reason="multi-process tests run on PostgreSQL only")


def truncate_all(url: str) -> None:
    """Empty every table but the migration history and restart the id sequences (PostgreSQL).

    DELETE with foreign-key triggers off (``session_replication_role = replica``), not TRUNCATE:
    a test leaves a few rows, and TRUNCATE of 50 tables costs ~0.4 s (new files for every table)
    where this costs ~2 ms — most of the PostgreSQL half of the suite's time was spent there.
    """
    from service import db as dbmod

    database = dbmod.make_database(url)
    database.connect()
    tables = [t for t in database.get_tables() if not t.startswith("schema_migration")]
    if tables:
        database.execute_sql(
            "SET session_replication_role = replica; "
            + " ".join(f'DELETE FROM "{t}";' for t in tables)
            + " SET session_replication_role = DEFAULT; "
            "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = current_schema();")
    database.close_all() if hasattr(database, "close_all") else database.close()


@contextlib.contextmanager
def shared_app(config, web: bool = False):
    """An app in this (test) process that shares the database, Redis and secret with the subprocesses.

    ``web=False``: like a worker or the CLI, its ``emit_to`` goes out through the Redis queue.
    """
    from .apps import running_app

    with running_app(config, web=web) as app:
        yield app
