"""Deliveries of group messages: what their ``process`` spans share, and what not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from chanx.hooks import ConnectionInfo
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.tracing import TracingHooks

ROUTE = "/ws/room/<room>/"


def connection(index: int, consumer: str = "RoomConsumer") -> ConnectionInfo:
    return ConnectionInfo(f"{index:032x}", consumer, "/ws/room/1/", ROUTE)


MakeHooks = Callable[..., TracingHooks]


@pytest.fixture(params=[True, False], ids=["fast-spans", "sdk-spans"])
def make_hooks(request: pytest.FixtureRequest, provider: TracerProvider) -> MakeHooks:
    def make(process_span: Literal["parent", "link"] = "parent") -> TracingHooks:
        config = TelemetryConfig(process_span=process_span, fast_spans=request.param)
        return TracingHooks(config, tracer_provider=provider)

    return make


def publish(hooks: TracingHooks, action: str) -> dict[str, str]:
    carrier: dict[str, str] = {}
    hooks.publish(connection(0), "group_message", action, ["room_1"], carrier).finish(
        "ok"
    )
    return carrier


def deliver(
    hooks: TracingHooks,
    carrier: dict[str, str],
    conn: ConnectionInfo,
    outcome: str = "ok",
    action: str = "chat",
) -> None:
    hooks.deliver(conn, "group_message", action, carrier).finish(outcome, "boom")


def finished(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    value: int = span.context.span_id
    return value


@pytest.mark.parametrize("process_span", ["parent", "link"])
def test_interleaved_messages_each_continue_their_own_send(
    make_hooks: MakeHooks,
    exporter: InMemorySpanExporter,
    process_span: Literal["parent", "link"],
) -> None:
    hooks = make_hooks(process_span)
    first, second = publish(hooks, "chat"), publish(hooks, "chat")
    sends = finished(exporter, "send")
    # Members of two groups receive two messages, deliveries interleaved.
    order = [first, first, second, first, second, second]
    for index, carrier in enumerate(order):
        deliver(hooks, carrier, connection(index + 1))
    processes = finished(exporter, "process")
    expected = [span_id(sends[0] if c is first else sends[1]) for c in order]
    if process_span == "link":
        assert all(span.parent is None for span in processes)
        linked = [[link.context.span_id for link in s.links] for s in processes]
        assert linked == [[sid] for sid in expected]
        traces = {span.context.trace_id for span in processes if span.context}
        assert len(traces) == len(processes)  # each delivery its own trace
    else:
        assert [s.parent.span_id if s.parent else None for s in processes] == expected
        assert all(not span.links for span in processes)


def test_an_error_stays_on_its_own_delivery(
    make_hooks: MakeHooks, exporter: InMemorySpanExporter
) -> None:
    hooks = make_hooks()
    carrier = publish(hooks, "chat")
    deliver(hooks, carrier, connection(1))
    deliver(hooks, carrier, connection(2), outcome="error")
    deliver(hooks, carrier, connection(3))
    deliver(hooks, carrier, connection(4, consumer="LobbyConsumer"), action="news")
    attributes = [dict(span.attributes or {}) for span in finished(exporter, "process")]
    base = {
        "messaging.system": "chanx",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "chanx.kind": "group_message",
        "chanx.consumer": "RoomConsumer",
        "chanx.action": "chat",
    }
    assert attributes == [
        base,
        {**base, "error.type": "boom"},
        base,
        {**base, "chanx.consumer": "LobbyConsumer", "chanx.action": "news"},
    ]


def test_an_event_delivery_names_its_handler(
    make_hooks: MakeHooks, exporter: InMemorySpanExporter
) -> None:
    hooks = make_hooks()
    carrier = publish(hooks, "chat")
    hooks.deliver(connection(1), "event", "notify", carrier).finish("ok")
    [span] = finished(exporter, "process")
    assert span.name == "process notify"
    assert dict(span.attributes or {})["chanx.handler"] == "notify"
    assert "chanx.action" not in dict(span.attributes or {})
