#!/usr/bin/env bash
# Install Lienlac with its dev extra into .venv and run the whole test suite
# on SQLite and on PostgreSQL, with the real Redis, RQ workers and Socket.IO servers.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

# The tests use the real servers on 127.0.0.1: start them when they are not running.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

# The package dependency rules (pyproject.toml [tool.importlinter], docs/architecture.md).
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache

# In one process by default. LIENLAC_TEST_WORKERS=2 (or -n 2) runs pytest-xdist workers, each with its own
# PostgreSQL and Redis database (tests/conftest.py): faster, but the tests that start RQ workers still
# time out now and then that way on this 2-core machine, so CI runs serially.
exec .venv/bin/python -m pytest -n "${LIENLAC_TEST_WORKERS:-0}" "$@"
