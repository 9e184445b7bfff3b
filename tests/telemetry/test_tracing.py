"""OpenTelemetry spans recorded by real consumers through TracingHooks."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.urls import path
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from chanx.hooks import ConnectionInfo, ConsumerHooks, Observation
from chanx.messages.incoming import PingMessage
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.tracing import CONNECT_SPAN_KEY, TracingHooks
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, open_rejected, open_ws
from tests.app.messages import (
    BroadcastMessage,
    BroadcastPayload,
    FailEvent,
    NotifyEvent,
    NotifyPayload,
)
from tests.app.routing import websocket_urlpatterns

ROUTE = "/ws/room/<room>/"


class ExplodingConnectConsumer(RoomConsumer):
    async def connect(self) -> None:
        raise RuntimeError("connect exploded")


class ServerSpanMiddleware:
    """What ASGI instrumentation does: a server span around the whole socket."""

    def __init__(self, inner: Any, provider: TracerProvider) -> None:
        self.inner = inner
        self.tracer = provider.get_tracer("asgi-test")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        with self.tracer.start_as_current_span("websocket", kind=SpanKind.SERVER):
            return await self.inner(scope, receive, send)


class CarrierTracingHooks(TracingHooks):
    """Also keeps what each receiver found in the channel-layer carrier."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delivered: list[dict[str, Any]] = []

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        self.delivered.append(dict(carrier))
        return super().deliver(conn, kind, name, carrier)


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter(
        [
            *websocket_urlpatterns,
            path("ws/exploding/<str:room>/", ExplodingConnectConsumer.as_asgi()),
        ]
    )


@pytest.fixture(params=[True, False], ids=["fast-spans", "sdk-spans"])
def trace_with(
    request: pytest.FixtureRequest,
    use_hooks: Callable[[ConsumerHooks], None],
    provider: TracerProvider,
) -> Callable[[TelemetryConfig], CarrierTracingHooks]:
    # Every test runs on both span paths: chanx.telemetry.fast_spans and the
    # SDK's own start_span must record the same spans.
    def install(config: TelemetryConfig) -> CarrierTracingHooks:
        config = dataclasses.replace(config, fast_spans=request.param)
        hooks = CarrierTracingHooks(config, tracer_provider=provider)
        use_hooks(hooks)
        return hooks

    return install


@pytest.fixture
def hooks(
    trace_with: Callable[[TelemetryConfig], CarrierTracingHooks],
) -> CarrierTracingHooks:
    return trace_with(TelemetryConfig())


def new_traceparent() -> tuple[str, int, int]:
    trace_id, span_id = random.getrandbits(128), random.getrandbits(64)
    return f"00-{trace_id:032x}-{span_id:016x}-01", trace_id, span_id


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def one(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = spans(exporter, name)
    names = [s.name for s in exporter.get_finished_spans()]
    assert len(found) == 1, f"{name!r} in {names}"
    return found[0]


def ctx(span: ReadableSpan) -> SpanContext:
    context: SpanContext | None = span.context
    assert context is not None
    return context


def ids(context: SpanContext) -> tuple[int, int]:
    return context.trace_id, context.span_id


def is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return (
        child.parent is not None
        and child.parent.span_id == ctx(parent).span_id
        and ctx(child).trace_id == ctx(parent).trace_id
    )


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events]


def sent_actions(span: ReadableSpan) -> list[Any]:
    return [
        attrs["chanx.action"] for name, attrs in events(span) if name == "message_sent"
    ]


async def settle(*communicators: WebsocketCommunicator) -> None:
    """A consumer handles one thing at a time: its pong means the rest is done."""
    for ws in communicators:
        await ws.send_message(PingMessage())
        assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


def everything_said(finished: Sequence[ReadableSpan]) -> str:
    """Every span name, attribute and event, to search for leaked raw names."""
    said = []
    for span in finished:
        said.append(span.name)
        said.append(json.dumps(dict(span.attributes or {})))
        said.extend(json.dumps([e.name, dict(e.attributes or {})]) for e in span.events)
    return "\n".join(said)


# The handshake ----------------------------------------------------------------


async def test_connect_span_continues_the_handshake_traceparent(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    traceparent, trace_id, span_id = new_traceparent()
    headers = [(b"traceparent", traceparent.encode())]
    ws = await open_ws(chanx_communicator_factory, "/ws/room/c1/", headers)
    await settle(ws)
    span = one(exporter, f"connect {ROUTE}")
    assert span.kind is SpanKind.SERVER
    assert span.parent is not None
    assert span.parent.is_remote
    assert (ctx(span).trace_id, span.parent.span_id) == (trace_id, span_id)
    attributes = dict(span.attributes or {})
    connection_id = attributes.pop("chanx.connection_id")
    assert isinstance(connection_id, str)
    assert len(connection_id) == 32
    assert attributes == {
        "http.route": ROUTE,
        "chanx.consumer": "RoomConsumer",
        "chanx.auth.status_code": 200,
        "chanx.connect.result": "accepted",
    }
    assert span.status.status_code is StatusCode.UNSET
    # The span is current during authentication: the auth frame is its event.
    assert sent_actions(span) == ["authentication"]


async def test_connect_span_without_traceparent_starts_a_trace(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    await settle(await open_ws(chanx_communicator_factory, "/ws/room/c2/"))
    assert one(exporter, f"connect {ROUTE}").parent is None


async def test_server_span_of_the_asgi_server_parents_connect_and_sees_the_close(
    chanx_communicator_factory: Factory,
    chanx_router: Any,
    provider: TracerProvider,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    router = ServerSpanMiddleware(chanx_router, provider)
    ws = await chanx_communicator_factory(path="/ws/room/c3/", router=router)
    assert (await ws.connect())[0]
    await ws.assert_authenticated_status_ok()
    await settle(ws)
    await ws.disconnect(code=4321)
    server = one(exporter, "websocket")
    assert is_child(one(exporter, f"connect {ROUTE}"), server)
    assert ("connection_closed", {"chanx.close_code": 4321}) in events(server)


async def test_rejected_connection_is_not_an_error_status(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/token/c4/")
    assert frame["payload"]["status_code"] == 401
    await ws.assert_closed(code=4401)
    span = one(exporter, "connect /ws/token/<room>/")
    attributes = dict(span.attributes or {})
    assert attributes["chanx.connect.result"] == "rejected"
    assert attributes["chanx.auth.status_code"] == 401
    assert attributes["error.type"] == "401"
    assert span.status.status_code is StatusCode.UNSET


async def test_connect_that_raises_is_an_error(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/exploding/c5/")
    assert await ws.connect() == (False, 4500)
    span = one(exporter, "connect /ws/exploding/<room>/")
    attributes = dict(span.attributes or {})
    assert attributes["chanx.connect.result"] == "error"
    assert attributes["error.type"] == "RuntimeError"
    assert span.status.status_code is StatusCode.ERROR
    [(name, exception)] = events(span)
    assert name == "exception"
    assert exception["exception.type"] == "RuntimeError"


async def test_failed_group_join_is_an_event_on_the_connect_span(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing_group_add(group: str, channel: str) -> None:
        raise ConnectionError("layer down")

    monkeypatch.setattr(get_channel_layer(), "group_add", failing_group_add)
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/room/c6/")
    assert frame["payload"]["status_code"] == 500
    await ws.assert_closed()
    span = one(exporter, f"connect {ROUTE}")
    assert (
        "channel_layer_error",
        {"chanx.operation": "group_add", "error.type": "ConnectionError"},
    ) in events(span)
    assert dict(span.attributes or {})["chanx.connect.result"] == "rejected"


# Client frames ----------------------------------------------------------------


async def test_receive_span_is_a_root_linked_to_connect(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/r1/")
    text = '{"action": "ping"}'
    await ws.send_to(text_data=text)
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    connect = one(exporter, f"connect {ROUTE}")
    span = one(exporter, "receive ping")
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is None
    assert ctx(span).trace_id != ctx(connect).trace_id
    assert [ids(link.context) for link in span.links] == [ids(ctx(connect))]
    assert dict(span.attributes or {}) == {
        "messaging.system": "chanx",
        "messaging.operation.type": "process",
        "messaging.operation.name": "receive",
        "chanx.action": "ping",
        "chanx.consumer": "RoomConsumer",
        "messaging.message.body.size": len(text),
        "http.route": ROUTE,
    }
    # The pong went out while the frame was handled; "complete" after.
    assert sent_actions(span) == ["pong"]
    assert span.status.status_code is StatusCode.UNSET


async def test_every_frame_of_a_connection_links_to_its_connect_span(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    first = await open_ws(chanx_communicator_factory, "/ws/room/r1b/")
    second = await open_ws(chanx_communicator_factory, "/ws/room/r1c/")
    for ws in (first, second, first):
        await ws.send_to(text_data='{"action": "ping"}')
        assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    connects = [
        s for s in exporter.get_finished_spans() if s.name.startswith("connect")
    ]
    receives = [s for s in exporter.get_finished_spans() if s.name == "receive ping"]
    assert len(connects) == 2
    assert len(receives) == 3
    linked = [[ids(link.context) for link in span.links] for span in receives]
    # Links are cached per connection: never another connection's.
    assert linked == [[ids(ctx(c))] for c in (connects[0], connects[1], connects[0])]


async def test_frame_traceparent_becomes_the_parent(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/r2/")
    traceparent, trace_id, span_id = new_traceparent()
    frame = {"action": "echo", "payload": "hi", "traceparent": traceparent}
    frame["tracestate"] = "vendor=abc"
    await ws.send_to(text_data=json.dumps(frame))
    assert await ws.receive_all_json() == [{"action": "echo_reply", "payload": "hi"}]
    span = one(exporter, "receive echo")
    assert span.parent is not None
    assert (ctx(span).trace_id, span.parent.span_id) == (trace_id, span_id)
    assert ctx(span).trace_state.get("vendor") == "abc"
    assert len(span.links) == 1  # still linked to its connection


@pytest.mark.parametrize(
    ("text", "name", "error_type", "exception"),
    [
        ("{not json", "receive unknown", "decode", None),
        (
            '{"action": "add", "payload": {"a": "x", "b": 1}}',
            "receive add",
            "validation",
            None,
        ),
        ('{"action": "fail"}', "receive fail", "handler", "RuntimeError"),
    ],
)
async def test_rejected_or_failed_frames_are_errors(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
    text: str,
    name: str,
    error_type: str,
    exception: str | None,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/r3/")
    await ws.send_to(text_data=text)
    [reply] = await ws.receive_all_json()
    assert reply["action"] == "error"
    span = one(exporter, name)
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == error_type
    recorded = [
        attrs["exception.type"] for n, attrs in events(span) if n == "exception"
    ]
    assert recorded == ([] if exception is None else [exception])


# Group messages and events ----------------------------------------------------


async def test_group_message_is_sent_within_receive_and_processed_under_send(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g42/")
    receiver = await open_ws(chanx_communicator_factory, "/ws/room/g42/")
    await sender.send_message(BroadcastMessage(payload=BroadcastPayload(text="t")))
    assert await sender.receive_all_json() == []
    [frame] = await receiver.receive_all_json(wait_group=True)
    assert frame["payload"] == "t"
    await settle(receiver)

    receive = one(exporter, "receive broadcast")
    send = one(exporter, "send room_{id}")
    process = one(exporter, "process chat_group")
    assert send.kind is SpanKind.PRODUCER
    assert process.kind is SpanKind.CONSUMER
    assert is_child(send, receive)
    assert is_child(process, send)
    assert dict(send.attributes or {}) == {
        "messaging.system": "chanx",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.template": "room_{id}",
        "chanx.kind": "group_message",
        "chanx.action": "chat_group",
        "chanx.consumer": "RoomConsumer",
    }
    assert dict(process.attributes or {}) == {
        "messaging.system": "chanx",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "chanx.kind": "group_message",
        "chanx.consumer": "RoomConsumer",
        "chanx.action": "chat_group",
    }
    assert sent_actions(process) == ["chat_group", "group_complete"]
    # What crossed the channel layer: text only, naming the send span.
    [carrier] = hooks.delivered
    assert set(carrier) == {"traceparent"}
    assert all(isinstance(value, str) for value in carrier.values())
    assert f"{ctx(send).span_id:016x}" in carrier["traceparent"]
    said = everything_said(exporter.get_finished_spans())
    assert "g42" not in said


async def test_process_span_links_to_send_when_configured(
    chanx_communicator_factory: Factory,
    trace_with: Callable[[TelemetryConfig], CarrierTracingHooks],
    exporter: InMemorySpanExporter,
) -> None:
    trace_with(TelemetryConfig(process_span="link"))
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g43/")
    receiver = await open_ws(chanx_communicator_factory, "/ws/room/g43/")
    await sender.send_message(BroadcastMessage(payload=BroadcastPayload(text="t")))
    await sender.receive_all_json()
    await receiver.receive_all_json(wait_group=True)
    await settle(receiver)
    send = one(exporter, "send room_{id}")
    process = one(exporter, "process chat_group")
    assert process.parent is None
    assert ctx(process).trace_id != ctx(send).trace_id
    assert [ids(link.context) for link in process.links] == [ids(ctx(send))]


@pytest.mark.parametrize(
    ("groups", "name"),
    [
        (["room_7", "room_8"], "send room_{id}"),
        (["room_7", "lobby_all"], "send multiple"),
    ],
)
async def test_publish_to_several_groups_names_one_destination(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
    groups: list[str],
    name: str,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/g44/")
    await ws.send_message(
        BroadcastMessage(payload=BroadcastPayload(text="t", groups=groups))
    )
    assert await ws.receive_all_json() == []
    attributes = dict(one(exporter, name).attributes or {})
    assert attributes["messaging.batch.message_count"] == 2
    assert attributes["messaging.destination.template"] == name.removeprefix("send ")


async def test_event_from_sync_code_continues_the_callers_span(
    chanx_communicator_factory: Factory,
    provider: TracerProvider,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/zq42/")
    tracer = provider.get_tracer("view-test")

    def view() -> None:
        with tracer.start_as_current_span("GET /notify"):
            event = NotifyEvent(payload=NotifyPayload(content="c"))
            RoomConsumer.send_channel_event("room_zq42", event)

    await sync_to_async(view)()
    [frame] = await ws.receive_all_json()
    assert frame["action"] == "event_received"
    await settle(ws)
    request, send = one(exporter, "GET /notify"), one(exporter, "send room_{id}")
    process = one(exporter, "process notify")
    assert is_child(send, request)
    assert is_child(process, send)
    assert dict(send.attributes or {}) == {
        "messaging.system": "chanx",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.template": "room_{id}",
        "chanx.kind": "event",
        "chanx.handler": "notify",
    }
    process_attributes = dict(process.attributes or {})
    assert process_attributes["chanx.kind"] == "event"
    assert process_attributes["chanx.handler"] == "notify"
    assert "chanx.action" not in process_attributes
    assert sent_actions(process) == ["event_received"]
    # Not hex: a random id in the spans cannot contain it by chance.
    assert "zq42" not in everything_said(exporter.get_finished_spans())


async def test_failing_event_handler_is_an_error(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/e43/")
    await RoomConsumer.asend_channel_event("room_e43", FailEvent())
    assert await ws.receive_all_json() == []
    await settle(ws)
    process = one(exporter, "process fail_event")
    assert process.status.status_code is StatusCode.ERROR
    assert dict(process.attributes or {})["error.type"] == "handler"
    assert [n for n, _ in events(process)] == ["exception"]
    # Telemetry left no context behind: the next frame is a new trace.
    assert one(exporter, "receive ping").parent is None


async def test_connect_span_context_is_kept_for_links(
    chanx_communicator_factory: Factory,
    hooks: CarrierTracingHooks,
    exporter: InMemorySpanExporter,
) -> None:
    conn = ConnectionInfo("c" * 32, "RoomConsumer", "/ws/room/1/", ROUTE)
    observation = hooks.connection_started(conn, {"headers": []})
    observation.finish("accepted")
    observation.finish("accepted")  # a second finish changes nothing
    [span] = exporter.get_finished_spans()
    assert conn.state[CONNECT_SPAN_KEY] == ctx(span)
