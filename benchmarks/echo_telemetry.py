"""Per-frame cost of telemetry: echo with telemetry off, disabled, and all on.

Same echo as ``echo_inprocess.py`` (Channels' communicator, no socket), run
interleaved in one process, medians compared. Variants:

- ``off``: no telemetry hooks installed (the core's no-op default);
- ``disabled``: ``chanx.telemetry`` installed with ``CHANX["TELEMETRY"] =
  "disabled"`` (what a deployment gets when it switches telemetry off);
- ``all on``: spans (SDK tracer provider, always-on sampler, batch processor
  with an exporter that drops spans), metrics (a fresh registry) and logs
  (structlog JSON lines with the contextvars, redaction and trace-id
  processors, written to /dev/null; the consumer logs each frame in and out);
- ``no_frame_lines``: all on, but the consumer does not log each frame
  (``LOG_RECEIVED_MESSAGE``/``LOG_SENT_MESSAGE`` off, as busy deployments
  often choose; spans and metrics still cover every frame);
- plain Channels, for reference.

Run: ``make bench-telemetry``. The ratios are what counts.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry  # noqa: E402

from benchmarks.echo_inprocess import ChanxEcho, PlainEcho, microseconds_per_frame  # noqa: E402
from chanx.hooks import install_hooks  # noqa: E402
from chanx.telemetry.config import TelemetryConfig  # noqa: E402
from chanx.telemetry.install import install  # noqa: E402
from chanx.telemetry.logs import configure_logging  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "7"))


class DroppingExporter(SpanExporter):
    """Accepts every batch and keeps nothing: measures chanx, not a network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class LoggedEcho(ChanxEcho):
    """The echo with a log line per frame in and out, as production defaults do."""

    log_received_message = True
    log_sent_message = True


def _quiet_logging() -> None:
    configure_logging(json=True, level="WARNING", stream=DEVNULL)


DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def _json_logs_to_devnull() -> None:
    configure_logging(json=True, level="INFO", stream=DEVNULL)


async def measure(variant: str, provider: TracerProvider) -> float:
    if variant == "plain":
        _quiet_logging()
        install_hooks(None)
        return await microseconds_per_frame(PlainEcho)
    if variant == "off":
        _quiet_logging()
        install_hooks(None)
        return await microseconds_per_frame(ChanxEcho)
    if variant == "disabled":
        _quiet_logging()
        install(TelemetryConfig.from_setting("disabled"))
        return await microseconds_per_frame(ChanxEcho)
    _json_logs_to_devnull()
    install(registry=CollectorRegistry(), tracer_provider=provider)
    consumer = LoggedEcho if variant == "all_on" else ChanxEcho
    try:
        return await microseconds_per_frame(consumer)
    finally:
        install_hooks(None)


async def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    variants = ["plain", "off", "disabled", "all_on", "no_frame_lines"]
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(ROUNDS):
        for variant in variants:
            samples[variant].append(await measure(variant, provider))
    provider.shutdown()
    _quiet_logging()
    plain, off, disabled, on, quiet = (statistics.median(samples[v]) for v in variants)
    print(f"rounds={ROUNDS} (medians, interleaved, in process)")
    print(f"plain Channels echo:                 {plain:8.1f} us/frame")
    print(f"chanx, telemetry off (no hooks):     {off:8.1f} us/frame")
    print(f"chanx, telemetry disabled:           {disabled:8.1f} us/frame")
    print(f"chanx, logs+traces+metrics on:       {on:8.1f} us/frame")
    print(f"all on, no per-frame log lines:      {quiet:8.1f} us/frame")
    print(f"telemetry cost per frame (on - off): {on - off:8.1f} us")
    print(f"throughput disabled / off = {off / disabled:.2f}")
    print(f"throughput all on / off   = {off / on:.2f}")
    print(f"throughput all on / plain Channels = {plain / on:.2f}")
    print(f"throughput all on, no frame lines / plain Channels = {plain / quiet:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
