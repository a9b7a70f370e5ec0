"""What the benchmarks share: a scratch PostgreSQL database, Lienlac processes started the way a
deployment starts them, the open-loop HTTP load generator, the bare Flask server, percentiles,
the machine's load and the ``--json`` output that ``run.sh`` aggregates into one table.

Not a test helper and not part of the package: imported by the scripts in this folder (they put the
repository root on ``sys.path``; this module does too).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("LIENLAC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# benchmarks use Redis database 6 and Socket.IO channels of their own (pub/sub ignores the database
# number); RQ's queue names are fixed, so run one benchmark with a worker at a time on one database
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")


# --- figures -----------------------------------------------------------------------------------
def pct(sorted_values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of an already sorted list; NaN when empty."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))]


def summary_ms(latencies_s: list[float]) -> dict:
    """p50 / p90 / p99 / max / mean in milliseconds of latencies given in seconds."""
    values = sorted(x * 1000 for x in latencies_s)
    return {"p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99),
            "max": values[-1] if values else float("nan"),
            "mean": sum(values) / len(values) if values else float("nan"), "count": len(values)}


def ratio(a, b):
    try:
        return a / b if a is not None and b and not math.isnan(a) and not math.isnan(b) else None
    except TypeError:
        return None


def row(work: str, metric: str, lienlac, bare=None, target: str | None = None, *, below=None,
        ratio_at_least=None) -> dict:
    """One line of run.sh's table. ``below``: the target holds when Lienlac's figure is under it;
    ``ratio_at_least``: when Lienlac / bare is at least it (throughput)."""
    r = ratio(lienlac, bare)
    met = None
    if below is not None:
        met = lienlac is not None and not math.isnan(lienlac) and lienlac < below
    elif ratio_at_least is not None:
        met = r is not None and r >= ratio_at_least
    return {"work": work, "metric": metric, "lienlac": lienlac, "bare": bare, "ratio": r, "target": target,
            "met": met}


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - informative only
        return "unknown"


def write_json(path: str | None, benchmark: str, rows: list[dict], details: dict, load_before: list[float]) -> None:
    """``--json PATH`` (``-`` for stdout): the rows of run.sh's table and the raw figures."""
    if not path:
        return
    payload = {"benchmark": benchmark, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "commit": git_commit(), "cpus": os.cpu_count(), "load": {"before": load_before, "after": load_now()},
               "rows": rows, "details": details}
    text = json.dumps(payload, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    if path == "-":
        print(text, flush=True)
    else:
        Path(path).write_text(text)


# --- seeding ---------------------------------------------------------------------------------
SUBJECTS = ["Toán", "Ngữ văn", "Tiếng Anh", "Khoa học tự nhiên", "Lịch sử và Địa lí", "Tin học", "Công nghệ",
            "Giáo dục công dân", "Nghệ thuật", "Giáo dục thể chất", "Hoạt động trải nghiệm", "Toán"]


def week_periods(teacher_ids: list[int], offset: int = 0) -> list[dict]:
    """A full week (6 days × 8 periods, a lunch break) for ``set_timetable``, with ``teacher_ids``
    in turn; classes given offsets len(teacher_ids) / classes apart never clash."""
    periods = []
    for weekday in range(1, 7):
        for p in range(1, 9):
            start = 7 * 60 + (p - 1) * 50 + (20 if p > 4 else 0) + (90 if p > 5 else 0)
            t = (weekday * 3 + p + offset) % len(teacher_ids)
            periods.append({"weekday": weekday, "period": p, "start": f"{start // 60:02d}:{start % 60:02d}",
                            "end": f"{(start + 45) // 60:02d}:{(start + 45) % 60:02d}",
                            "subject": SUBJECTS[t % len(SUBJECTS)], "teacher_id": teacher_ids[t], "room": "P.201"})
    return periods


# --- a scratch database ------------------------------------------------------------------------
@contextlib.contextmanager
def scratch_database(prefix: str, admin_url: str = PG_ADMIN_URL):
    """A fresh PostgreSQL database (its URL), dropped afterwards with whatever still holds it."""
    import peewee
    from playhouse.db_url import parse

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = peewee.PostgresqlDatabase(**parse(admin_url))
    admin.connect()
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    admin.close()
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.connect()
        admin.execute_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                          "AND pid <> pg_backend_pid()")
        admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


# --- Lienlac as a deployment runs it -----------------------------------------------------------
def deployment_env(database_url: str, redis_url: str | None, tmp: Path, secret: str, channel: str | None = None,
                   **extra) -> dict:
    """The environment the README gives a process: DATABASE_URL, REDIS_URL, SECRET_KEY, UPLOAD_DIR, a
    SOCKETIO_CHANNEL of its own (a shared Redis server) and, with Redis (production), the gevent
    server (README, "Production deployment"). Without Redis: the embedded default, nothing else set.
    Logging stays as shipped (INFO, a JSON line per request, into the process's log file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIENLAC_TEST", "SOCKETIO_", "REDIS_URL",
                                                                    "DATABASE_URL", "LOG_LEVEL", "MESSAGE_RATE"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY=secret, LIENLAC_INSTANCE=str(tmp / "instance"),
               UPLOAD_DIR=str(tmp / "uploads"), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p))
    if redis_url:
        env.update(REDIS_URL=redis_url, SOCKETIO_ASYNC_MODE="gevent",
                   SOCKETIO_CHANNEL=channel or f"bench-{uuid.uuid4().hex}")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def lienlac_command(*args: str) -> list[str]:
    """``lienlac …`` as installed (the console script beside this interpreter)."""
    script = Path(sys.executable).with_name("lienlac")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "service.cli", *args]


def start_serve(env: dict, tmp: Path, name: str = "lienlac"):
    """``lienlac serve --host 127.0.0.1 --port P`` (not yet waited for); returns ``(Proc, base URL)``."""
    from tests.support.servers import Proc, free_port

    port = free_port()
    proc = Proc(lienlac_command("serve", "--host", "127.0.0.1", "--port", str(port)), env, tmp / f"{name}.log")
    return proc, f"http://127.0.0.1:{port}"


def start_worker(env: dict, tmp: Path, name: str = "worker"):
    """``lienlac worker`` (as shipped)."""
    from tests.support.servers import Proc

    return Proc(lienlac_command("worker", "--name", f"bench-{name}-{uuid.uuid4().hex[:8]}"), env, tmp / f"{name}.log")


def wait_ready(proc, base: str, name: str, timeout: float = 90, probe: str = "/healthz") -> None:
    """Until ``base + probe`` answers 200 (the process's log in the error if it exits or never does)."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"{name} exited:\n{proc.output()[-3000:]}")
        try:
            if requests.get(base + probe, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not start in {timeout:g} s:\n{proc.output()[-3000:]}")


def stop_all(procs: list) -> None:
    for proc in reversed(procs):
        with contextlib.suppress(Exception):
            proc.kill()


# --- plain subprocesses (nutrition.py) ----------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(proc: subprocess.Popen, url: str, timeout: float = 60) -> None:
    """Until ``url`` answers at all (any status)."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({url}); see its log")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    import signal

    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


# --- the bare Flask server ---------------------------------------------------------------------
BARE_FLASK = r'''
import json, re, sys
mode, port, bodies_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "gevent":
    from gevent import monkey
    monkey.patch_all()
from flask import Flask, Response, request
# the body Lienlac answered for each path shape (numbers replaced by N), read once
bodies = {key: open(path, "rb").read() for key, path in json.load(open(bodies_file)).items()}
digits = re.compile(r"\d+")
app = Flask("bare")

@app.get("/healthz")
def health():
    return {"status": "ok"}

@app.get("/api/v1/<path:rest>")
def answer(rest):
    body = bodies.get(digits.sub("N", request.path))
    if body is None:
        return Response("{}", status=404, content_type="application/json")
    return Response(body, content_type="application/json")

if mode == "gevent":
    import socket
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class NoDelay(WSGIHandler):  # as any HTTP server should (and lienlac serve does): no Nagle delay
        def handle(self):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return super().handle()

    WSGIServer(("127.0.0.1", port), app, log=None, handler_class=NoDelay).serve_forever()
else:
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run("127.0.0.1", port, threaded=True)
'''


def path_shape(path: str) -> str:
    import re

    return re.sub(r"\d+", "N", path.split("?", 1)[0])


def start_bare_flask(bodies: dict[str, bytes], tmp: Path, mode: str = "gevent", name: str = "bare"):
    """A plain Flask app on gevent's WSGI server (or Werkzeug threaded) answering each path with the
    bytes Lienlac answered for its shape (``bodies``: path → body): no database, no auth."""
    from tests.support.servers import Proc, free_port

    files = {}
    for i, (path, body) in enumerate(bodies.items()):
        file = tmp / f"{name}-body-{i}.json"
        file.write_bytes(body)
        files[path_shape(path)] = str(file)
    index = tmp / f"{name}-bodies.json"
    index.write_text(json.dumps(files))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENLAC_TEST")}
    proc = Proc([sys.executable, "-c", BARE_FLASK, mode, str(port), str(index)], env, tmp / f"{name}.log")
    base = f"http://127.0.0.1:{port}"
    wait_ready(proc, base, name)
    return proc, base


# --- the open-loop HTTP load generator ---------------------------------------------------------
async def _open_loop(base: str, targets: list, rate: float, total: int, start: float, part: int, parts: int,
                     connections: int) -> list[tuple[float, float, float, int]]:
    """Requests part, part + parts, … of ``total``; request i is due at start + i / rate.
    Returns (due, sent, done, status) per request: status -1 for a connection error or timeout."""
    import aiohttp

    results: list[tuple[float, float, float, int]] = []
    connector = aiohttp.TCPConnector(limit=connections)  # beyond it requests wait (still timed from when due)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(i: int, due: float):
            path, headers = targets[i % len(targets)]
            sent, status = time.monotonic(), 0
            try:
                async with session.get(base + path, headers=headers) as response:
                    await response.read()
                    status = response.status
            except Exception:  # noqa: BLE001 - counted as an error
                status = -1
            results.append((due, sent, time.monotonic(), status))

        tasks = []
        for i in range(part, total, parts):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, due)))
        await asyncio.gather(*tasks)
    return results


def _open_loop_part(args) -> list:
    return asyncio.run(_open_loop(*args))


def open_loop(base: str, targets: list[tuple[str, dict]], rate: float, seconds: float, warmup: float = 2.0,
              connections: int = 100, client_procs: int = 1) -> dict:
    """GET ``targets`` (path, headers) in turn at ``rate`` requests/s for ``warmup`` + ``seconds``.

    Open loop: request i is due at start + i / rate whatever happened to the others, and its latency
    counts from when it was due (a server that falls behind shows its queue). asyncio + aiohttp,
    at most ``connections`` keep-alive connections per client process (a request due while all are
    busy waits, and that wait counts), ``client_procs`` processes taking every n-th request. The
    first ``warmup`` seconds are not counted; a request unanswered in 60 s is an error.
    ``send_lag`` is how late the client itself started requests (its own ceiling showing)."""
    total = int(rate * (seconds + warmup))
    start = time.monotonic() + 0.3 + 0.7 * (client_procs > 1)  # CLOCK_MONOTONIC is one clock for every process
    if client_procs > 1:
        with mp.get_context("spawn").Pool(client_procs) as pool:
            parts = pool.map(_open_loop_part, [(base, targets, rate, total, start, p, client_procs, connections)
                                               for p in range(client_procs)])
        results = [r for part in parts for r in part]
    else:
        results = asyncio.run(_open_loop(base, targets, rate, total, start, 0, 1, connections))
    counted = [r for r in results if r[0] >= start + warmup]
    ok = [done - due for due, _sent, done, status in counted if status == 200]
    errors: dict[str, int] = {}
    for *_x, status in counted:
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
    span = (max(r[2] for r in counted) - min(r[0] for r in counted)) if counted else 0.0
    lag = summary_ms([sent - due for due, sent, _done, _s in counted])
    return {"sent": len(counted), "errors": sum(errors.values()), "error_statuses": errors,
            "rate": len(counted) / span if span else 0.0, **summary_ms(ok), "send_lag_p99": lag["p99"]}


async def _closed_loop(base: str, targets: list, seconds: float, connections: int) -> dict:
    import aiohttp

    done = {"n": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        end = time.monotonic() + seconds

        async def loop(k: int):
            i = k
            while time.monotonic() < end:
                path, headers = targets[i % len(targets)]
                i += connections
                try:
                    async with session.get(base + path, headers=headers) as response:
                        await response.read()
                        done["n" if response.status == 200 else "errors"] += 1
                except Exception:  # noqa: BLE001
                    done["errors"] += 1

        started = time.monotonic()
        await asyncio.gather(*(loop(k) for k in range(connections)))
        return {"per_second": done["n"] / (time.monotonic() - started), "errors": done["errors"]}


def client_ceiling(base: str, targets: list[tuple[str, dict]], seconds: float = 3.0, connections: int = 32) -> dict:
    """Requests/s one client process completes against ``base`` as fast as it can (closed loop,
    ``connections`` at once): against the bare server, the ceiling of the load generator (and the
    bare server) on this machine — an open loop far below it measures the server, not the client."""
    return asyncio.run(_closed_loop(base, targets, seconds, connections))


def health_ms(base: str, n: int = 5) -> float:
    """The median time /healthz takes to answer, ms (a reference for ``settle``)."""
    import requests

    times = []
    for _ in range(n):
        t0 = time.monotonic()
        with contextlib.suppress(requests.RequestException):
            requests.get(base + "/healthz", timeout=10)
        times.append((time.monotonic() - t0) * 1000)
        time.sleep(0.05)
    return sorted(times)[len(times) // 2]


def settle(base: str, reference_ms: float, timeout: float = 60.0) -> float:
    """After a saturating run, wait until /healthz answers three times in a row about as fast as it
    did before (``reference_ms``, from ``health_ms``): the requests the client gave up on may still
    be queued in the server. Returns the seconds waited."""
    import requests

    started, quick = time.monotonic(), 0
    while quick < 3 and time.monotonic() - started < timeout:
        t0 = time.monotonic()
        try:
            requests.get(base + "/healthz", timeout=10)
            quick = quick + 1 if (time.monotonic() - t0) * 1000 < 2 * reference_ms + 10 else 0
        except requests.RequestException:
            quick = 0
        time.sleep(0.1)
    return time.monotonic() - started


def print_http(name: str, r: dict) -> None:
    print(f"  {name:<10} sent {r['sent']:>6}  errors {r['errors']:>4}  achieved {r['rate']:>6.1f}/s  "
          f"p50 {r['p50']:>8.1f}  p99 {r['p99']:>8.1f}  max {r['max']:>8.1f} ms  (client lag p99 "
          f"{r['send_lag_p99']:.1f} ms)" + (f"  statuses {r['error_statuses']}" if r["errors"] else ""), flush=True)
