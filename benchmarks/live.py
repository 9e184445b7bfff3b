"""chanx vs plain Channels vs raw ASGI under real uvicorn servers: ratios only.

Starts one uvicorn process per variant (same options, same settings module,
only the environment differs), a stand-in OTLP collector, and measures from
this process with ``websockets`` clients. Variants are measured in turn
within each round (the order rotates between rounds) and each figure is the
median over the rounds; a target's ratio is the median of the per-round
ratios, so both sides of every ratio ran moments apart.

Run: ``make bench`` (``BENCH_QUICK=1`` for a short run). ``BENCH_PROFILE=smoke``
runs tiny counts (the smoke test's); ``BENCH_ONLY=echo,fanout,auth,memory``
picks workloads (the others print ``nan``). Exit status 1 when chanx lost a group
delivery or a workload failed; speed targets only print PASS/FAIL.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import live_clients as clients  # noqa: E402
from benchmarks.live_servers import (  # noqa: E402
    REDIS_URL,
    BenchServer,
    OtlpSink,
    base_env,
    delete_redis_keys,
    seed,
    start_all,
    telemetry_env,
)


@dataclass(frozen=True)
class Profile:
    """How much of everything one run does."""

    rounds: int
    echo_rounds: int
    echo_clients: int
    echo_frames: int
    pipelined_frames: int
    fanout_clients: int
    fanout_sends: int
    idle_connections: int
    auth_connections: int


PROFILES = {
    "full": Profile(5, 9, 50, 400, 3000, 200, 500, 1000, 300),
    "quick": Profile(2, 3, 50, 40, 1000, 200, 100, 300, 100),
    "smoke": Profile(1, 1, 3, 5, 20, 5, 10, 10, 5),
}

ECHO = {
    "raw": "/ws/raw/echo/",
    "plain": "/ws/plain/echo/",
    "chanx_off": "/ws/chanx/echo/",
    "chanx_on": "/ws/chanx/echo/",
    "chanx_lean": "/ws/chanx/echo/",
}
LABELS = {
    "raw": "raw ASGI",
    "plain": "plain Channels",
    "chanx_off": "chanx, telemetry off",
    "chanx_on": "chanx, telemetry on",
    "chanx_lean": "chanx, on, lean",
}
#: Telemetry on as a busy deployment may run it: 10% of traces sampled, no
#: log line per frame (metrics and the sampled spans still see every frame).
LEAN = {
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
    "BENCH_FRAME_LOGS": "off",
}
Samples = dict[str, dict[str, list[float]]]
FANOUT_WORKLOADS = ("fanout_memory", "fanout_redis")
FANOUT_VARIANTS = ("chanx", "chanx_off", "plain")

#: (row, workload, numerator, denominator, comparison, goal); "" = report only.
TARGETS = [
    ("echo round trip, on / plain", "echo_rt", "chanx_on", "plain", ">=", 1.0),
    ("echo pipelined, on / plain", "echo_pipe", "chanx_on", "plain", ">=", 1.0),
    ("echo pipelined, on / raw ASGI", "echo_pipe", "chanx_on", "raw", ">=", 0.5),
    ("telemetry on / off, round trip", "echo_rt", "chanx_on", "chanx_off", ">=", 0.85),
    ("telemetry on / off, pipelined", "echo_pipe", "chanx_on", "chanx_off", ">=", 0.85),
    ("fan-out in-memory, chanx / plain", "fanout_memory", "chanx", "plain", ">=", 1.0),
    ("fan-out Redis, chanx / plain", "fanout_redis", "chanx", "plain", ">=", 1.0),
    ("idle memory/conn, chanx / plain", "memory", "chanx", "plain", "<=", 1.1),
    ("connect+auth rate, chanx / plain", "connect_auth", "chanx", "plain", "", 0.0),
    ("lean on / off, round trip", "echo_rt", "chanx_lean", "chanx_off", "", 0.0),
    ("lean on / plain, round trip", "echo_rt", "chanx_lean", "plain", "", 0.0),
    ("lean on / plain, pipelined", "echo_pipe", "chanx_lean", "plain", "", 0.0),
    ("fan-out in-memory, off / plain", "fanout_memory", "chanx_off", "plain", "", 0.0),
    # Server CPU time per delivery: below 1, chanx spends less than Channels.
    (
        "cpu per delivery in-mem, chanx/plain",
        "fanout_memory_cpu",
        "chanx",
        "plain",
        "",
        0.0,
    ),
    (
        "cpu per delivery Redis, chanx/plain",
        "fanout_redis_cpu",
        "chanx",
        "plain",
        "",
        0.0,
    ),
]


def profile() -> Profile:
    name = os.environ.get("BENCH_PROFILE") or (
        "quick" if os.environ.get("BENCH_QUICK") == "1" else "full"
    )
    return PROFILES[name]


def rotated(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


class Run:
    """The servers of one run and the samples they produce."""

    def __init__(self, workdir: Path, sink: OtlpSink, p: Profile) -> None:
        self.p = p
        self.workdir = workdir
        env = base_env(workdir)
        self.on = telemetry_env(workdir, sink)
        off = {**env, "BENCH_TELEMETRY": "off"}
        run_id = uuid.uuid4().hex[:8]
        self.prefixes = [f"bench{run_id}c", f"bench{run_id}p"]
        redis = {"REDIS_URL": REDIS_URL}
        self.servers = {
            "raw": BenchServer("raw", self.on, workdir),
            "plain": BenchServer("plain", self.on, workdir),
            "chanx_off": BenchServer("chanx_off", off, workdir),
            "chanx_on": BenchServer("chanx_on", self.on, workdir),
            "chanx_lean": BenchServer("chanx_lean", {**self.on, **LEAN}, workdir),
            "redis_chanx": BenchServer(
                "redis_chanx",
                {**self.on, **redis, "CHANNELS_PREFIX": self.prefixes[0]},
                workdir,
            ),
            "redis_plain": BenchServer(
                "redis_plain",
                {**self.on, **redis, "CHANNELS_PREFIX": self.prefixes[1]},
                workdir,
            ),
        }
        self.samples: Samples = {}
        self.lost: dict[str, list[int]] = {}

    def add(self, workload: str, variant: str, value: float) -> None:
        self.samples.setdefault(workload, {}).setdefault(variant, []).append(value)

    def url(self, server: str, path: str) -> str:
        return self.servers[server].ws_url + path

    async def echo_round(self, index: int) -> None:
        p = self.p
        for variant in rotated(list(ECHO), index):
            url = self.url(variant, ECHO[variant])
            rt = await clients.echo_round_trip(url, p.echo_clients, p.echo_frames)
            self.add("echo_rt", variant, rt.rate)
            self.add("client_cpu", variant, rt.client_cpu)
            pipe = await clients.echo_pipelined(url, p.pipelined_frames)
            self.add("echo_pipe", variant, pipe.rate)

    async def fanout_round(self, index: int) -> None:
        p = self.p
        pairs = [
            ("fanout_memory", "chanx", "chanx_on", "/ws/chanx/fanout/"),
            ("fanout_memory", "plain", "plain", "/ws/plain/fanout/"),
            # Report only: what the fan-out costs without telemetry.
            ("fanout_memory", "chanx_off", "chanx_off", "/ws/chanx/fanout/"),
            ("fanout_redis", "chanx", "redis_chanx", "/ws/chanx/fanout/"),
            ("fanout_redis", "plain", "redis_plain", "/ws/plain/fanout/"),
        ]
        for workload, variant, name, path in pairs[index % 2 :] + pairs[: index % 2]:
            server = self.servers[name]
            cpu_before = server.cpu_seconds()
            result = await clients.fan_out(
                server.ws_url + path, p.fanout_clients, p.fanout_sends
            )
            cpu = server.cpu_seconds() - cpu_before
            self.add(workload, variant, result.rate)
            # The server's CPU time per delivery (all its threads), in us.
            self.add(f"{workload}_cpu", variant, cpu / max(result.delivered, 1) * 1e6)
            self.lost.setdefault(f"{workload}.{variant}", []).append(result.lost)

    async def auth_round(self, index: int) -> None:
        for variant in rotated(["chanx", "plain"], index):
            server = "chanx_on" if variant == "chanx" else "plain"
            url = self.url(server, f"/ws/{variant}/auth/")
            timed = await clients.connect_auth(url, self.p.auth_connections)
            self.add("connect_auth", variant, timed.rate)

    async def memory_round(self, index: int) -> None:
        for variant in rotated(["chanx", "plain"], index):
            # A fresh process each time: RSS only grows in a used one.
            server = BenchServer(f"memory_{variant}", self.on, self.workdir)
            await asyncio.to_thread(start_all, [server])
            try:

                async def collect(s: BenchServer = server) -> None:
                    await asyncio.to_thread(s.collect_garbage)

                per_connection = await clients.idle_memory(
                    server.ws_url + f"/ws/{variant}/echo/",
                    self.p.idle_connections,
                    server.rss_bytes,
                    collect,
                )
            finally:
                server.stop()
            self.add("memory", variant, per_connection)

    async def measure(self) -> None:
        steps: dict[str, tuple[int, Callable[[int], Coroutine[Any, Any, None]]]] = {
            "echo": (self.p.echo_rounds, self.echo_round),
            "fanout": (self.p.rounds, self.fanout_round),
            "auth": (self.p.rounds, self.auth_round),
            "memory": (self.p.rounds, self.memory_round),
        }
        only = os.environ.get("BENCH_ONLY")
        chosen = only.split(",") if only else list(steps)
        for rounds, step in (steps[name] for name in chosen):
            for index in range(rounds):
                print(f"  {step.__name__} {index + 1}/{rounds}", flush=True)
                await step(index)


def got(samples: Samples, workload: str, variant: str) -> list[float]:
    """The samples of ``variant`` in ``workload`` (none if it did not run)."""
    return samples.get(workload, {}).get(variant, [])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired_ratio(samples: Samples, workload: str, top: str, bottom: str) -> float:
    """Median over rounds of ``top / bottom`` measured in the same round."""
    pairs = zip(
        got(samples, workload, top), got(samples, workload, bottom), strict=False
    )
    return median([a / b if b else float("nan") for a, b in pairs])


def report(run: Run) -> bool:
    """Print the figures and the targets; False when chanx lost deliveries."""
    print_figures(run)
    return print_targets(run)


def print_figures(run: Run) -> None:
    """The medians of every workload and variant."""
    s, p = run.samples, run.p
    print(
        f"\nechoes: {p.echo_clients} clients x {p.echo_frames} round trips, "
        f"1 client x {p.pipelined_frames} pipelined; medians of {p.echo_rounds} rounds"
    )
    print(
        f"  {'variant':24s}{'round trip/s':>14s}{'pipelined/s':>14s}{'client cpu':>12s}"
    )
    for v in ECHO:
        rt, pipe = median(got(s, "echo_rt", v)), median(got(s, "echo_pipe", v))
        cpu = median(got(s, "client_cpu", v))
        print(f"  {LABELS[v]:24s}{rt:14.0f}{pipe:14.0f}{cpu:12.0%}")
    print(
        f"fan-out: {p.fanout_clients} clients x {p.fanout_sends} sends, "
        f"medians of {p.rounds} rounds (deliveries/s, lost in total)"
    )
    for workload in FANOUT_WORKLOADS:
        for v in FANOUT_VARIANTS:
            if not got(s, workload, v) and v == "chanx_off":
                continue  # measured on the in-memory layer only
            lost = sum(run.lost.get(f"{workload}.{v}", []))
            rate = median(got(s, workload, v))
            cpu = median(got(s, f"{workload}_cpu", v))
            print(
                f"  {workload:16s}{v:10s}{rate:10.0f}/s  lost {lost}"
                f"  server cpu {cpu:6.1f} us/delivery"
            )
    for v in ("chanx", "plain"):
        kib = median(got(s, "memory", v)) / 1024
        auth = median(got(s, "connect_auth", v))
        print(
            f"  {v:8s} idle connection {kib:6.1f} KiB "
            f"({p.idle_connections} conns); connect+auth {auth:6.0f}/s"
        )


def print_targets(run: Run) -> bool:
    """Each target's ratio and verdict; False when chanx lost deliveries."""
    s = run.samples
    lost = sum(
        sum(run.lost.get(f"{w}.{v}", []))
        for w in FANOUT_WORKLOADS
        for v in ("chanx", "chanx_off")
    )
    rows = [
        (name, paired_ratio(s, workload, top, bottom), op, goal)
        for name, workload, top, bottom, op, goal in TARGETS
    ]
    rows.insert(7, ("chanx lost deliveries", float(lost), "==", 0.0))
    print(f"\n{'target (telemetry on)':36s}{'ratio':>8s}  {'goal':8s}result")
    for name, value, op, goal in rows:
        ok = {">=": value >= goal, "<=": value <= goal, "==": value == goal}.get(op)
        if math.isnan(value):
            ok = None  # the workload did not run (BENCH_ONLY)
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        goal_text = f"{op} {goal:g}" if op else "(report)"
        print(f"{name:36s}{value:8.2f}  {goal_text:8s}{verdict}")
    return lost == 0


def raise_fd_limit(wanted: int) -> None:
    """Room for the idle connections, here and in the servers this starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def main() -> int:
    p = profile()
    raise_fd_limit(p.idle_connections * 2 + 1024)
    sink = OtlpSink()
    sink.start()
    with tempfile.TemporaryDirectory(prefix="chanx-bench-") as tmp:
        workdir = Path(tmp)
        seed(base_env(workdir), p.auth_connections)
        run = Run(workdir, sink, p)
        servers = list(run.servers.values())
        try:
            await asyncio.to_thread(start_all, servers)
            print(f"servers up; profile {p}", flush=True)
            await run.measure()
        finally:
            for server in servers:
                server.stop()
            sink.stop()
            for prefix in run.prefixes:
                delete_redis_keys(prefix)
        return 0 if report(run) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
