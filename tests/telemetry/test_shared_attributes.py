"""chanx.telemetry.shared_attributes: receive spans share what they can, safely.

Every ``receive`` span of one consumer, route and action starts from one
shared attribute set plus its frame's size. Sharing must never leak: a
user's ``set_attribute`` on one span stays on that span, and what reaches
the collector is what the official encoder makes of each span.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.util.types import AttributeValue

from chanx.hooks import ConnectionInfo
from chanx.telemetry.chanx_span import ChanxSpan
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.shared_attributes import (
    AttributeSets,
    SharedAndOne,
    SharedAttributes,
)
from chanx.telemetry.tracing import TracingHooks
from tests.telemetry.test_otlp_encoding import same_request

CONN = ConnectionInfo("c0ffee", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")
OTHER = ConnectionInfo("beef", "LobbyConsumer", "/ws/lobby/", "/ws/lobby/")


def finished_spans(
    frames: Sequence[tuple[ConnectionInfo, str, int]],
) -> list[ReadableSpan]:
    """The ``receive`` spans of ``frames`` (connection, action, size)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource({"service.name": "chat"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    for conn, action, size in frames:
        observation = hooks.message_received(conn, action, size, {})
        hooks.message_sent(conn, "pong", size + 1)
        observation.finish("ok")
    return list(memory.get_finished_spans())


def own_attributes(span: ReadableSpan) -> SharedAndOne:
    """What the span holds as its attributes (not the read-only view)."""
    attributes = span._attributes
    assert type(attributes) is SharedAndOne
    return attributes


def test_receive_spans_of_one_action_share_all_but_their_frame_size() -> None:
    first, second, lobby = finished_spans(
        [(CONN, "ping", 10), (CONN, "ping", 700), (OTHER, "ping", 10)]
    )
    assert dict(first.attributes or {}) == {
        "messaging.system": "chanx",
        "messaging.operation.type": "process",
        "messaging.operation.name": "receive",
        "chanx.action": "ping",
        "chanx.consumer": "RoomConsumer",
        "http.route": "/ws/room/<room>/",
        "messaging.message.body.size": 10,
    }
    assert (second.attributes or {})["messaging.message.body.size"] == 700
    assert (lobby.attributes or {})["chanx.consumer"] == "LobbyConsumer"
    shared = [own_attributes(span).shared for span in (first, second, lobby)]
    assert shared[0] is shared[1]
    assert shared[2] is not shared[0]


def test_a_set_and_one_more_reads_as_the_dict_it_stands_for() -> None:
    shared = SharedAttributes({"a": 1, "b": "x"})
    one = SharedAndOne(shared, "size", 17)
    assert list(one) == ["a", "b", "size"]
    assert len(one) == 3
    assert one["size"] == 17
    assert one["b"] == "x"
    assert "size" in one
    assert "c" not in one
    assert one.get("c") is None
    assert dict(one) == {"a": 1, "b": "x", "size": 17}
    assert one == {"a": 1, "b": "x", "size": 17}
    assert {**one, "c": True} == {"a": 1, "b": "x", "size": 17, "c": True}
    # Nothing was written into the shared set.
    assert shared == {"a": 1, "b": "x"}


def test_the_sdk_s_own_span_path_takes_a_set_and_one_more() -> None:
    # FAST_SPANS off: chanx starts its spans through the SDK's tracer.
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(fast_spans=False), provider)
    observation = hooks.message_received(CONN, "ping", 10, {})
    hooks.message_sent(CONN, "pong", 11)
    observation.finish("ok")
    (span,) = memory.get_finished_spans()
    assert type(span) is not ChanxSpan
    assert dict(span.attributes or {})["messaging.message.body.size"] == 10
    assert dict(span.attributes or {})["chanx.action"] == "ping"
    (sent,) = span.events
    assert dict(sent.attributes or {}) == {
        "chanx.action": "pong",
        "messaging.message.body.size": 11,
    }
    same_request([span])


def test_an_attribute_set_on_one_receive_span_stays_on_it() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    hooks = TracingHooks(TelemetryConfig(), provider)
    for room in ("a", None):
        observation = hooks.message_received(CONN, "join", 12, {})
        if room is not None:
            # What a handler does to the current span.
            current = trace.get_current_span()
            current.set_attribute("room", room)
            current.set_attribute("chanx.action", "renamed")
        observation.finish("ok")
    changed, untouched = memory.get_finished_spans()
    assert (changed.attributes or {})["room"] == "a"
    assert (changed.attributes or {})["chanx.action"] == "renamed"
    assert "room" not in (untouched.attributes or {})
    assert (untouched.attributes or {})["chanx.action"] == "join"
    same_request([changed, untouched])


def test_spans_with_shared_attributes_encode_like_the_official_encoder() -> None:
    spans = finished_spans(
        [(CONN, "ping", size) for size in (5, 5, 300, 2**40)]
        + [(OTHER, "ping", 5), (CONN, "leave", 5)]
    )
    assert all(type(span._attributes) is SharedAndOne for span in spans)
    # Twice: the second time the shared sets' bytes come from the cache.
    same_request(spans)
    same_request(spans)


def test_a_shared_set_as_a_span_s_own_attributes_encodes_like_the_official_one() -> (
    None
):
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("chanx")
    sets: list[dict[str, AttributeValue]] = [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 1, "b": "x"},
    ]
    for values in sets:
        span = tracer.start_span("s")
        span.add_event("e", SharedAttributes(values))
        span.end()
    same_request(memory.get_finished_spans())


def test_attribute_sets_are_built_once_per_key_and_start_over_at_their_limit() -> None:
    built: list[str] = []

    def build(key: str) -> dict[str, AttributeValue]:
        built.append(key)
        return {"key": key}

    sets = AttributeSets(build, limit=2)
    first = sets["a"]
    assert type(first) is SharedAttributes
    assert first == {"key": "a"}
    assert sets["a"] is first
    sets["b"]
    assert built == ["a", "b"]
    sets["c"]  # past the limit: the sets start over
    assert len(sets) == 1
    assert sets["a"] is not first
    assert built == ["a", "b", "c", "a"]
