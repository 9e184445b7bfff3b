"""Smoke runs of the locust load test, so ``loadtests/`` never rots.

Each test runs the real launcher (``python -m loadtests.run``) as a
subprocess: it starts the demo in uvicorn on loopback with Redis and a
SQLite database, runs locust headless for a few seconds with a few users and
writes the reports. Locust itself is never imported here (it monkey-patches
the standard library with gevent).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import REPO_ROOT, redis_unreachable_reason

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 100.0
RELAXED_P99 = ("--max-p99-ms", "60000")

EXPECTED = {
    "ping": {("WS", "connect+auth"), ("WS", "ping")},
    "chat": {("WS", "connect+auth"), ("WS", "chat echo"), ("WS", "chat fanout")},
    "broadcast": {
        ("WS", "connect+auth"),
        ("WS", "broadcast echo"),
        ("WS", "broadcast fanout"),
        ("POST", "/api/announce/"),
        ("WS", "announce receipt"),
        ("WS", "ping"),
    },
    "churn": {("WS", "connect+auth"), ("WS", "churn cycle")},
}
EXPECTED["mixed"] = set().union(*EXPECTED.values())


@pytest.fixture(autouse=True)
def _redis() -> None:
    reason = redis_unreachable_reason()
    if reason is not None:
        pytest.fail(f"the load-test smoke runs need Redis: {reason}", pytrace=False)


def run_loadtest(
    reports: Path, scenario: str, users: int, seconds: int, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the launcher; returns its result and the reports' file prefix.

    Latency is not what a smoke run checks (no time assertions in tests): the
    p99 gate is relaxed unless a test sets it.
    """
    if "--max-p99-ms" not in extra:
        extra = (*extra, *(() if "--" in extra else ("--",)), *RELAXED_P99)
    result = subprocess.run(
        [
            sys.executable, "-m", "loadtests.run", "--scenario", scenario,
            "--users", str(users), "--spawn-rate", str(users),
            "--duration", str(seconds), "--reports-dir", str(reports), *extra,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )  # fmt: skip
    workers = extra[extra.index("--workers") + 1] if "--workers" in extra else "1"
    return result, reports / f"{scenario}-w{workers}-u{users}"


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}"


def load_rows(prefix: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Locust's own JSON report: one row per (request type, name)."""
    rows = json.loads(Path(f"{prefix}.json").read_text())
    return {(row["method"], row["name"]): row for row in rows}


def assert_clean_run(
    result: subprocess.CompletedProcess[str], prefix: Path, expected: set[Any]
) -> None:
    assert result.returncode == 0, output(result)
    rows = load_rows(prefix)
    for key in sorted(expected):
        assert key in rows, f"{key} missing from the report\n{output(result)}"
        row = rows[key]
        assert row["num_requests"] - row["num_failures"] > 0, (key, row)
    lost = {k: r["num_failures"] for k, r in rows.items() if k[0] == "LOST"}
    duplicated = {k: r["num_failures"] for k, r in rows.items() if k[0] == "DUPLICATE"}
    assert not lost, f"lost messages: {lost}\n{output(result)}"
    assert not duplicated, f"duplicated messages: {duplicated}"
    summary = json.loads(Path(f"{prefix}_summary.json").read_text())
    assert summary["verdict"]["passed"], summary["verdict"]
    assert summary["verdict"]["lost"] == 0
    # The CSV and HTML reports are there too, with the same request names.
    stats_csv = Path(f"{prefix}_stats.csv").read_text()
    assert all(f",{name}," in stats_csv for _, name in expected), stats_csv
    assert Path(f"{prefix}.html").stat().st_size > 0
    assert "SLO gates: PASSED" in result.stdout
    # Nothing went wrong server-side either (the launcher lists warnings and
    # errors from the uvicorn logs; the readiness probe's 401 is expected).
    server_problems = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("loadtests: server")
        and ("error" in line or "traceback" in line or "killed" in line)
    ]
    assert not server_problems, "\n".join(server_problems)


def test_mixed_scenario_over_two_processes_reports_every_exchange(
    tmp_path: Path,
) -> None:
    result, prefix = run_loadtest(tmp_path, "mixed", 14, 8, "--workers", "2")
    assert_clean_run(result, prefix, EXPECTED["mixed"])
    # Users were spread over both uvicorn processes.
    hosts = result.stdout.split(" against ", 1)[1].splitlines()[0].split(", ")
    assert len(set(hosts)) == 2, result.stdout
    for name in ("w1", "w2"):
        log = Path(f"{prefix}_uvicorn-{name}.log").read_text()
        assert "/ws/chat/" in log or "websocket" in log.lower(), log[-2000:]
        # Served as the image serves it: python -m chanx.serve drained it.
        assert '"event":"drain_finished"' in log, log[-2000:]


@pytest.mark.parametrize("scenario", ["ping", "chat", "broadcast", "churn"])
def test_each_scenario_runs_clean(tmp_path: Path, scenario: str) -> None:
    result, prefix = run_loadtest(tmp_path, scenario, 5, 5)
    assert_clean_run(result, prefix, EXPECTED[scenario])


def test_an_unmeetable_p99_gate_fails_the_run(tmp_path: Path) -> None:
    result, prefix = run_loadtest(
        tmp_path, "ping", 3, 3, "--", "--max-p99-ms", "0.0001"
    )
    assert result.returncode == 1, output(result)
    assert "SLO gate FAILED: p99 of 'ping'" in result.stdout, output(result)
    verdict = json.loads(Path(f"{prefix}_summary.json").read_text())["verdict"]
    assert not verdict["passed"]
    assert verdict["lost"] == 0
    assert verdict["worst_p99_ms"] > 0.0001
