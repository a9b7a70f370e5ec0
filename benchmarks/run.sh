#!/usr/bin/env bash
# Run every benchmark, each measuring Lienlac beside a bare baseline in the same run, and print ONE
# table (work | Lienlac | bare | ratio | target | met?) with the machine's load before, during and
# after each benchmark; write it to benchmarks/RESULTS.md with the date and the git commit.
#   benchmarks/run.sh                  full sizes (the issue-13 targets; a quiet machine: ~25 min)
#   benchmarks/run.sh --quick          small sizes, a few minutes, to check the benchmarks still run
#                                      (its table goes to a temporary file, never to RESULTS.md)
#   benchmarks/run.sh --results PATH   write the report there instead
# Needs the local PostgreSQL and Redis, like ./test.sh (run that first: it installs .venv). One run at
# a time: the benchmarks' workers share Redis database 6's job queues.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
quick=0
results=benchmarks/RESULTS.md
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --results) results="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--results PATH]" >&2; exit 2 ;;
  esac
  shift
done
out=$(mktemp -d /tmp/lienlac-bench-run-XXXXXX)
if [ "$quick" = 1 ] && [ "$results" = benchmarks/RESULTS.md ]; then
  results="$out/RESULTS.md"
fi
echo "$(nproc) CPUs; uptime at start: $(uptime)" > "$out/machine"
cat "$out/machine"

stamp() { echo "$1 $(date -u +%FT%TZ) $(cat /proc/loadavg)"; }

# bench NAME SCRIPT ARGS...: run one benchmark with --json (when it has it), sampling the load every 5 s
bench() {
  local name="$1"; shift
  local script="$1"; shift
  local args=("$@")
  if "$PY" "$script" --help 2>/dev/null | grep -- "--json" >/dev/null; then  # (not -q: no SIGPIPE under pipefail)
    args+=(--json "$out/$name.json")
  fi
  echo "$script ${*}" > "$out/$name.cmd"
  echo; echo "=== $name: $script $*"
  stamp before > "$out/$name.load"
  ( while sleep 5; do stamp during; done >> "$out/$name.load" ) &
  local sampler=$!
  local status=0
  "$PY" "$script" "${args[@]}" || status=$?
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  stamp after >> "$out/$name.load"
  echo "$status" > "$out/$name.status"
}

if [ "$quick" = 1 ]; then
  bench http benchmarks/http.py --rate 50 --seconds 3 --warmup 1 --embedded-rate 10 --embedded-seconds 3 \
    --directs 10 --class-size 10 --history 4 --notifications 5
  bench realtime benchmarks/realtime.py --pairs 20 --teachers 4 --burst 40 --rate 20 --seconds 3 --rounds 1
  bench realtime-broadcast benchmarks/realtime.py --cases broadcast --sockets 100 --senders 4 --messages 10 --rounds 1
  bench fanout benchmarks/fanout.py --guardians 2000
  bench nutrition benchmarks/nutrition.py --children 300 --rounds 1
  bench timetable benchmarks/timetable.py --seconds 5 --rate 50
  bench contactbook benchmarks/contactbook.py --students 300 --classes 7 --events 100 --rounds 2
else
  bench http benchmarks/http.py
  # 3 rounds: a 200-message burst lasts 50-200 ms, and the first round after the sockets connect is
  # the slowest for both set-ups; the median of 3 is less at the mercy of one round than that of 2
  bench realtime benchmarks/realtime.py --rounds 3
  bench realtime-broadcast benchmarks/realtime.py --cases broadcast
  bench fanout benchmarks/fanout.py
  bench nutrition benchmarks/nutrition.py
  bench timetable benchmarks/timetable.py
  bench contactbook benchmarks/contactbook.py
fi

"$PY" benchmarks/report.py "$out" --results "$results"
