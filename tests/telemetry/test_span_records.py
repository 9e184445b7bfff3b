"""chanx.telemetry.span_records: spans encoded as they end, sent as they were.

chanx's batch processor queues what the OTLP/HTTP exporter's
``span_records`` makes of each ended span; the requests that reach a
collector over real HTTP must parse to what the official encoder makes of
the spans themselves.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from chanx.hooks import ConnectionInfo
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.otlp_encoding import encode_spans
from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
from chanx.telemetry.sdk import create_tracer_provider
from chanx.telemetry.span_records import SpanRecords
from chanx.telemetry.tracing import TracingHooks
from tests.telemetry.test_otlp_exporter import Receiver, chanx_spans

CONN = ConnectionInfo("c0ffee", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")


def echo_frames(hooks: TracingHooks, count: int) -> None:
    """A connection and ``count`` ping frames answered with a pong."""
    hooks.connection_started(CONN, {"headers": []}).finish("ok")
    for size in range(count):
        observation = hooks.message_received(CONN, "ping", size, {})
        hooks.message_sent(CONN, "pong", size + 10)
        observation.finish("ok")


def odd_span(name: str = "odd") -> ReadableSpan:
    # The official encoder skips an int beyond int64; chanx's refuses it.
    return ReadableSpan(
        name,
        SpanContext(1, 2, False),
        attributes={"huge": 2**70, "fine": "kept"},
        instrumentation_scope=InstrumentationScope("s"),
    )


def test_frames_encoded_as_they_end_reach_the_collector_unchanged(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing is exported before the flush: the spans wait in the queue.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    provider = create_tracer_provider(
        exporter=exporter,
        resource=Resource({"service.name": "chat"}),
        shutdown_on_exit=False,
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        echo_frames(TracingHooks(TelemetryConfig(), provider), 20)
        [processor, _] = provider._active_span_processor._span_processors
        queued = list(processor._batch_processor._queue)  # type: ignore[attr-defined]
        assert provider.force_flush()
    finally:
        provider.shutdown()
    assert len(queued) == 21
    assert all(type(item) is tuple for item in queued)
    assert receiver.request() == official_encode_spans(memory.get_finished_spans())
    assert exporter.fallbacks == 0


def test_spans_waiting_for_export_are_no_work_for_the_garbage_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each span waiting as an SDK object is several containers the collector
    # walks and promotes; a record is untracked at the first collection.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    exporter = FastOTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    provider = create_tracer_provider(exporter=exporter, shutdown_on_exit=False)
    hooks = TracingHooks(TelemetryConfig(), provider)
    try:
        echo_frames(hooks, 5)  # warms the caches a first frame fills
        gc.collect()
        before = len(gc.get_objects())
        echo_frames(hooks, 300)
        gc.collect()
        grown = len(gc.get_objects()) - before
        [processor] = provider._active_span_processor._span_processors
        waiting = len(processor._batch_processor._queue)  # type: ignore[attr-defined]
    finally:
        unsent: SpanExporter = exporter  # the official class leaves it untyped
        unsent.shutdown()  # nothing to send the spans to
        provider.shutdown()
    assert waiting == 307
    assert grown < 50


def test_a_span_the_fast_encoder_refuses_waits_as_a_span_and_is_sent_in_full(
    receiver: Receiver,
) -> None:
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    records = exporter.span_records
    assert records is not None
    spans = chanx_spans()
    odd = odd_span()
    assert records.record(odd) is odd
    batch = [records.record(spans[0]), odd, *map(records.record, spans[1:])]
    assert all(type(item) is tuple for item in batch if item is not odd)
    assert exporter.export(batch) is SpanExportResult.SUCCESS
    expected = ExportTraceServiceRequest()
    expected.MergeFrom(official_encode_spans(spans))
    expected.MergeFrom(official_encode_spans([odd]))
    assert receiver.request() == expected
    assert exporter.fallbacks == 1


def spans_of_two_services() -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    for service in ("chat", "lobby"):
        provider = TracerProvider(
            resource=Resource({"service.name": service}), shutdown_on_exit=False
        )
        provider.add_span_processor(SimpleSpanProcessor(memory))
        for name in ("a", "b"):
            provider.get_tracer(service).start_span(f"{service} {name}").end()
    spans = memory.get_finished_spans()
    return [spans[0], spans[2], spans[1], spans[3]]


@pytest.mark.parametrize("limit", [1, 256])
def test_records_and_spans_group_by_resource_as_the_official_encoder_does(
    limit: int,
) -> None:
    records = SpanRecords(limit=limit)
    spans = spans_of_two_services()
    batch = [records.record(span) for span in spans]
    # Past the limit of distinct resources and scopes, spans wait as spans.
    assert [type(item) is tuple for item in batch] == [True, limit > 1] * 2
    request = ExportTraceServiceRequest.FromString(
        encode_spans(batch, origin=records.origin)
    )
    assert request == official_encode_spans(spans)


def test_records_need_the_origin_of_their_keys() -> None:
    records = SpanRecords()
    batch = [records.record(span) for span in chanx_spans()]
    with pytest.raises(TypeError, match="origin"):
        encode_spans(batch)


def test_spans_ended_on_many_threads_all_arrive_under_their_own_scope(
    receiver: Receiver,
) -> None:
    # Spans are encoded on whichever thread ends them (sync code runs in
    # thread pools): every one must arrive once, grouped under its scope.
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    provider = create_tracer_provider(exporter=exporter, shutdown_on_exit=False)
    start = threading.Barrier(4)

    def end_spans(worker: int) -> None:
        tracer = provider.get_tracer(f"scope-{worker % 2}")
        start.wait(timeout=10)
        for index in range(50):
            tracer.start_span(f"w{worker}-{index}").end()

    workers = [threading.Thread(target=end_spans, args=(n,)) for n in range(4)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        assert provider.force_flush()
    finally:
        provider.shutdown()
    names: dict[str, list[str]] = {}
    for index in range(len(receiver.requests)):
        for resource_spans in receiver.request(index).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                kept = names.setdefault(scope_spans.scope.name, [])
                kept += [span.name for span in scope_spans.spans]
    assert sorted(names) == ["scope-0", "scope-1"]
    for scope, workers_of_scope in (("scope-0", (0, 2)), ("scope-1", (1, 3))):
        expected = {f"w{w}-{i}" for w in workers_of_scope for i in range(50)}
        assert sorted(names[scope]) == sorted(expected)
    assert exporter.fallbacks == 0
