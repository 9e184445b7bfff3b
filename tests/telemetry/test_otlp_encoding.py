"""chanx.telemetry.otlp_encoding: the same OTLP request as the official encoder.

Differential tests: random batches of real SDK spans (made by tracers, and
some built directly as ``ReadableSpan``) are encoded by both encoders; the
fast bytes must parse to a message equal to the official one, and
re-serialize to the same bytes (which also tells -0.0 from 0.0 and compares
NaNs bit for bit, where message equality cannot).
"""

from __future__ import annotations

import gc
import math
import random
import tracemalloc
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanLimits,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags, TraceState

from chanx.telemetry.otlp_encoding import PAUSE_EVERY, encode_spans
from chanx.telemetry.otlp_wire import (
    FIXED32,
    LENGTH,
    VARINT,
    UnsupportedValue,
    _caches,
    tag,
    varint,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1

texts = st.text(max_size=12)
ints = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from(
    [0, -1, INT64_MIN, INT64_MAX]
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0])
scalars = st.one_of(texts, st.booleans(), ints, floats)
# The SDK keeps homogeneous sequences; None is allowed among their items.
sequences = st.one_of(
    *(
        st.lists(st.one_of(values, st.none()), max_size=4)
        for values in (texts, st.booleans(), ints, floats)
    )
)
attributes = st.dictionaries(
    st.text(min_size=1, max_size=8), scalars | sequences, max_size=5
)
trace_states = st.lists(
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9_\-*/]{0,6}", fullmatch=True),
        st.from_regex(r"[a-zA-Z0-9]{1,6}", fullmatch=True),
    ),
    max_size=3,
    unique_by=lambda pair: pair[0],
)
statuses = st.sampled_from(list(StatusCode)).flatmap(
    lambda code: st.builds(Status, st.just(code), st.none() | texts)
)
span_contexts = st.builds(
    SpanContext,
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, UINT64_MAX),
    is_remote=st.booleans(),
    trace_flags=st.sampled_from([TraceFlags(0), TraceFlags(1)]),
    trace_state=trace_states.map(TraceState),
)
times = st.integers(0, UINT64_MAX)


def same_request(spans: Sequence[ReadableSpan]) -> None:
    """Assert both encoders produce the same request for ``spans``."""
    official = official_encode_spans(spans)
    fast = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert fast == official
    assert fast.SerializeToString(deterministic=True) == official.SerializeToString(
        deterministic=True
    )


def span_spec() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "provider": st.integers(0, 2),
            "tracer": st.integers(0, 2),
            "name": texts,
            "kind": st.sampled_from(list(SpanKind)),
            "parent": st.none() | span_contexts,
            "attributes": attributes,
            "events": st.lists(st.tuples(texts, attributes, times), max_size=3),
            "links": st.lists(st.tuples(span_contexts, attributes), max_size=3),
            "status": statuses,
            "start": times,
            "duration": st.integers(0, 10**9),
        }
    )


def providers() -> list[tuple[TracerProvider, InMemorySpanExporter]]:
    """Three providers: two with equal but distinct resources, one with a
    schema URL; small limits so that some spans have dropped counts."""
    limits = SpanLimits(
        max_span_attributes=4,
        max_events=2,
        max_links=2,
        max_event_attributes=3,
        max_link_attributes=3,
    )
    resources = [
        Resource({"service.name": "chat", "pod": 1}),
        Resource({"service.name": "chat", "pod": 1}),
        Resource({"service.name": "ünïcode", "tags": ("a", "b")}, "https://schema/1"),
    ]
    made = []
    for resource in resources:
        memory = InMemorySpanExporter()
        provider = TracerProvider(
            resource=resource, span_limits=limits, shutdown_on_exit=False
        )
        provider.add_span_processor(SimpleSpanProcessor(memory))
        made.append((provider, memory))
    return made


def tracer(provider: TracerProvider, index: int) -> trace.Tracer:
    if index == 0:
        return provider.get_tracer("chanx")
    if index == 1:
        return provider.get_tracer("chanx", "1.2.3", schema_url="https://schema/2")
    return provider.get_tracer("other", "0", attributes={"scope.flag": True})


def make_span(
    made: list[tuple[TracerProvider, InMemorySpanExporter]], spec: dict[str, Any]
) -> None:
    provider, _ = made[spec["provider"]]
    parent = spec["parent"]
    context = (
        trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent else None
    )
    span = tracer(provider, spec["tracer"]).start_span(
        spec["name"],
        context,
        kind=spec["kind"],
        attributes=spec["attributes"],
        links=[Link(ctx, attrs) for ctx, attrs in spec["links"]],
        start_time=spec["start"],
    )
    for name, event_attributes, timestamp in spec["events"]:
        span.add_event(name, event_attributes, timestamp)
    span.set_status(spec["status"])
    span.end(min(spec["start"] + spec["duration"], UINT64_MAX))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(span_spec(), max_size=8), order=st.randoms())
def test_tracer_spans_encode_like_the_official_encoder(
    specs: list[dict[str, Any]], order: random.Random
) -> None:
    made = providers()
    for spec in specs:
        make_span(made, spec)
    spans = [span for _, memory in made for span in memory.get_finished_spans()]
    order.shuffle(spans)
    same_request(spans)


@settings(max_examples=100, deadline=None)
@given(
    name=texts,
    context=span_contexts,
    parent=st.none() | span_contexts,
    attributes=st.none() | attributes,
    events=st.lists(st.tuples(texts, attributes, st.none() | times), max_size=2),
    links=st.lists(st.tuples(span_contexts, st.none() | attributes), max_size=2),
    status=statuses,
    start=st.none() | times,
    end=st.none() | times,
    scoped=st.booleans(),
)
def test_directly_built_spans_encode_like_the_official_encoder(
    name: str,
    context: SpanContext,
    parent: SpanContext | None,
    attributes: dict[str, Any] | None,
    events: list[tuple[str, dict[str, Any], int | None]],
    links: list[tuple[SpanContext, dict[str, Any] | None]],
    status: Status,
    start: int | None,
    end: int | None,
    scoped: bool,
) -> None:
    # Plain dicts and tuples instead of the SDK's bounded containers, no
    # scope, and a new (equal) default resource per span.
    span = ReadableSpan(
        name,
        context,
        parent,
        attributes=attributes,
        events=[Event(n, a, t) for n, a, t in events],
        links=[Link(c, a) for c, a in links],
        status=status,
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope("s", "1") if scoped else None,
    )
    twin = ReadableSpan("twin", context, instrumentation_scope=None)
    same_request([span, twin, span])


def test_a_batch_encoded_with_pauses_is_the_same_request() -> None:
    # Spans of every resource and scope on both sides of each pause: the
    # groups go on across pauses, in order of first appearance.
    made = providers()
    for index in range(2 * PAUSE_EVERY + 5):
        provider, _ = made[index % len(made)]
        tracer(provider, index % 3).start_span(f"frame {index}").end()
    spans = [span for _, memory in made for span in memory.get_finished_spans()]
    random.Random(5).shuffle(spans)
    pauses: list[int] = []

    encoded = encode_spans(spans, lambda: pauses.append(len(pauses)))

    assert pauses == [0, 1]  # between the three chunks, not after the last
    assert encoded == encode_spans(spans)
    same_request(spans)


def test_chanx_receive_spans_encode_like_the_official_encoder() -> None:
    made = providers()
    provider, memory = made[0]
    connect = provider.get_tracer("chanx").start_span("connect /ws/")
    connect.end()
    for size in (20, 20, 35):
        span = provider.get_tracer("chanx").start_span(
            "receive ping",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "chanx",
                "messaging.message.body.size": size,
            },
            links=[Link(connect.get_span_context())],
        )
        span.add_event("message_sent", {"chanx.action": "pong", "size": size})
        span.end()
    # Twice: the second batch reuses what the first one cached.
    same_request(memory.get_finished_spans())
    same_request(memory.get_finished_spans())


class RenamingSpan(ReadableSpan):
    """A span class of its own: what its properties say is what is exported."""

    @property
    def name(self) -> str:
        return "renamed " + self._name

    @property
    def attributes(self) -> Any:
        return {**(self._attributes or {}), "added": 1}

    @property
    def dropped_links(self) -> int:
        return 3

    @property
    def resource(self) -> Resource:
        return Resource({"service.name": "own"})


def test_a_span_class_with_its_own_properties_is_read_through_them() -> None:
    context = SpanContext(1, 2, is_remote=False)
    link = Link(SpanContext(3, 4, is_remote=True))
    span = RenamingSpan(
        "receive", context, attributes={"a": "b"}, links=(link,), end_time=5
    )
    same_request([span])
    [resource] = ExportTraceServiceRequest.FromString(
        encode_spans([span])
    ).resource_spans
    [exported] = resource.scope_spans[0].spans
    assert exported.name == "renamed receive"
    assert exported.dropped_links_count == 3


def test_connect_spans_leave_no_memory_behind_per_connection() -> None:
    # Each connect span has a connection id no other span has: remembering
    # its encoding would hold ~200 bytes per connection, for nothing.
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("chanx")

    def encode_connects(count: int) -> None:
        for _ in range(count):
            attributes = {
                "http.route": "/ws/room/<room>/",
                "chanx.consumer": "RoomConsumer",
                "chanx.connection_id": uuid.uuid4().hex,
            }
            tracer.start_span("connect /ws/room/<room>/", attributes=attributes).end()
        same_request(memory.get_finished_spans())
        encode_spans(memory.get_finished_spans())
        memory.clear()

    encode_connects(10)  # what repeats is cached now
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        encode_connects(1000)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 20_000, f"{kept} bytes kept after 1000 connect spans"


def test_equal_values_of_different_types_are_not_confused() -> None:
    # True == 1 == 1.0 and -0.0 == 0.0: a cache keyed on values alone would
    # write one for the other.
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for value in (True, 1, 1.0, 0.0, -0.0, "1", math.nan, False, 0):
        provider.get_tracer("t").start_span("s", attributes={"k": value}).end()
    same_request(memory.get_finished_spans())


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, [2**64], object(), {"nested": 1}],
    ids=["int64-max+1", "int64-min-1", "big-in-list", "object", "mapping"],
)
def test_values_the_official_encoder_must_decide_are_refused(value: Any) -> None:
    # A dict value is encodable (as kvlist) by both; the others raise so the
    # exporter falls back. Direct spans: the SDK would clean some of these.
    span = ReadableSpan(
        "odd",
        SpanContext(1, 2, False),
        attributes={"k": value},
        instrumentation_scope=InstrumentationScope("s"),
    )
    if isinstance(value, dict):
        same_request([span])
    else:
        with pytest.raises(UnsupportedValue):
            encode_spans([span])


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_spans([]) == b""
    assert official_encode_spans([]).SerializeToString() == b""


@pytest.mark.parametrize(
    "value", [0, 1, 127, 128, 300, 16383, 16384, 2**35, UINT64_MAX]
)
def test_varint_is_protobufs(value: int) -> None:
    encoded = Span(dropped_links_count=value & 0xFFFFFFFF).SerializeToString()
    if value <= 0xFFFFFFFF:
        assert encoded == (b"\x70" + varint(value) if value else b"")
    assert len(varint(value)) == max(1, math.ceil(value.bit_length() / 7))


def test_a_field_whose_wire_type_changed_is_refused_at_import() -> None:
    assert tag(Span.DESCRIPTOR, "name", LENGTH) == b"\x2a"
    assert tag(Span.DESCRIPTOR, "flags", FIXED32) == b"\x85\x01"
    with pytest.raises(TypeError, match="flags"):
        tag(Span.DESCRIPTOR, "flags", VARINT)


def test_an_attribute_with_many_values_encodes_right_and_keeps_few() -> None:
    # Frame sizes: a value per frame. The first ones are kept, the rest
    # encoded each time (ints without the generic path).
    made = providers()
    provider, memory = made[0]
    tracer = provider.get_tracer("chanx")
    sizes = [*range(0, 600), -1, INT64_MIN, INT64_MAX, 2**40]
    for size in sizes:
        span = tracer.start_span("receive", attributes={"body.size": size, "a": "x"})
        span.end()
    spans = memory.get_finished_spans()
    same_request(spans)
    same_request(spans)
    kept = max(len(cache.by_key.get("body.size", ())) for cache in _caches.values())
    assert 0 < kept <= 256
