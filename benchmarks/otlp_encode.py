"""OTLP span encoding: chanx's wire-format encoder vs the official one.

A batch of 512 real chanx ``receive`` spans (made by ``TracingHooks`` on an
SDK provider: 7 attributes, a link to the ``connect`` span, one
``message_sent`` event), encoded by ``chanx.telemetry.otlp_encoding`` and by
``opentelemetry-exporter-otlp-proto-common`` (``encode_spans()`` then
``SerializePartialToString()``, what the official HTTP exporter does), the
two interleaved round by round; the ratio of the medians is printed. Both
results are checked to parse to the same request first.

Run: ``.venv/bin/python benchmarks/otlp_encode.py`` (``ROUNDS``, ``BATCH``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from opentelemetry.exporter.otlp.proto.common.trace_encoder import (  # noqa: E402
    encode_spans as official_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from chanx.hooks import ConnectionInfo  # noqa: E402
from chanx.telemetry.config import TelemetryConfig  # noqa: E402
from chanx.telemetry.otlp_encoding import encode_spans  # noqa: E402
from chanx.telemetry.tracing import TracingHooks  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "21"))
BATCH = int(os.environ.get("BATCH", "512"))


def receive_spans(count: int) -> Sequence[ReadableSpan]:
    """``count`` receive spans of one connection, as an echo server makes them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    conn = ConnectionInfo("c0ffee", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")
    hooks.connection_started(conn, {"headers": []}).finish("ok")
    memory.clear()
    for _ in range(count):
        observation = hooks.message_received(conn, "ping", 20, {})
        hooks.message_sent(conn, "pong", 30)
        observation.finish("ok")
    spans = memory.get_finished_spans()
    assert len(spans) == count
    assert all(s.links and s.events for s in spans)
    return spans


def seconds(encode: Callable[[], object]) -> float:
    start = time.perf_counter()
    encode()
    return time.perf_counter() - start


def main() -> None:
    spans = receive_spans(BATCH)

    def fast() -> bytes:
        return encode_spans(spans)

    def official() -> bytes:
        data: bytes = official_encode_spans(spans).SerializePartialToString()
        return data

    official_request = official_encode_spans(spans)
    assert ExportTraceServiceRequest.FromString(fast()) == official_request
    fast_times, official_times = [], []
    for round_number in range(ROUNDS):
        # Alternate which goes first, so neither always runs on a warm cache.
        pair = (fast, official) if round_number % 2 else (official, fast)
        timings = {variant: seconds(variant) for variant in pair}
        fast_times.append(timings[fast])
        official_times.append(timings[official])
    fast_us = statistics.median(fast_times) / BATCH * 1e6
    official_us = statistics.median(official_times) / BATCH * 1e6
    print(
        f"batch of {BATCH} chanx receive spans, median of {ROUNDS} interleaved rounds"
    )
    print(f"  official encode_spans + serialize  {official_us:7.2f} us/span")
    print(f"  chanx otlp_encoding                {fast_us:7.2f} us/span")
    print(f"  speed-up (official / fast)         {official_us / fast_us:7.2f}x")


if __name__ == "__main__":
    main()
