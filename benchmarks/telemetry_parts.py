"""Where telemetry's per-frame cost goes: each part timed alone, in one run.

What a frame costs each signal, called the way the consumer calls it (one
``message_received`` observation and one ``message_sent``), plus one JSON log
line, and the span with a 10% ratio sampler for comparison. Run with
``make bench-telemetry-parts``; compare the rows, not the absolute numbers.
"""

from __future__ import annotations

import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import structlog  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.sampling import (  # noqa: E402
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from prometheus_client import CollectorRegistry  # noqa: E402

from benchmarks.echo_telemetry import DEVNULL, DroppingExporter  # noqa: E402
from chanx.hooks import ConnectionInfo, ConsumerHooks  # noqa: E402
from chanx.telemetry.config import TelemetryConfig  # noqa: E402
from chanx.telemetry.logs import LogContextHooks, configure_logging  # noqa: E402
from chanx.telemetry.metric_hooks import MetricsHooks  # noqa: E402
from chanx.telemetry.metrics import get_metrics  # noqa: E402
from chanx.telemetry.tracing import TracingHooks  # noqa: E402

CALLS = int(os.environ.get("CALLS", "20000"))
CONN = ConnectionInfo("c0ffee", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")


def one_frame(hooks: ConsumerHooks) -> Callable[[], None]:
    def frame() -> None:
        observation = hooks.message_received(CONN, "ping", 20, {})
        hooks.message_sent(CONN, "pong", 30)
        observation.finish("ok")

    return frame


def tracing(sampler: Sampler | None) -> TracingHooks:
    provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    return TracingHooks(TelemetryConfig(), provider)


def microseconds(call: Callable[[], None]) -> float:
    call()
    return min(timeit.repeat(call, number=CALLS, repeat=3)) / CALLS * 1e6


def main() -> None:
    config = TelemetryConfig()
    configure_logging(json=True, stream=DEVNULL)
    log = structlog.get_logger("chanx.consumer").bind(
        connection_id=CONN.connection_id, consumer=CONN.consumer, route=CONN.route
    )
    rows = {
        "span (always on) + sent-frame event": one_frame(tracing(None)),
        "span, 10% ratio sampler": one_frame(
            tracing(ParentBased(TraceIdRatioBased(0.1)))
        ),
        "metrics (received + sent)": one_frame(
            MetricsHooks(get_metrics(CollectorRegistry()), config)
        ),
        "log context (bind/restore action)": one_frame(LogContextHooks(config)),
        "one JSON log line": lambda: log.info("message_received", action="ping"),
    }
    print(f"calls={CALLS} (best of 3), per frame:")
    for name, call in rows.items():
        print(f"  {name:38s} {microseconds(call):7.1f} us")


if __name__ == "__main__":
    main()
