"""Where an idle connection's memory goes: chanx vs plain Channels, in process.

Opens idle connections through Channels' ``WebsocketCommunicator`` (no socket,
no server) to the live benchmark's echo consumers
(``benchmarks/server_app.py``) and reports what each connection still holds
once its handshake is over, after a span flush and ``gc.collect()``. The
communicator's own objects (queues, the application task) are the same for
every variant, so the differences between the columns are the consumers'.

Variants:

- ``plain``: Channels' ``AsyncJsonWebsocketConsumer``;
- ``off``: chanx with no telemetry hooks, logs at WARNING (the live
  benchmark's "telemetry off");
- ``on``: chanx with ``chanx.telemetry``'s hooks (SDK spans through a batch
  processor whose exporter drops them, metrics in a fresh registry, log
  context) and JSON logs at INFO written to /dev/null.

Modes:

- default: ``tracemalloc`` snapshots before and after ``N`` connections; the
  bytes still allocated per connection, by the innermost chanx/Channels line
  the allocation came through (``--by-line``: the innermost line at all).
  Counts Python objects only, not allocator overhead or fragmentation.
- ``--rss``: VmRSS growth per connection, each variant in a fresh process
  (RSS only grows in a used one), ``N`` connections opened in batches of 100
  each followed by a collection, as the live benchmark does. Includes the
  communicator's share, so compare differences, not ratios, with the live
  numbers.

Run: ``.venv/bin/python benchmarks/memory_attribution.py [N] [TOP] [--rss]
[--by-line] [--frames]`` (default 500 connections, top 25 lines; ``--frames``
sends one ping per connection first).
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.server_settings")
os.environ.setdefault("BENCH_LOG_FILE", os.devnull)
# server_app installs telemetry itself only with an OTLP endpoint: not here.
os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)

from channels.testing import WebsocketCommunicator  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry  # noqa: E402

from benchmarks import server_settings  # noqa: E402
from benchmarks.server_app import ChanxEcho, PlainEcho  # noqa: E402
from chanx.hooks import install_hooks  # noqa: E402
from chanx.telemetry.install import install  # noqa: E402
from chanx.telemetry.logs import configure_logging  # noqa: E402

VARIANTS = ("plain", "off", "on")
WARMUP = 200
BATCH = 100
CONCURRENCY = 50
RSS_ROUNDS = 3
FLAGS = {a for a in sys.argv[1:] if a.startswith("--")}
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
CONNECTIONS = int(ARGS[0]) if ARGS else 500
TOP = int(ARGS[1]) if len(ARGS) > 1 else 25
# Where a consumer's own code lives: an allocation is charged to the
# innermost of these frames it came through (the line that asked for it).
_OWNERS = ("/chanx/", "/channels/", "/benchmarks/server_app.py")
_HARNESS = (__file__, "/tracemalloc.py")

Sizes = dict[str, float]


class _DroppingExporter(SpanExporter):
    """Takes every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


_provider = TracerProvider()
_provider.add_span_processor(BatchSpanProcessor(_DroppingExporter()))


def _configure(variant: str) -> None:
    stream = server_settings.LOG_STREAM
    if variant == "on":
        configure_logging(json=True, level="INFO", stream=stream)
        install(registry=CollectorRegistry(), tracer_provider=_provider)
    else:
        configure_logging(json=True, level="WARNING", stream=stream)
        install_hooks(None)


async def _open(stack: AsyncExitStack, variant: str) -> None:
    consumer: Any = PlainEcho if variant == "plain" else ChanxEcho
    communicator = WebsocketCommunicator(consumer.as_asgi(), "/ws/echo/")
    connected, _ = await communicator.connect(timeout=60)
    assert connected, variant
    stack.push_async_callback(communicator.disconnect)
    await communicator.receive_json_from(timeout=60)  # "authentication"
    if "--frames" in FLAGS:
        await communicator.send_json_to({"action": "ping"})
        await communicator.receive_json_from(timeout=60)


async def _settle() -> None:
    # Spans of the handshakes wait in the batch processor: not connection memory.
    _provider.force_flush(10_000)
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()


async def _open_many(stack: AsyncExitStack, variant: str, count: int) -> None:
    # As the live clients do: batches of 100, 50 handshakes at a time.
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            await _open(stack, variant)

    for start in range(0, count, BATCH):
        await asyncio.gather(*(one() for _ in range(min(BATCH, count - start))))
        await _settle()


async def _warm_up(variant: str) -> None:
    _configure(variant)
    async with AsyncExitStack() as warm:
        await _open_many(warm, variant, WARMUP)
    await _settle()


# tracemalloc ------------------------------------------------------------------


def _where(trace: tracemalloc.Traceback, by_line: bool) -> str:
    """The line an allocation is charged to, as ``path:line``."""
    frames = [f for f in reversed(trace) if not f.filename.endswith(_HARNESS)]
    if not by_line:
        owned = [f for f in frames if any(o in f.filename for o in _OWNERS)]
        frames = owned or frames
    if not frames:
        return "?"
    return f"{_short(frames[0].filename)}:{frames[0].lineno}"


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


async def held_by_line(variant: str) -> Sizes:
    """Bytes still allocated per idle connection of ``variant``, by line."""
    await _warm_up(variant)
    before = tracemalloc.take_snapshot()
    async with AsyncExitStack() as stack:
        await _open_many(stack, variant, CONNECTIONS)
        after = tracemalloc.take_snapshot()
    await _settle()
    by_line = "--by-line" in FLAGS
    sizes: Sizes = {}
    for stat in after.compare_to(before, "traceback"):
        key = _where(stat.traceback, by_line)
        sizes[key] = sizes.get(key, 0.0) + stat.size_diff / CONNECTIONS
    return sizes


def report_lines(results: dict[str, Sizes]) -> None:
    """Print totals and the lines where the variants differ most."""
    print(f"{CONNECTIONS} idle connections per variant (frames: {'--frames' in FLAGS})")
    print("bytes still allocated per connection (tracemalloc, after gc)\n")
    header = "".join(f"{v:>8}" for v in VARIANTS)
    print(f"{'':<58}{header}")
    totals = "".join(f"{sum(results[v].values()):8.0f}" for v in VARIANTS)
    print(f"{'total':<58}{totals}")

    def spread(key: str) -> float:
        base = results["plain"].get(key, 0.0)
        return sum(abs(results[v].get(key, 0.0) - base) for v in ("on", "off"))

    print(f"\ntop {TOP} lines by |on - plain| + |off - plain|:")
    keys = set().union(*results.values())
    for key in sorted(keys, key=spread, reverse=True)[:TOP]:
        cells = "".join(f"{results[v].get(key, 0.0):8.0f}" for v in VARIANTS)
        print(f"{key[-57:]:<58}{cells}")


# RSS --------------------------------------------------------------------------


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def rss_growth(variant: str) -> float:
    """VmRSS bytes per idle connection of ``variant`` (call in a fresh process)."""
    await _warm_up(variant)
    before = _rss()
    async with AsyncExitStack() as stack:
        await _open_many(stack, variant, CONNECTIONS)
        after = _rss()
    return (after - before) / CONNECTIONS


def report_rss() -> None:
    """Run each variant in its own process, interleaved; print the medians."""
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(RSS_ROUNDS):
        for variant in VARIANTS:
            out = subprocess.run(
                [sys.executable, __file__, str(CONNECTIONS), f"--rss-one={variant}"],
                capture_output=True,
                text=True,
                check=True,
            )
            samples[variant].append(float(out.stdout.split()[-1]))
    print(f"VmRSS growth per idle connection, {CONNECTIONS} connections,")
    print(f"median of {RSS_ROUNDS} fresh processes per variant (KiB):")
    plain = statistics.median(samples["plain"])
    for variant in VARIANTS:
        value = statistics.median(samples[variant])
        runs = " ".join(f"{s / 1024:.1f}" for s in samples[variant])
        print(
            f"  {variant:<6}{value / 1024:6.1f}   - plain {(value - plain) / 1024:5.1f}"
            f"   (runs: {runs})"
        )


async def main() -> None:
    one = next((f for f in FLAGS if f.startswith("--rss-one=")), None)
    if one is not None:
        print(await rss_growth(one.split("=", 1)[1]))
    elif "--rss" in FLAGS:
        report_rss()
    else:
        tracemalloc.start(16)
        results = {variant: await held_by_line(variant) for variant in VARIANTS}
        tracemalloc.stop()
        report_lines(results)
    install_hooks(None)
    _provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
