#!/usr/bin/env bash
# Run every benchmark, each printing its figures beside a bare baseline measured in the same run.
#   benchmarks/run.sh           full sizes (1,000 sockets; 100,000 guardians / 130,000 devices; 1,500 children: ~10 min)
#   benchmarks/run.sh --quick   small sizes, a minute or two, to check the benchmarks still run
# Needs the local PostgreSQL and Redis, like ./test.sh (run that first: it installs .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ "${1:-}" = "--quick" ]; then
  "$PY" benchmarks/realtime.py --sockets 100 --senders 4 --messages 10 --rounds 1
  "$PY" benchmarks/fanout.py --guardians 2000
  "$PY" benchmarks/nutrition.py --children 300 --rounds 1
  "$PY" benchmarks/timetable.py --seconds 5 --rate 50
  "$PY" benchmarks/contactbook.py --students 300 --classes 7 --events 100 --rounds 2
else
  "$PY" benchmarks/realtime.py
  "$PY" benchmarks/fanout.py
  "$PY" benchmarks/nutrition.py
  "$PY" benchmarks/timetable.py
  "$PY" benchmarks/contactbook.py
fi
