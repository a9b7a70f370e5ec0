"""The real servers the tests use, and helpers to run Lienlac processes (web, worker) for real."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PG_ADMIN_URL = os.environ.get("LIENLAC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("LIENLAC_TEST_REDIS", "redis://127.0.0.1:6379")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(database_url: str, redis_url: str | None, tmp_path, **extra) -> dict:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, SECRET_KEY="shared-test-secret", LIENLAC_INSTANCE=str(tmp_path / "instance"),
               UPLOAD_DIR=str(tmp_path / "uploads"), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Proc:
    def __init__(self, args, env, log_path):
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                      start_new_session=True)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=signal.SIGTERM, timeout=10):
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.log.close()


def lienlac(*args) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]


def start_web(env, tmp_path, name="web") -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(lienlac("serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"), env,
                tmp_path / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{proc.output()}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not start:\n{proc.output()}")


def start_worker(env, tmp_path, name="worker", *extra) -> Proc:
    return Proc(lienlac("worker", "--name", f"{name}-{os.getpid()}-{time.monotonic_ns()}", *extra), env,
                tmp_path / f"{name}.log")
