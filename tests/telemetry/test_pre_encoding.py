"""Spans encoded as they end: the batch queue holds bytes, exports stay exact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler

from chanx.telemetry.otlp_encoding import EncodedSpan
from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
from chanx.telemetry.sdk import BoundedSpanProcessor, create_tracer_provider
from tests.telemetry.test_otlp_exporter import Receiver, record_frames


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def _provider(receiver: Receiver, sampler: Sampler | None = None) -> TracerProvider:
    exporter = FastOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    if sampler is None:
        return create_tracer_provider(service_name="chat", exporter=exporter)
    return create_tracer_provider(
        service_name="chat", exporter=exporter, sampler=sampler
    )


def _bounded(provider: TracerProvider) -> BoundedSpanProcessor:
    [processor] = [
        p
        for p in provider._active_span_processor._span_processors
        if isinstance(p, BoundedSpanProcessor)
    ]
    return processor


def _memory(provider: TracerProvider) -> InMemorySpanExporter:
    """The same spans, as objects, for the official encoder to compare with."""
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


def _spans_by_id(request: ExportTraceServiceRequest) -> dict[bytes, Any]:
    return {
        span.span_id: span
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }


def test_ended_spans_wait_encoded_and_export_as_the_official_encoder_would(
    receiver: Receiver,
) -> None:
    provider = _provider(receiver)
    memory = _memory(provider)
    record_frames(provider, 5)
    queued = list(_bounded(provider)._batch_processor._queue)
    assert len(queued) == 6
    assert all(type(item) is EncodedSpan for item in queued)
    assert provider.force_flush()
    assert receiver.request(0) == official_encode_spans(memory.get_finished_spans())
    provider.shutdown()


def test_a_span_the_encoder_refuses_waits_as_is_and_is_exported_with_the_rest(
    receiver: Receiver,
) -> None:
    provider = _provider(receiver)
    memory = _memory(provider)
    record_frames(provider, 2)
    # An int past 64 bits: only the official encoder handles it (it drops it).
    provider.get_tracer("other").start_span("odd", attributes={"huge": 2**70}).end()
    queued = list(_bounded(provider)._batch_processor._queue)
    assert [type(item) for item in queued].count(EncodedSpan) == 3
    assert provider.force_flush()
    request = receiver.request(0)
    expected = official_encode_spans(memory.get_finished_spans())
    assert _spans_by_id(request) == _spans_by_id(expected)
    provider.shutdown()


def test_spans_that_are_not_sampled_are_neither_encoded_nor_exported(
    receiver: Receiver,
) -> None:
    provider = _provider(receiver, sampler=ALWAYS_OFF)
    record_frames(provider, 3)
    assert len(_bounded(provider)._batch_processor._queue) == 0
    assert provider.force_flush()
    assert receiver.requests == []
    provider.shutdown()


def test_other_exporters_still_get_span_objects() -> None:
    memory = InMemorySpanExporter()
    provider = create_tracer_provider(service_name="chat", exporter=memory)
    record_frames(provider, 2)
    assert provider.force_flush()
    spans = memory.get_finished_spans()
    assert [span.name for span in spans] == ["connect /ws/room/<room>/"] + [
        "receive ping"
    ] * 2
    assert all(isinstance(span, ReadableSpan) for span in spans)
    provider.shutdown()
