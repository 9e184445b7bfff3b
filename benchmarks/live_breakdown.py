"""What each telemetry signal costs a live chanx echo server, per frame.

One uvicorn server per configuration (same app, same options; see
``live.py``), measured in turn for ``BENCH_ROUNDS`` rounds (default 3) with
the round-trip and pipelined echoes. Prints the median frames/s, the
microseconds per frame each configuration adds to telemetry off, the
server's CPU time (all threads, from ``/proc``, and its event loop thread
alone) per round trip, and the time it spent collecting garbage (``GET
/gcstats``) per round trip with its young and full collections per 1,000
round trips: throughput also depends on how the two cores are shared, CPU
time much less. Plain Channels' echo runs too, under the "all on" settings
(it emits no telemetry). The machine's load shifts the absolute numbers;
compare the rows.

``BENCH_BREAKDOWN=fanout`` measures group fan-out instead (200 clients in
one group, 200 sends, in-memory layer): deliveries/s, the microseconds each
configuration adds per delivery, the server's CPU time (all its threads)
and its garbage collection time, in microseconds per delivery, with its
young and full collections per 1,000 deliveries.

Run: ``python benchmarks/live_breakdown.py`` (a couple of minutes).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
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

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WORKLOAD = os.environ.get("BENCH_BREAKDOWN", "echo")
CLIENTS, FRAMES, PIPELINED = 50, 60, 1500
FANOUT_CLIENTS, FANOUT_SENDS = 200, 200
SAMPLE_10 = {
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
}
CONFIGS: dict[str, dict[str, str]] = {
    "telemetry off": {"BENCH_TELEMETRY": "off"},
    "logs only (2 lines/frame)": {"BENCH_SIGNALS": "logs"},
    "metrics only": {"BENCH_SIGNALS": "metrics", "BENCH_LOG_LEVEL": "WARNING"},
    "spans only, export dropped": {
        "BENCH_SIGNALS": "traces",
        "BENCH_LOG_LEVEL": "WARNING",
        "BENCH_SPAN_EXPORT": "drop",
    },
    "spans only, OTLP export": {
        "BENCH_SIGNALS": "traces",
        "BENCH_LOG_LEVEL": "WARNING",
    },
    "all on": {},
    "all on, no frame lines": {"BENCH_FRAME_LOGS": "off"},
    "all on, 10% sampled": SAMPLE_10,
    "all on, 10%, no frame lines": {**SAMPLE_10, "BENCH_FRAME_LOGS": "off"},
}
# Channels' own consumer under the "all on" settings (it emits no telemetry).
CONFIGS["plain Channels"] = {}
if os.environ.get("BENCH_CONFIGS"):
    # A subset, e.g. BENCH_CONFIGS="all on;metrics only" (off always runs).
    _wanted = ["telemetry off", *os.environ["BENCH_CONFIGS"].split(";")]
    CONFIGS = {name: CONFIGS[name] for name in _wanted}


async def measure(servers: dict[str, BenchServer]) -> dict[str, list[list[float]]]:
    # Echo: [round trips/s, pipelined/s, server CPU us per round trip, the
    # event loop thread's share of it, then GC us, young and full
    # collections per 1,000 round trips];
    # fan-out: [deliveries/s, server CPU us and GC us per delivery, young
    # and full collections per 1,000 deliveries].
    rates: dict[str, list[list[float]]] = {
        name: [[] for _ in range(7)] for name in servers
    }
    for index in range(ROUNDS):
        names = list(servers)
        names = names[index % len(names) :] + names[: index % len(names)]
        print(f"  round {index + 1}/{ROUNDS}", flush=True)
        for name in names:
            if WORKLOAD == "fanout":
                kind = "plain" if name == "plain Channels" else "chanx"
                url = servers[name].ws_url + f"/ws/{kind}/fanout/"
                server = servers[name]
                gc_before, cpu_before = server.gc_stats(), server.cpu_seconds()
                fan = await clients.fan_out(url, FANOUT_CLIENTS, FANOUT_SENDS)
                cpu_spent = server.cpu_seconds() - cpu_before
                delivered = max(fan.delivered, 1)
                rates[name][0].append(fan.rate)
                rates[name][1].append(cpu_spent / delivered * 1e6)
                collected = gc_per_unit(gc_before, server.gc_stats(), delivered)
                for column, value in enumerate(collected, start=2):
                    rates[name][column].append(value)
                continue
            kind = "plain" if name == "plain Channels" else "chanx"
            url = servers[name].ws_url + f"/ws/{kind}/echo/"
            server = servers[name]
            gc_before = server.gc_stats()
            cpu_before, loop_before = server.cpu_seconds(), server.loop_cpu_seconds()
            rt = await clients.echo_round_trip(url, CLIENTS, FRAMES)
            cpu_spent = server.cpu_seconds() - cpu_before
            loop_spent = server.loop_cpu_seconds() - loop_before
            collected = gc_per_unit(gc_before, server.gc_stats(), CLIENTS * FRAMES)
            pipe = await clients.echo_pipelined(url, PIPELINED)
            rates[name][0].append(rt.rate)
            rates[name][1].append(pipe.rate)
            rates[name][2].append(cpu_spent / (CLIENTS * FRAMES) * 1e6)
            rates[name][3].append(loop_spent / (CLIENTS * FRAMES) * 1e6)
            for column, value in enumerate(collected, start=4):
                rates[name][column].append(value)
    return rates


def gc_per_unit(
    before: dict[str, list[float]], after: dict[str, list[float]], units: int
) -> tuple[float, float, float]:
    """Garbage collection between two ``GET /gcstats`` answers, per unit of
    work: microseconds collecting, young and full collections per 1,000."""
    seconds = sum(after["seconds"]) - sum(before["seconds"])
    young = after["counts"][0] - before["counts"][0]
    full = after["counts"][2] - before["counts"][2]
    return seconds / units * 1e6, young / units * 1000, full / units * 1000


def print_fanout(medians: dict[str, list[float]]) -> None:
    base = medians["telemetry off"][0]
    print(
        f"\n{'configuration':30s}{'deliveries/s':>13s}{'+us/delivery':>14s}"
        f"{'cpu us/delivery':>17s}{'gc us/delivery':>16s}"
        f"{'young/1k':>10s}{'full/1k':>9s}"
    )
    for name, (rate, cpu_us, gc_us, young, full) in medians.items():
        extra = (1 / rate - 1 / base) * 1e6
        print(
            f"{name:30s}{rate:13.0f}{extra:14.1f}{cpu_us:17.1f}{gc_us:16.1f}"
            f"{young:10.1f}{full:9.2f}"
        )


def main() -> None:
    sink = OtlpSink()
    sink.start()
    with tempfile.TemporaryDirectory(prefix="chanx-breakdown-") as tmp:
        workdir = Path(tmp)
        env = telemetry_env(workdir, sink)
        servers = {
            name: BenchServer(f"b{i}", {**env, **extra}, workdir)
            for i, (name, extra) in enumerate(CONFIGS.items())
        }
        try:
            with serving(servers.values()):
                rates = asyncio.run(measure(servers))
        finally:
            sink.stop()
    medians = {
        n: [statistics.median(r) for r in lists if r] for n, lists in rates.items()
    }
    if WORKLOAD == "fanout":
        print_fanout(medians)
        return
    base_rt, base_pipe, *_ = medians["telemetry off"]
    print(
        f"\n{'configuration':30s}{'rt/s':>8s}{'+us/frame':>11s}{'cpu us/rt':>11s}"
        f"{'loop us/rt':>12s}{'gc us/rt':>10s}{'young/1k':>10s}{'full/1k':>9s}"
        f"{'pipe/s':>9s}{'+us/frame':>11s}"
    )
    for name, (rt, pipe, cpu_us, loop_us, gc_us, young, full) in medians.items():
        # Round trips run 50 at a time: the server's time per frame is 1/rate.
        extra_rt = (1 / rt - 1 / base_rt) * 1e6
        extra_pipe = (1 / pipe - 1 / base_pipe) * 1e6
        print(
            f"{name:30s}{rt:8.0f}{extra_rt:11.1f}{cpu_us:11.1f}{loop_us:12.1f}"
            f"{gc_us:10.1f}{young:10.1f}{full:9.2f}{pipe:9.0f}{extra_pipe:11.1f}"
        )


if __name__ == "__main__":
    main()
