"""chanx's own spans take a shorter way to OTLP bytes, with the same result.

A span chanx started and only chanx wrote to (its ``receive``, ``send`` and
``process`` spans, with their ``message_sent`` events) is encoded by
``_chanx_body``: its ids and times in two packs, its name, kind, status and
flags from bytes kept per name, and its shared attribute sets whole. Every
other span takes the general path. Either way the collector must get what
the official encoder would have sent.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from chanx.hooks import ConnectionInfo
from chanx.telemetry import otlp_span, otlp_wire
from chanx.telemetry.chanx_span import ChanxSpan
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.otlp_encoding import encode_spans
from chanx.telemetry.shared_attributes import SharedAndOne, SharedAttributes
from chanx.telemetry.tracing import TracingHooks
from tests.telemetry.test_otlp_encoding import same_request

CONN = ConnectionInfo("c0ffee", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")
TRACEPARENT = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

Frame = Callable[[TracingHooks, ConnectionInfo], None]


def spans_of(*frames: Frame) -> list[ReadableSpan]:
    """The spans ``frames`` make through chanx's tracing hooks."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource({"service.name": "chat"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    conn = ConnectionInfo(CONN.connection_id, CONN.consumer, CONN.path, CONN.route)
    hooks.connection_started(conn, {"headers": []}).finish("accepted")
    for frame in frames:
        frame(hooks, conn)
    spans = memory.get_finished_spans()
    return [span for span in spans if not span.name.startswith("connect")]


def echo(carrier: dict[str, str], size: int = 17) -> Frame:
    def frame(hooks: TracingHooks, conn: ConnectionInfo) -> None:
        observation = hooks.message_received(conn, "ping", size, carrier)
        hooks.message_sent(conn, "pong", size + 1)
        observation.finish("ok")

    return frame


def publishing(hooks: TracingHooks, conn: ConnectionInfo) -> None:
    observation = hooks.message_received(conn, "chat", 40, {})
    hooks.publish(conn, "event", "chat_message", ["room_1"], {}).finish("ok")
    observation.finish("ok")


def test_chanx_spans_take_the_short_way_and_encode_as_the_official_encoder() -> None:
    spans = spans_of(echo({}), echo(TRACEPARENT, size=300), publishing)
    assert all(type(span) is ChanxSpan for span in spans)
    root, remote_child, receive, local_child = spans[0], spans[1], spans[3], spans[2]
    assert root.parent is None
    assert root.links
    assert remote_child.parent is not None
    assert remote_child.parent.is_remote
    assert local_child.name.startswith("send")
    assert local_child.parent == receive.get_span_context()
    for span in spans:
        assert otlp_span._chanx_body(span) is not None, span.name
    same_request(spans)
    same_request(spans)  # again, from the kept bytes


def test_what_a_handler_changes_sends_a_span_the_general_way() -> None:
    def failing(hooks: TracingHooks, conn: ConnectionInfo) -> None:
        observation = hooks.message_received(conn, "ping", 17, {})
        current = trace.get_current_span()
        current.set_attribute("room", "a")
        current.add_event("checked", {"ok": True})
        observation.finish("error", "ValueError", ValueError("bad"))

    def erring(hooks: TracingHooks, conn: ConnectionInfo) -> None:
        # Only the status and chanx's own error.type: no handler involved.
        observation = hooks.message_received(conn, "ping", 17, {})
        observation.finish("error", "ValueError")

    spans = spans_of(failing, erring, echo({}))
    changed, errored, usual = spans
    assert changed.status.status_code is StatusCode.ERROR
    assert errored.status.status_code is StatusCode.ERROR
    assert (errored.attributes or {})["error.type"] == "ValueError"
    assert otlp_span._chanx_body(changed) is None
    assert otlp_span._chanx_body(errored) is None
    assert otlp_span._chanx_body(usual) is not None
    same_request(spans)


def test_one_name_with_two_kinds_keeps_each_kind() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    for kind in (SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.CONSUMER):
        hooks.spans.start("same name", None, kind, {"n": 1}, None).end()
    spans = memory.get_finished_spans()
    assert [span.kind for span in spans] == [
        SpanKind.CONSUMER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    ]
    assert all(otlp_span._chanx_body(span) is not None for span in spans)
    same_request(spans)


def test_message_sent_events_share_their_action_s_attributes() -> None:
    first, second = spans_of(echo({}, size=5), echo({}, size=9))
    sent = [span.events[0] for span in (first, second)]
    assert [dict(event.attributes or {}) for event in sent] == [
        {"chanx.action": "pong", "messaging.message.body.size": 6},
        {"chanx.action": "pong", "messaging.message.body.size": 10},
    ]
    own = [event.attributes for event in sent]
    assert isinstance(own[0], SharedAndOne)
    assert isinstance(own[1], SharedAndOne)
    assert own[0].shared is own[1].shared
    same_request([first, second])


@pytest.mark.parametrize(
    "own",
    [
        # The same set with another key, and a value of another type that
        # compares equal (True == 1).
        [("size", 1), ("count", 1), ("size", True), ("size", 1)],
        [("size", 1), ("size", "1"), ("size", 1.0), ("tags", ["a", "b"])],
    ],
)
def test_sets_and_one_more_encode_each_key_and_value_as_given(
    own: list[tuple[str, AttributeValue]],
) -> None:
    shared = SharedAttributes({"messaging.system": "chanx"})
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    for key, value in own:
        hooks.spans.start(
            "s", None, SpanKind.INTERNAL, SharedAndOne(shared, key, value), None
        ).end()
    same_request(memory.get_finished_spans())
    same_request(memory.get_finished_spans())


def test_a_set_and_one_more_keeps_few_values_of_its_own_attribute() -> None:
    shared = SharedAttributes({"messaging.system": "chanx"})
    tag = b"\x4a"
    encoded = [
        otlp_wire.shared_and_one(otlp_wire._FieldCache(), tag, shared, "n", n)
        for n in range(3)
    ]
    cache = otlp_wire._FieldCache()
    for n in range(1000):
        assert (
            otlp_wire.shared_and_one(cache, tag, shared, "n", n % 3) == (encoded[n % 3])
        )
        otlp_wire.shared_and_one(cache, tag, shared, "n", 10 + n)
    kept = cache.extended[id(shared)][3]
    assert len(kept) == otlp_wire._MAX_PER_KEY


def test_links_with_attributes_and_plain_events_encode_as_given() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    linked = SpanContext(0xABC, 0xDEF, is_remote=True)
    for number in range(2):
        links = [Link(linked, {"n": number}), Link(linked)]
        span = hooks.spans.start("s", None, SpanKind.INTERNAL, {"n": 1}, links)
        span.add_trusted_event("plain", {"n": number})  # type: ignore[attr-defined]
        span.end()
    spans = memory.get_finished_spans()
    assert all(otlp_span._chanx_body(span) is not None for span in spans)
    same_request(spans)
    same_request(spans)


def fast_then_official(spans: list[ReadableSpan]) -> None:
    """chanx's encoding taken first (before anything reads the spans' events),
    then compared with the official encoder's."""
    fast = ExportTraceServiceRequest.FromString(encode_spans(spans))
    official = official_encode_spans(spans)
    assert fast == official


def twice_sent(hooks: TracingHooks, conn: ConnectionInfo) -> None:
    observation = hooks.message_received(conn, "ping", 17, {})
    hooks.message_sent(conn, "pong", 18)
    hooks.message_sent(conn, "pong", 300)
    observation.finish("ok")


def test_a_frame_sent_back_is_kept_compact_and_sent_as_the_official_encoder() -> None:
    spans = spans_of(echo({}, size=5), echo(TRACEPARENT, size=9))
    # No Event, attribute dict or events list until something asks.
    assert all(span._compact_event is not None for span in spans)  # type: ignore[attr-defined]
    assert all(span._event_list is None for span in spans)  # type: ignore[attr-defined]
    fast_then_official(spans)
    # The official encoder read the events: each span made its list once.
    assert all(span._compact_event is None for span in spans)  # type: ignore[attr-defined]
    sent = [span.events for span in spans]
    assert [len(events) for events in sent] == [1, 1]
    assert [dict(events[0].attributes or {}) for events in sent] == [
        {"chanx.action": "pong", "messaging.message.body.size": 6},
        {"chanx.action": "pong", "messaging.message.body.size": 10},
    ]
    assert sent[0][0] is spans[0].events[0]  # the same Event on every read
    same_request(spans)


def test_events_after_the_compact_one_follow_it_in_order() -> None:
    (span,) = spans_of(twice_sent)
    fast_then_official([span])
    events = span.events
    assert [event.name for event in events] == ["message_sent", "message_sent"]
    sizes = [
        (event.attributes or {})["messaging.message.body.size"] for event in events
    ]
    assert sizes == [18, 300]
    assert events[0].timestamp <= events[1].timestamp
    same_request([span])


def test_an_ended_span_takes_no_more_events() -> None:
    def silent(hooks: TracingHooks, conn: ConnectionInfo) -> None:
        hooks.message_received(conn, "ping", 17, {}).finish("ok")

    quiet, answered = spans_of(silent, echo({}))
    shared = SharedAttributes({"chanx.action": "late"})
    for span in (quiet, answered):
        assert isinstance(span, ChanxSpan)
        span.add_extended_event("message_sent", shared, "size", 1)
    assert quiet.events == ()
    assert [
        dict(event.attributes or {})["chanx.action"] for event in answered.events
    ] == ["pong"]
    same_request([quiet, answered])
