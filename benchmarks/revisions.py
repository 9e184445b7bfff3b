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
that spread, a few percent here, is what a single comparison is worth.

Run: ``BENCH_BASE=HEAD~1 .venv/bin/python benchmarks/revisions.py`` (a
minute or two; the worktree is removed afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
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
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SMOKE = os.environ.get("BENCH_PROFILE") == "smoke"
WORKLOADS = ("fanout_memory", "fanout_redis", "echo", "pipelined")


@dataclass
class Served:
    """One server and the path its workload goes to."""

    server: BenchServer
    path: str


async def one_run(served: Served) -> tuple[float, int]:
    """Run the workload once: its rate and how many units it did."""
    url = served.server.ws_url + served.path
    if WORKLOAD.startswith("fanout"):
        clients_, sends = (5, 5) if SMOKE else (200, 500)
        fan = await clients.fan_out(url, clients_, sends)
        if fan.lost:
            raise RuntimeError(f"{served.server.name}: {fan.lost} deliveries lost")
        return fan.rate, fan.delivered
    if WORKLOAD == "echo":
        echo_clients, frames = (2, 5) if SMOKE else (50, 100)
        timed = await clients.echo_round_trip(url, echo_clients, frames)
        return timed.rate, echo_clients * frames
    frames = 20 if SMOKE else 3000
    timed = await clients.echo_pipelined(url, frames)
    return timed.rate, frames


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
        f"working tree / base: rate {new_rate / base_rate:.3f}, cpu {new_cpu / base_cpu:.3f}"
    )
    if "plain" in medians:
        plain_rate = medians["plain"][0]
        print(
            f"rate / plain Channels: base {base_rate / plain_rate:.3f}, "
            f"working tree {new_rate / plain_rate:.3f}"
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
                samples = asyncio.run(measure(servers))
        report(samples)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
