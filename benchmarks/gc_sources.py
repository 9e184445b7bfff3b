"""What makes a chanx process collect garbage: spans waiting to be exported.

CPython starts a young collection when the count of container objects
allocated and not yet freed passes a threshold (700 by default), and a full
collection every ten or so of the next generation's. In process, through
Channels' communicator (echo, ``FRAMES`` frames, interleaved), this counts
collections per 1,000 frames for telemetry off, spans through a
``BatchSpanProcessor`` (spans wait in its queue) and through a
``SimpleSpanProcessor`` (spans are exported, here dropped, as they end)
and through what ``chanx.telemetry.setup()`` builds (each span encoded as
it ends, its bytes waiting in the queue: ``chanx.telemetry.span_records``;
the batches encoded and dropped), alone and with logs and metrics. Then it counts the container objects one
ended span keeps allocated while it waits: a frame's ``receive`` span and a
group delivery's ``process`` span, each with its ``message_sent`` event.

Run: ``.venv/bin/python benchmarks/gc_sources.py`` (~20 s).
``BENCH_PROFILE=smoke``: a few frames.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from opentelemetry.sdk.trace import (  # noqa: E402
    ReadableSpan,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry  # noqa: E402

import benchmarks.echo_inprocess as echo  # noqa: E402
from benchmarks.echo_inprocess import ChanxEcho  # noqa: E402
from benchmarks.echo_telemetry import (  # noqa: E402
    DroppingExporter,
    LoggedEcho,
    _json_logs_to_devnull,
    _quiet_logging,
)
from chanx.hooks import ConnectionInfo, install_hooks  # noqa: E402
from chanx.telemetry.config import TelemetryConfig  # noqa: E402
from chanx.telemetry.install import install  # noqa: E402
from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter  # noqa: E402
from chanx.telemetry.sdk import create_tracer_provider  # noqa: E402
from chanx.telemetry.tracing import TracingHooks  # noqa: E402

SMOKE = os.environ.get("BENCH_PROFILE") == "smoke"
FRAMES = 50 if SMOKE else 5000
ROUNDS = 1 if SMOKE else 3
TRACES = {"LOGS": False, "TRACES": True, "METRICS": False}
ALL = {"LOGS": True, "TRACES": True, "METRICS": True}


class _Collections:
    """Collections per generation since :meth:`reset` (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            self.counts[info["generation"]] += 1

    def reset(self) -> None:
        self.counts = [0, 0, 0]


class _EncodingDropper(FastOTLPSpanExporter):
    """chanx's OTLP exporter, encoding each batch and sending nothing."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.encode(spans)
        return SpanExportResult.SUCCESS


def providers() -> dict[str, TracerProvider]:
    batch, simple = TracerProvider(), TracerProvider()
    batch.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    simple.add_span_processor(SimpleSpanProcessor(DroppingExporter()))
    # What setup() builds: spans encoded as they end, their bytes queued.
    chanx = create_tracer_provider(
        exporter=_EncodingDropper(endpoint="http://127.0.0.1:9/v1/traces"),
        shutdown_on_exit=False,
    )
    return {"batch": batch, "simple": simple, "chanx": chanx}


async def one_variant(
    setting: dict[str, bool] | None, provider: TracerProvider | None
) -> float:
    """Microseconds per frame for one variant (hooks installed for its run)."""
    if setting is None or provider is None:
        _quiet_logging()
        install_hooks(None)
        return await echo.microseconds_per_frame(ChanxEcho)
    _json_logs_to_devnull()
    install(
        TelemetryConfig.from_setting(setting),
        registry=CollectorRegistry(),
        tracer_provider=provider,
    )
    try:
        consumer = LoggedEcho if setting["LOGS"] else ChanxEcho
        return await echo.microseconds_per_frame(consumer)
    finally:
        install_hooks(None)


async def collections(clock: _Collections) -> None:
    spans = providers()
    variants: dict[str, tuple[dict[str, bool] | None, TracerProvider | None]] = {
        "telemetry off": (None, None),
        "spans, batch processor": (TRACES, spans["batch"]),
        "spans, simple processor": (TRACES, spans["simple"]),
        "spans, chanx's processor": (TRACES, spans["chanx"]),
        "all on, batch processor": (ALL, spans["batch"]),
        "all on, simple processor": (ALL, spans["simple"]),
        "all on, chanx's processor": (ALL, spans["chanx"]),
    }
    echo.FRAMES = FRAMES
    totals = {name: [0.0, 0, 0, 0] for name in variants}
    for _ in range(ROUNDS):
        for name, (setting, provider) in variants.items():
            await one_variant(setting, provider)  # warm up, fill the queue
            clock.reset()
            took = await one_variant(setting, provider)
            total = totals[name]
            total[0] += took
            for generation in range(3):
                total[generation + 1] += clock.counts[generation]
    for provider in spans.values():
        provider.shutdown()
    frames = FRAMES * ROUNDS
    print(f"collections per 1,000 frames ({frames} frames per variant, in process)")
    print(f"  {'variant':28}{'us/frame':>9}{'young':>8}{'middle':>8}{'full':>7}")
    for name, (took, *counts) in totals.items():
        per = [count * 1000 / frames for count in counts]
        print(f"  {name:28}{took / ROUNDS:9.1f}{per[0]:8.2f}{per[1]:8.2f}{per[2]:7.2f}")


class _Keep(SpanProcessor):
    """Holds every ended span, as a batch processor's queue does."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def kept_allocations(work: Callable[[], None], keep: _Keep) -> float:
    """Container objects allocated and still alive per call of ``work``."""
    for _ in range(50):
        work()
    keep.spans.clear()
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        calls = 50 if SMOKE else 1000
        for _ in range(calls):
            work()
        return (gc.get_count()[0] - before) / calls
    finally:
        gc.enable()


def span_allocations() -> None:
    keep = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(keep)
    hooks = TracingHooks(TelemetryConfig.from_setting({}), provider)
    conn = ConnectionInfo("c0ffee", "Bench", "/ws/bench/", "/ws/bench/")
    scope: dict[str, Any] = {"type": "websocket", "path": conn.path, "headers": []}
    hooks.connection_started(conn, scope).finish("accepted")
    carrier: dict[str, str] = {}
    hooks.publish(conn, "group_message", "fanout", ["bench"], carrier).finish("ok")

    def frame() -> None:
        observation = hooks.message_received(conn, "ping", 20, {})
        hooks.message_sent(conn, "pong", 30)
        observation.finish("ok")

    def delivery() -> None:
        observation = hooks.deliver(conn, "group_message", "fanout", carrier)
        hooks.message_sent(conn, "fanout", 40)
        observation.finish("ok")

    print("container objects an ended span keeps allocated while it waits")
    print(f"  receive span (a frame)      {kept_allocations(frame, keep):5.1f}")
    print(f"  process span (a delivery)   {kept_allocations(delivery, keep):5.1f}")
    provider.shutdown()


def main() -> None:
    clock = _Collections()
    asyncio.run(collections(clock))
    span_allocations()


if __name__ == "__main__":
    main()
