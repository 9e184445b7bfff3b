"""The live benchmark harness runs end to end (tiny counts): correctness, not speed.

``make bench`` starts real uvicorn servers (chanx with telemetry on and off,
plain Channels, raw ASGI, Redis-backed fan-out) and prints ratios; this runs
it with the ``smoke`` profile and checks that it finished, that every group
delivery arrived, and that the table of ratios was printed. No timing is
asserted: the machine may be busy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import redis_unreachable_reason

# Seven servers start on a shared machine: more than the default 120 s limit.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_output() -> str:
    reason = redis_unreachable_reason()
    if reason is not None:
        pytest.fail(f"the benchmark's Redis fan-out needs Redis: {reason}")
    return run_smoke("benchmarks/live.py")


def run_smoke(script: str, *args: str, **env: str) -> str:
    """Output of ``script`` (with ``args``) run with the smoke profile (and
    ``env``); fails if it failed."""
    result = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env={**os.environ, "BENCH_PROFILE": "smoke", **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def test_every_fan_out_delivery_arrives(smoke_output: str) -> None:
    # Each line also reports the server's CPU per delivery (clock ticks of
    # 10 ms: a smoke run's few deliveries may read 0).
    lines = re.findall(
        r"^\s+fanout_(memory|redis)\s+(chanx|chanx_off|plain)\s.*lost (\d+)"
        r"\s+server cpu\s+(\d+\.\d) us/delivery$",
        smoke_output,
        re.MULTILINE,
    )
    assert {(layer, variant) for layer, variant, *_ in lines} == {
        ("memory", "chanx"),
        ("memory", "chanx_off"),
        ("memory", "plain"),
        ("redis", "chanx"),
        ("redis", "plain"),
    }
    assert [lost for _, _, lost, _ in lines] == ["0"] * 5


def test_prints_a_verdict_for_every_target(smoke_output: str) -> None:
    table = smoke_output.split("target (telemetry on)", 1)[1]
    rows = dict(
        re.findall(
            r"^(\S.*?)\s{2,}(?:-?\d+\.\d+|nan)\s+.*?(PASS|FAIL|-)$", table, re.MULTILINE
        )
    )
    assert set(rows) == {
        "echo round trip, on / plain",
        "echo pipelined, on / plain",
        "echo pipelined, on / raw ASGI",
        "telemetry on / off, round trip",
        "telemetry on / off, pipelined",
        "fan-out in-memory, chanx / plain",
        "fan-out Redis, chanx / plain",
        "chanx lost deliveries",
        "idle memory/conn, chanx / plain",
        "connect+auth rate, chanx / plain",
        "lean on / off, round trip",
        "lean on / plain, round trip",
        "fan-out in-memory, off / plain",
        "lean on / plain, pipelined",
        "cpu per delivery in-mem, chanx/plain",
        "cpu per delivery Redis, chanx/plain",
    }
    assert rows["chanx lost deliveries"] == "PASS"


def test_gc_pause_benchmark_measures_every_variant() -> None:
    # Four servers under python -m chanx.serve, with and without the freeze.
    output = run_smoke("benchmarks/gc_pauses.py")
    number = r"\s+(\d+\.\d)"
    rows = re.findall(
        rf"^((?:chanx|plain), (?:frozen|not frozen)){number * 7}$",
        output,
        re.MULTILINE,
    )
    assert {row[0] for row in rows} == {
        "chanx, frozen",
        "chanx, not frozen",
        "plain, frozen",
        "plain, not frozen",
    }
    # Every variant answered (round trips/s above zero).
    assert all(float(row[1]) > 0 for row in rows)
    ratios = re.findall(r"^  (chanx|plain)\s+rt/s \d+\.\d\d  p99 ", output, re.M)
    assert ratios == ["chanx", "plain"]


def test_revision_benchmark_serves_both_checkouts() -> None:
    # The base checkout is a git worktree of HEAD: it must import its own chanx.
    output = run_smoke(
        "benchmarks/revisions.py",
        BENCH_BASE="HEAD",
        BENCH_WORKLOAD="fanout_memory",
        BENCH_PLAIN="1",
    )
    rows = re.findall(
        r"^  (base|working tree|plain)\s+(\d+)/s\s+cpu\s+\d+\.\d us/unit", output, re.M
    )
    assert [name for name, _ in rows] == ["base", "working tree", "plain"]
    base_chanx = re.search(r"^base: chanx from (\S+)$", output, re.M)
    assert base_chanx is not None
    assert "chanx-base-" in base_chanx[1]
    assert f"working tree: chanx from {ROOT}/chanx/" in output
    assert all(int(rate) > 0 for _, rate in rows)
    assert re.search(r"^working tree / base: rate \d+\.\d{3}, cpu ", output, re.M)
    assert re.search(r"^rate / plain Channels: base \d+\.\d{3}, ", output, re.M)


def test_latency_benchmark_pairs_both_checkouts_with_plain() -> None:
    output = run_smoke("benchmarks/latency.py", BENCH_BASE="HEAD")
    number = r"\s+(\d+\.\d)"
    rows = re.findall(
        rf"^(base|working tree|plain)\s+(\d+){number * 4}\s+(\d+\.\d{{3}})$",
        output,
        re.MULTILINE,
    )
    assert [row[0] for row in rows] == ["base", "working tree", "plain"]
    # Every server answered (round trips/s above zero).
    assert all(int(row[1]) > 0 for row in rows)
    assert re.search(r"rate \d+\.\d{3}$", output, re.MULTILINE)
    assert re.search(r"p99 \d+\.\d{3}$", output, re.MULTILINE)


def test_revision_report_survives_a_cpu_reading_of_zero() -> None:
    # A smoke run's CPU is a few 10 ms clock ticks, often none: the report
    # must say so instead of dividing by it (a CI run once failed on that).
    from benchmarks.revisions import ratio

    assert ratio(800.0, 0.0) == "n/a"
    assert ratio(3.0, 2.0) == "1.500"


def test_revision_benchmark_counts_instructions_under_callgrind() -> None:
    # Both servers run under valgrind (make test installs it): each reports
    # the instructions it executed per round trip, base and working tree.
    output = run_smoke(
        "benchmarks/revisions.py",
        BENCH_BASE="HEAD",
        BENCH_WORKLOAD="echo",
        BENCH_COUNT="instructions",
    )
    rows = re.findall(
        r"^  (base|working tree)\s+(\d+) instructions/unit  rounds: \d+$", output, re.M
    )
    assert [name for name, _ in rows] == ["base", "working tree"]
    # A round trip through uvicorn, Django and chanx is far above 10,000.
    assert all(int(count) > 10_000 for _, count in rows)
    assert re.search(r"^working tree / base: instructions \d+\.\d{3}$", output, re.M)


def test_gc_sources_benchmark_counts_every_variant() -> None:
    output = run_smoke("benchmarks/gc_sources.py")
    rows = re.findall(r"^  (.+?)\s+\d+\.\d(?:\s+\d+\.\d\d){3}$", output, re.MULTILINE)
    assert rows == [
        "telemetry off",
        "spans, batch processor",
        "spans, simple processor",
        "spans, chanx's processor",
        "all on, batch processor",
        "all on, simple processor",
        "all on, chanx's processor",
    ]
    kept = re.findall(r"^  (receive|process) span .*?(\d+\.\d)$", output, re.M)
    assert [name for name, _ in kept] == ["receive", "process"]
    # A queued span always keeps at least itself and its context.
    assert all(float(count) >= 2 for _, count in kept)


def test_telemetry_instructions_counts_a_frame_under_callgrind() -> None:
    output = run_smoke(
        "benchmarks/telemetry_instructions.py",
        BENCH_FRAMES="20,60",
    )
    found = re.search(
        r"^chanx from .+: parts=logs,traces,metrics lines=on encode=on: "
        r"([\d,]+) instructions per frame$",
        output,
        re.M,
    )
    assert found, output
    # Two log lines, a span and its encoding, five samples: far above 10,000.
    assert int(found.group(1).replace(",", "")) > 10_000


@pytest.mark.parametrize("sizes", ["1", "7"])
def test_telemetry_instructions_workload_exports_a_span_per_frame(sizes: str) -> None:
    output = run_smoke(
        "benchmarks/telemetry_instructions.py", "--frames", "40", "--sizes", sizes
    )
    # The frames' spans and the connection's.
    assert "frames=40 spans=41" in output
