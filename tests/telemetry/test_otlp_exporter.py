"""chanx.telemetry.otlp_exporter: the official OTLP/HTTP exporter, faster encoder.

Requests go over real HTTP to a receiver on loopback; what it receives must
parse to what the official encoder makes of the same spans, with the
official exporter's transport options and failure behaviour.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from types import SimpleNamespace

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.exporter.otlp.proto.http import Compression
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
from opentelemetry.trace import Link, SpanContext, SpanKind
from structlog.testing import capture_logs

from chanx.telemetry import otlp_exporter
from chanx.telemetry.otlp_encoding import PAUSE_EVERY
from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
from chanx.telemetry.sdk import create_tracer_provider
from tests.telemetry.test_sdk import Collector, closed_port, run


class Receiver(Collector):
    """test_sdk's loopback OTLP/HTTP collector, decoding what it received
    (the ``receiver`` fixture, in conftest)."""

    def request(self, index: int = 0) -> ExportTraceServiceRequest:
        body = self.requests[index][1]
        if self.headers[index].get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
        return request


def record_frames(provider: TracerProvider, count: int) -> None:
    """A ``connect`` span and ``count`` frame spans linked to it, as chanx ends them."""
    tracer = provider.get_tracer("chanx", "1.0")
    connect = tracer.start_span("connect /ws/room/<room>/", kind=SpanKind.SERVER)
    connect.end()
    for index in range(count):
        span = tracer.start_span(
            "receive ping",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "chanx",
                "messaging.message.body.size": index,
            },
            links=[Link(connect.get_span_context())],
        )
        span.add_event("message_sent", {"chanx.action": "pong"})
        span.end()


def chanx_spans(count: int = 3) -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource({"service.name": "chat"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    record_frames(provider, count)
    return memory.get_finished_spans()


def test_requests_carry_what_the_official_encoder_makes_of_the_spans(
    receiver: Receiver,
) -> None:
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    spans = chanx_spans()
    assert exporter.fast
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert receiver.request() == official_encode_spans(spans)
    assert exporter.fallbacks == 0


@pytest.mark.parametrize(
    ("setting", "releases"),
    [(None, []), ("0", []), ("32", [0, 0]), ("20", [0, 0, 0]), ("many", [])],
)
def test_the_exporter_releases_the_gil_every_so_many_spans_when_asked(
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    setting: str | None,
    releases: list[int],
) -> None:
    if setting is not None:
        monkeypatch.setenv(otlp_exporter.PAUSE_ENV, setting)
    slept: list[float] = []
    # Only the exporter module's view of ``time``: other threads keep theirs.
    monkeypatch.setattr(otlp_exporter, "time", SimpleNamespace(sleep=slept.append))
    with capture_logs() as logs:
        exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    spans = chanx_spans(2 * PAUSE_EVERY + 1)

    assert exporter.export(spans) is SpanExportResult.SUCCESS

    # 65 spans: two pauses every 32, three every 20; each a zero-second sleep.
    assert slept == releases
    assert receiver.request() == official_encode_spans(spans)
    if setting == "many":
        [warning] = logs
        assert warning["event"] == "otlp_encode_pause_invalid"
        assert warning["value"] == "many"
    else:
        assert logs == []


def test_transport_options_come_from_the_official_exporter(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=chat")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver.url}/custom")
    exporter = FastOTLPSpanExporter(compression=Compression.Gzip)
    spans = chanx_spans()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    [(path, _)] = receiver.requests
    [headers] = receiver.headers
    assert path == "/custom"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["content-encoding"] == "gzip"
    assert headers["x-tenant"] == "chat"
    assert receiver.request() == official_encode_spans(spans)


def test_a_batch_the_fast_encoder_refuses_is_encoded_the_official_way(
    receiver: Receiver,
) -> None:
    # The official encoder logs and skips an int beyond int64; the batch
    # must come out exactly as it would from the official exporter.
    odd = ReadableSpan(
        "odd",
        SpanContext(1, 2, False),
        attributes={"huge": 2**70, "fine": "kept"},
        instrumentation_scope=InstrumentationScope("s"),
    )
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    batch = [odd, *chanx_spans()]
    with capture_logs() as logs:
        assert exporter.export(batch) is SpanExportResult.SUCCESS
        assert exporter.export([odd]) is SpanExportResult.SUCCESS
    first = receiver.request(0)
    assert first == official_encode_spans(batch)
    [odd_scope, _] = first.resource_spans
    assert [a.key for a in odd_scope.scope_spans[0].spans[0].attributes] == ["fine"]
    assert receiver.request(1) == official_encode_spans([odd])
    assert exporter.fallbacks == 2
    assert [e["event"] for e in logs] == ["otlp_encoding_fallback"]


def test_without_the_expected_internals_the_official_export_runs(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setattr(otlp_exporter, "_INTERNALS", ("_client", "_not_there"))
    with capture_logs() as logs:
        exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    assert not exporter.fast
    [entry] = logs
    assert entry["event"] == "otlp_fast_encoder_unavailable"
    assert "_not_there" in entry["reason"]
    spans = chanx_spans()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert receiver.request() == official_encode_spans(spans)


def test_a_dead_collector_is_a_counted_failure() -> None:
    failures: list[None] = []
    exporter = FastOTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=0.5
    )
    provider = create_tracer_provider(
        exporter=exporter,
        on_export_failure=lambda: failures.append(None),
        shutdown_on_exit=False,
    )
    try:
        with provider.get_tracer("t").start_as_current_span("lost"):
            pass
        with capture_logs() as logs:
            provider.force_flush()
    finally:
        provider.shutdown()
    assert failures == [None]
    [entry] = [e for e in logs if e["event"] == "span_export_failed"]
    assert entry["exporter"] == "FastOTLPSpanExporter"


def test_an_oversized_request_is_refused_unsent(receiver: Receiver) -> None:
    exporter = FastOTLPSpanExporter(
        endpoint=f"{receiver.url}/v1/traces", max_request_size=100
    )
    assert exporter.export(chanx_spans()) is SpanExportResult.FAILURE
    assert receiver.requests == []


def test_after_shutdown_batches_are_refused(receiver: Receiver) -> None:
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    base: SpanExporter = exporter  # the official class leaves shutdown untyped
    base.shutdown()
    assert exporter.export(chanx_spans()) is SpanExportResult.FAILURE
    assert receiver.requests == []


def test_setup_exports_through_the_fast_exporter(receiver: Receiver) -> None:
    _, report = run(
        """
        from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
        provider = sdk.setup(service_name="chat")
        # The exporter setup() built, inside the failsafe wrapper.
        [processor] = sdk._bounded_processors(provider)
        inner = processor._batch_processor._exporter._inner
        with provider.get_tracer("t").start_as_current_span("over-http"):
            pass
        sdk.shutdown()
        report(exporter=type(inner).__name__, fast=inner.fast, fallbacks=inner.fallbacks)
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
    )
    assert report == {"exporter": "FastOTLPSpanExporter", "fast": True, "fallbacks": 0}
    [resource_spans] = receiver.request().resource_spans
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["over-http"]
