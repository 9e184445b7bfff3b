"""What freezing the startup heap does to round-trip latency under load.

Four servers run ``benchmarks.server_app`` under ``python -m chanx.serve``:
chanx with telemetry fully on, and plain Channels (same app, its own
route), each with the default startup freeze and with ``--no-gc-freeze``.
For each in turn, ``BENCH_ROUNDS`` times (default 3), 50 clients ping for
``BENCH_GC_SECONDS`` (default 8), each waiting for its pong. Prints the
median over rounds of round trips/s, of the p50/p99/p99.9/max round trip,
and of the server's full collections (count and mean pause, ``GET
/gcstats``), then the frozen / not frozen ratios. Side by side in one run:
compare rows, not absolute times.

Run: ``python benchmarks/gc_pauses.py`` (``make bench-gc``; a few minutes).
``BENCH_PROFILE=smoke``: one short round with a few clients.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from dataclasses import astuple, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import live_clients as clients  # noqa: E402
from benchmarks.live_servers import (  # noqa: E402
    BenchServer,
    OtlpSink,
    serving,
    telemetry_env,
)

SMOKE = os.environ.get("BENCH_PROFILE") == "smoke"
ROUNDS = 1 if SMOKE else int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = 1.0 if SMOKE else float(os.environ.get("BENCH_GC_SECONDS", "8"))
CLIENTS = 5 if SMOKE else 50
VARIANTS = {
    "chanx, frozen": ("chanx", []),
    "chanx, not frozen": ("chanx", ["--no-gc-freeze"]),
    "plain, frozen": ("plain", []),
    "plain, not frozen": ("plain", ["--no-gc-freeze"]),
}
COLUMNS = ("rt/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "full GCs", "GC2 ms")


@dataclass
class Sample:
    """One variant's measurement in one round."""

    rate: float
    p50: float
    p99: float
    p999: float
    worst: float
    full_collections: int
    full_pause: float


def full_collections(server: BenchServer) -> tuple[int, float]:
    """Full collections so far and the seconds they took."""
    stats = server.gc_stats()
    return int(stats["counts"][2]), float(stats["seconds"][2])


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(server: BenchServer, kind: str) -> Sample:
    count_before, seconds_before = full_collections(server)
    url = f"{server.ws_url}/ws/{kind}/echo/"
    times = sorted(await clients.echo_latencies(url, CLIENTS, SECONDS))
    count_after, seconds_after = full_collections(server)
    if not times:
        raise RuntimeError(f"{server.name}: no round trip completed")
    collections = count_after - count_before
    pause = (seconds_after - seconds_before) / collections if collections else 0.0
    return Sample(
        rate=len(times) / SECONDS,
        p50=quantile(times, 0.5) * 1000,
        p99=quantile(times, 0.99) * 1000,
        p999=quantile(times, 0.999) * 1000,
        worst=times[-1] * 1000,
        full_collections=collections,
        full_pause=pause * 1000,
    )


async def run(
    servers: dict[str, BenchServer], kinds: dict[str, str], rounds: int = ROUNDS
) -> dict[str, list[Sample]]:
    """``rounds`` samples per server, pinging each on its route ``kinds[name]``."""
    samples: dict[str, list[Sample]] = {name: [] for name in servers}
    for round_number in range(rounds):
        # Interleaved: every variant sees the machine's drift alike.
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for name in order:
            samples[name].append(await measure(servers[name], kinds[name]))
    return samples


def report(samples: dict[str, list[Sample]]) -> None:
    medians = {
        name: [
            statistics.median(column)
            for column in zip(*(astuple(s) for s in rows), strict=True)
        ]
        for name, rows in samples.items()
    }
    print(f"{'':20}" + "".join(f"{c:>10}" for c in COLUMNS))
    for name, values in medians.items():
        print(f"{name:20}" + "".join(f"{v:10.1f}" for v in values))
    print("frozen / not frozen (medians):")
    for kind in ("chanx", "plain"):
        frozen, thawed = medians[f"{kind}, frozen"], medians[f"{kind}, not frozen"]
        ratios = [
            f / t if t else float("nan") for f, t in zip(frozen, thawed, strict=True)
        ]
        print(
            f"  {kind:6} rt/s {ratios[0]:.2f}  p99 {ratios[2]:.2f}  "
            f"p99.9 {ratios[3]:.2f}  max {ratios[4]:.2f}"
        )


def main() -> None:
    sink = OtlpSink()
    sink.start()
    try:
        with tempfile.TemporaryDirectory(prefix="chanx-gc-") as tmp:
            workdir = Path(tmp)
            env = telemetry_env(workdir, sink)
            servers = {
                name: BenchServer(
                    name.replace(", ", "_").replace(" ", "_"),
                    env,
                    workdir,
                    launcher="chanx.serve",
                    extra_args=args,
                )
                for name, (_, args) in VARIANTS.items()
            }
            with serving(servers.values()):
                samples = asyncio.run(
                    run(servers, {name: v[0] for name, v in VARIANTS.items()})
                )
        report(samples)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
