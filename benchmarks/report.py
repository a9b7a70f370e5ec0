"""One table from the benchmarks' ``--json`` files and the load ``run.sh`` sampled around each.

    python benchmarks/report.py OUT_DIR [--results benchmarks/RESULTS.md]

``OUT_DIR`` holds, per benchmark NAME: ``NAME.json`` (its rows: work, Lienlac, bare, ratio, target,
met?), ``NAME.load`` (lines ``PHASE ISO-TIME LOADAVG-1 LOADAVG-5 LOADAVG-15 …`` with PHASE before,
during or after, as ``run.sh`` writes them), ``NAME.status`` (its exit code) and ``NAME.cmd``; and
``machine`` (uptime, CPU count). Prints the table and writes it, the load, the date and the git commit
to ``--results``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fmt(x, digits: int | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, (int, float)):
        if digits is None:
            digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 1 else 2)
        return f"{x:,.{digits}f}"
    return str(x)


def load_of(path: Path) -> dict:
    phases: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] in phases:
                phases[parts[0]].append(float(parts[2]))
    return phases


def load_text(phases: dict) -> str:
    during = phases["during"]
    return (f"{fmt(phases['before'][0], 1) if phases['before'] else '—'} before, "
            + (f"{min(during):.1f}–{max(during):.1f} during ({len(during)} samples), " if during else "— during, ")
            + f"{fmt(phases['after'][0], 1) if phases['after'] else '—'} after")


def build(out: Path) -> tuple[str, bool]:
    """The markdown report and whether every benchmark ran to its end (exit code 0)."""
    names = [p.stem for p in sorted(out.glob("*.status"), key=lambda p: p.stat().st_mtime)]  # in the order run
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    machine = (out / "machine").read_text().strip() if (out / "machine").exists() else ""
    lines = [f"# Benchmark results", "",
             f"Produced by `benchmarks/run.sh` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, git commit "
             f"`{commit}`{' (with uncommitted changes)' if dirty else ''}. {machine}", "",
             "| work | Lienlac | bare | ratio | target | met? |", "|---|---|---|---|---|---|"]
    loads, ok = [], True
    for name in names:
        status = (out / f"{name}.status").read_text().strip()
        ok &= status == "0"
        loads.append(f"| {name} | {load_text(load_of(out / f'{name}.load'))} | {status} |")
        data = json.loads((out / f"{name}.json").read_text()) if (out / f"{name}.json").exists() else None
        rows = (data or {}).get("rows")
        if not rows:
            cmd = (out / f"{name}.cmd").read_text().strip() if (out / f"{name}.cmd").exists() else name
            lines.append(f"| `{cmd}`: {'no --json rows, see its output' if status == '0' else 'failed (exit ' + status + ')'}"
                         " | | | | | |")
            continue
        for r in rows:
            lien = fmt(r.get("lienlac")) + (f" ({r['note']})" if r.get("note") else "")
            ratio = fmt(r.get("ratio"), 2)
            lines.append(f"| {r['work']} | {lien} | {fmt(r.get('bare'))} | {ratio} | {r.get('target') or '—'} | "
                         f"{fmt(r.get('met')) if r.get('met') is not None else '—'} |")
    lines += ["", "Ratio = Lienlac / bare (for latencies lower is better, for throughput higher). Load: the 1-minute "
              "load average sampled every 5 s.", "", "| benchmark | load average | exit |", "|---|---|---|", *loads]
    return "\n".join(lines) + "\n", ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--results", type=Path, default=None, help="write the report here (markdown)")
    args = parser.parse_args(argv)
    text, ok = build(args.out)
    print("\n" + text)
    if args.results:
        args.results.write_text(text)
        print(f"written to {args.results}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
