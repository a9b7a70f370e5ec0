"""The benchmarks still run: http.py, realtime.py and fanout.py at a tiny size, then the report of run.sh.

Not a speed test (the figures are not checked against any target): it checks that the harness
starts Lienlac as deployed and the bare baselines, that every request and every message got its
answer, and that the aggregation makes one table of the ``--json`` files. The two benchmarks run
side by side to keep this under half a minute.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.support.servers import ROOT, requires_postgres

pytestmark = [requires_postgres, pytest.mark.slow, pytest.mark.redis]


def _run(script: str, out, *args):
    log = open(out.with_suffix(".log"), "wb")
    return subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _finished(proc, out) -> dict:
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    log = out.with_suffix(".log").read_text(errors="replace")
    assert code == 0, log[-4000:]
    return json.loads(out.read_text())


def test_http_and_realtime_benchmarks_run_and_aggregate(tmp_path, redis_url):
    http = _run("http.py", tmp_path / "http.json", "--paths", "conversations", "--rate", "20",
                "--seconds", "1", "--warmup", "0.2", "--embedded-rate", "10", "--embedded-seconds", "1",
                "--ceiling-seconds", "0.3", "--teachers", "1", "--directs", "3", "--classes", "1", "--class-size", "3",
                "--history", "2", "--notifications", "1", "--redis-url", redis_url)
    realtime = _run("realtime.py", tmp_path / "realtime.json", "--pairs", "4", "--teachers", "2", "--burst", "8",
                    "--rate", "10", "--seconds", "0.6", "--warmup", "0.2", "--channel-size", "4", "--rounds", "1",
                    "--client-procs", "1",
                    "--redis-url", redis_url, "--tmp", str(tmp_path / "rt"))
    http_data, rt_data = _finished(http, tmp_path / "http.json"), _finished(realtime, tmp_path / "realtime.json")

    works = [r["work"] for r in http_data["rows"]]
    assert len(works) == 2 and works[0].startswith("GET /conversations (teacher: 3 direct + 1 class) at 20 req/s")
    assert "embedded default (SQLite), p50 ms" in works[1]
    for section in ("pg", "embedded"):
        for path, figures in http_data["details"][section]["paths"].items():
            for setup in ("lienlac", "bare"):
                assert figures[setup]["errors"] == 0 and figures[setup]["sent"] >= 10, (section, path, setup)
        assert http_data["details"][section]["client_ceiling"] > 0
    conversations = http_data["rows"][0]
    assert conversations["target"] == "< 50 ms" and isinstance(conversations["met"], bool)
    assert conversations["lienlac"] > 0 and conversations["bare"] > 0

    for case in ("burst", "paced", "channel"):
        for setup, m in rt_data["details"][case]["medians"].items():
            assert m["received"] == m["expected"] > 0 and m["error_count"] == 0, (case, setup, m)
            assert not math.isnan(m["p99_ms"] or float("nan")), (case, setup)
    targets = {r["target"] for r in rt_data["rows"]}
    assert {"≥ 50 % of bare", "< 50 ms", "< 100 ms"} <= targets

    for name in ("http", "realtime"):
        (tmp_path / f"{name}.status").write_text("0\n")
        (tmp_path / f"{name}.load").write_text("before 2026-12-04T00:00:00Z 1.50 1 1\nafter 2026-12-04T00:01:00Z 2.00 1 1\n")
    (tmp_path / "machine").write_text("2 CPUs")
    report = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), str(tmp_path), "--results",
                             str(tmp_path / "RESULTS.md")], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| work | Lienlac | bare | ratio | target | met? |" in text
    assert text.count("\n| GET ") == 2 and "burst of 8 message:send" in text and "class channel of 4" in text
    assert "| http | 1.5 before, — during, 2.0 after | 0 |" in text
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "run.sh")]).returncode == 0


def test_fanout_benchmark_runs_prints_its_json_line_and_rows(tmp_path, redis_url):
    """fanout.py at 200 guardians with 2 workers: ``--json`` alone prints the one line of figures
    (and nothing else on stdout); ``--json FILE`` gives run.sh's rows."""
    keys = ["guardians", "devices", "inbox_rows_per_s", "copy_rows_per_s", "pushes_per_s",
            "fcm_server_ceiling_per_s", "inbox_s", "end_to_end_s", "accepted"]
    args = [sys.executable, str(ROOT / "benchmarks" / "fanout.py"), "--guardians", "200", "--ceiling-requests", "300",
            "--redis-url", redis_url]
    line = subprocess.run([*args, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert line.returncode == 0, line.stderr[-4000:]
    assert len(line.stdout.strip().splitlines()) == 1, line.stdout
    figures = json.loads(line.stdout)
    assert list(figures) == keys
    assert figures["guardians"] == 200 and figures["accepted"] == figures["devices"] >= 200
    assert all(figures[k] > 0 for k in keys)

    out = tmp_path / "fanout.json"
    written = subprocess.run([*args, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert written.returncode == 0, written.stderr[-4000:]
    assert "check: 200 inbox rows" in written.stdout
    assert list(json.loads(written.stdout.strip().splitlines()[-1])) == keys  # the line, last
    data = json.loads(out.read_text())
    assert data["benchmark"] == "fanout" and set(keys) <= set(data["details"])
    assert [r["target"] for r in data["rows"]] == ["≥ 50 % of bare", "≥ 4,300/s at 100,000 guardians",
                                                   "≤ 30 s at 100,000 guardians"]
    assert all(r["lienlac"] > 0 for r in data["rows"]) and isinstance(data["rows"][0]["met"], bool)
    assert data["rows"][1]["met"] is None and data["rows"][2]["met"] is None  # targets of the full size only
