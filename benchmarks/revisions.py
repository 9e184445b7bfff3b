"""Two revisions of chanx side by side: did a change make the server cheaper?

Checks ``BENCH_BASE`` (default ``HEAD``) out into a temporary git worktree
and serves ``benchmarks.server_app`` from it and from this working tree, one
uvicorn each, same settings (telemetry fully on unless ``BENCH_TELEMETRY=off``).
With ``BENCH_PLAIN=1`` a plain Channels server runs alongside. For
``BENCH_ROUNDS`` rounds (default 5, the order reversed every other round)
each server gets the workload ``BENCH_WORKLOAD``:

- ``fanout_memory`` / ``fanout_redis``: 200 clients in one group, 500 sends
  (in-memory or Redis layer); the unit is a delivery;
- ``echo``: 50 clients x 100 round trips; the unit is a round trip;
- ``pipelined``: 1 client, 3000 frames; the unit is a frame.

Prints, per server, the median rate, the median server CPU time per unit
(all threads, from ``/proc``) and each round's rate; then the working tree /
base ratios of the medians. CPU per unit is the steadier figure on a busy
machine; the per-round rates show how much the machine moved. Run it with
``BENCH_BASE=HEAD`` and a clean tree first (both servers the same code):
that spread is what a single comparison is worth. It depends on the
machine's neighbours: on one machine 9 echo rounds of the same code read
0.894 in rate and 1.082 in CPU, 31 rounds (``BENCH_ROUNDS=31``, under a
minute) within 3%.

Run: ``BENCH_BASE=HEAD~1 .venv/bin/python benchmarks/revisions.py`` (a
minute or two; the worktree is removed afterwards).

``BENCH_COUNT=instructions`` counts instead of timing: every server runs
under valgrind's callgrind (:mod:`benchmarks.callgrind`) and the report is
the instructions each executed per unit (all its threads, the span export
included: ``GET /gc`` flushes the queued spans, and collects garbage,
before counting starts and before it ends), for one round
(``BENCH_ROUNDS``) of a smaller workload: 10 clients x 300 round trips,
50 clients x 60 sends, 1,000 pipelined frames. Two runs of the same code
read within about 1% of each other, where CPU time reads within 5%: use it
to see a small change. Servers start in a minute or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import callgrind  # noqa: E402
from benchmarks import live_clients as clients  # noqa: E402
from benchmarks.live_servers import (  # noqa: E402
    REDIS_URL,
    BenchServer,
    OtlpSink,
    serving,
    telemetry_env,
)

BASE = os.environ.get("BENCH_BASE", "HEAD")
WORKLOAD = os.environ.get("BENCH_WORKLOAD", "fanout_memory")
COUNT = os.environ.get("BENCH_COUNT", "cpu")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if COUNT == "instructions" else "5"))
SMOKE = os.environ.get("BENCH_PROFILE") == "smoke"
# Workload sizes: smoke, under callgrind (some 50 times slower), timed.
SIZES = {
    "fanout": ((5, 5), (50, 60), (200, 500)),
    "echo": ((2, 5), (10, 300), (50, 100)),
    "pipelined": ((1, 20), (1, 1000), (1, 3000)),
}
WORKLOADS = ("fanout_memory", "fanout_redis", "echo", "pipelined")


@dataclass
class Served:
    """One server and the path its workload goes to."""

    server: BenchServer
    path: str


async def one_run(served: Served) -> tuple[float, int]:
    """Run the workload once: its rate and how many units it did."""
    url = served.server.ws_url + served.path
    kind = "fanout" if WORKLOAD.startswith("fanout") else WORKLOAD
    smoke, counted, timed_size = SIZES[kind]
    count, each = smoke if SMOKE else counted if COUNT == "instructions" else timed_size
    if kind == "fanout":
        fan = await clients.fan_out(url, count, each)
        if fan.lost:
            raise RuntimeError(f"{served.server.name}: {fan.lost} deliveries lost")
        return fan.rate, fan.delivered
    if kind == "echo":
        timed = await clients.echo_round_trip(url, count, each)
        return timed.rate, count * each
    timed = await clients.echo_pipelined(url, each)
    return timed.rate, each


async def measure(servers: dict[str, Served]) -> dict[str, list[tuple[float, float]]]:
    """(rate, server CPU us per unit) per server and round."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    for index in range(1 if SMOKE else ROUNDS):
        order = list(servers) if index % 2 == 0 else list(reversed(servers))
        for name in order:
            server = servers[name].server
            cpu_before = server.cpu_seconds()
            rate, units = await one_run(servers[name])
            cpu = server.cpu_seconds() - cpu_before
            samples[name].append((rate, cpu / max(units, 1) * 1e6))
    return samples


async def count(servers: dict[str, Served], workdir: Path) -> dict[str, list[float]]:
    """Instructions per unit, per server and round (servers under callgrind)."""
    counted: dict[str, list[float]] = {name: [] for name in servers}
    for name, served in servers.items():
        server = served.server
        assert server.process is not None
        counter = callgrind.Counter(server.process.pid, callgrind_file(workdir, server))
        await one_run(served)  # warm-up: imports, caches, the first connections
        for _ in range(1 if SMOKE else ROUNDS):
            # /gc exports the spans still queued: each run pays for its own.
            server.collect_garbage()
            counter.zero()
            _, units = await one_run(served)
            server.collect_garbage()
            counted[name].append(counter.read() / max(units, 1))
    return counted


def report_counts(counted: dict[str, list[float]]) -> None:
    print(f"{WORKLOAD}: base {BASE} vs working tree, instructions per unit")
    medians = {name: statistics.median(rows) for name, rows in counted.items()}
    for name, rows in counted.items():
        each = " ".join(f"{row:.0f}" for row in rows)
        print(f"  {name:13} {medians[name]:10.0f} instructions/unit  rounds: {each}")
    base, new = medians["base"], medians["working tree"]
    print(f"working tree / base: instructions {ratio(new, base)}")
    if "plain" in medians:
        plain = medians["plain"]
        print(
            f"instructions / plain Channels: base {ratio(base, plain)}, "
            f"working tree {ratio(new, plain)}"
        )


def callgrind_file(workdir: Path, server: BenchServer) -> Path:
    return workdir / f"callgrind-{server.name}.out"


def ratio(new: float, base: float) -> str:
    """``new / base`` to three places, or ``n/a`` when ``base`` read zero
    (CPU is counted in 10 ms clock ticks: a short run may read none)."""
    return f"{new / base:.3f}" if base else "n/a"


def report(samples: dict[str, list[tuple[float, float]]]) -> None:
    medians = {
        name: (
            statistics.median(rate for rate, _ in rows),
            statistics.median(cpu for _, cpu in rows),
        )
        for name, rows in samples.items()
    }
    print(f"{WORKLOAD}: base {BASE} vs working tree, {len(samples['base'])} rounds")
    for name, rows in samples.items():
        rate, cpu = medians[name]
        each = " ".join(f"{r:.0f}" for r, _ in rows)
        print(f"  {name:13} {rate:9.0f}/s  cpu {cpu:7.1f} us/unit  rounds: {each}")
    (base_rate, base_cpu), (new_rate, new_cpu) = (
        medians["base"],
        medians["working tree"],
    )
    print(
        f"working tree / base: rate {ratio(new_rate, base_rate)}, "
        f"cpu {ratio(new_cpu, base_cpu)}"
    )
    if "plain" in medians:
        plain_rate = medians["plain"][0]
        print(
            f"rate / plain Channels: base {ratio(base_rate, plain_rate)}, "
            f"working tree {ratio(new_rate, plain_rate)}"
        )


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A temporary checkout of ``revision`` (removed on exit)."""
    with tempfile.TemporaryDirectory(prefix="chanx-base-") as tmp:
        path = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "remove", "--force", str(path)], check=False)


def make_servers(base_root: Path, workdir: Path, sink: OtlpSink) -> dict[str, Served]:
    env = telemetry_env(workdir, sink, os.environ.get("BENCH_TELEMETRY", "on"))
    run_id = uuid.uuid4().hex[:8]

    def env_for(tag: str) -> dict[str, str]:
        if WORKLOAD != "fanout_redis":
            return env
        return {**env, "REDIS_URL": REDIS_URL, "CHANNELS_PREFIX": f"rev{run_id}{tag}"}

    kind = "fanout" if WORKLOAD.startswith("fanout") else "echo"
    servers = {
        "base": Served(
            BenchServer("base", env_for("b"), workdir, root=base_root),
            f"/ws/chanx/{kind}/",
        ),
        "working tree": Served(
            BenchServer("working", env_for("w"), workdir), f"/ws/chanx/{kind}/"
        ),
    }
    if os.environ.get("BENCH_PLAIN"):
        servers["plain"] = Served(
            BenchServer("plain", env_for("p"), workdir), f"/ws/plain/{kind}/"
        )
    if COUNT == "instructions":
        for served in servers.values():
            server = served.server
            server.wrapper = callgrind.wrapper(callgrind_file(workdir, server))
            server.startup_timeout = 600.0
    return servers


def chanx_location(server: BenchServer) -> str:
    """Where ``server``'s environment imports chanx from (its own checkout's)."""
    env = {**server.env, **server.launch_env()}
    found = subprocess.run(
        [sys.executable, "-c", "import chanx; print(chanx.__file__)"],
        cwd=server.root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def main() -> None:
    if WORKLOAD not in WORKLOADS:
        raise SystemExit(f"BENCH_WORKLOAD must be one of {', '.join(WORKLOADS)}")
    if COUNT not in ("cpu", "instructions"):
        raise SystemExit("BENCH_COUNT must be cpu or instructions")
    missing = callgrind.available() if COUNT == "instructions" else None
    if missing is not None:
        raise SystemExit(f"BENCH_COUNT=instructions needs valgrind: {missing}")
    sink = OtlpSink()
    sink.start()
    try:
        with (
            worktree(BASE) as base_root,
            tempfile.TemporaryDirectory(prefix="chanx-rev-") as tmp,
        ):
            servers = make_servers(base_root, Path(tmp), sink)
            for name, served in servers.items():
                print(f"{name}: chanx from {chanx_location(served.server)}")
            with serving(served.server for served in servers.values()):
                if COUNT == "instructions":
                    counted = asyncio.run(count(servers, Path(tmp)))
                    show = functools.partial(report_counts, counted)
                else:
                    samples = asyncio.run(measure(servers))
                    show = functools.partial(report, samples)
        show()
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
