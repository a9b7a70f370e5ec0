#!/usr/bin/env bash
# Install Lienlac into .venv and serve it on the embedded default
# (SQLite file in ./instance, jobs in-process, no server needed) on http://127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/lienlac serve --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
