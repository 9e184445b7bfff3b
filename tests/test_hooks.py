"""The telemetry seam: what hooks see, and that failing hooks change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.urls import path
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from structlog.testing import capture_logs

from chanx.hooks import ConsumerHooks, get_hooks, install_hooks
from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.app.asgi import application
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, open_rejected, open_ws
from tests.app.hooks import TRACE, RaisingHooks, RecordingHooks
from tests.app.messages import (
    BroadcastMessage,
    BroadcastPayload,
    NotifyEvent,
    NotifyPayload,
    RawBroadcastMessage,
)

RECORDER = RecordingHooks()
INSTALLED = RecordingHooks()


class HookedConsumer(RoomConsumer):
    hooks: ClassVar[ConsumerHooks | None] = RECORDER


class HookedTokenConsumer(HookedConsumer):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]


class RaisingConsumer(RoomConsumer):
    hooks: ClassVar[ConsumerHooks | None] = RaisingHooks()


class RaisingFinishConsumer(RoomConsumer):
    hooks: ClassVar[ConsumerHooks | None] = RaisingHooks(in_finish=True)


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter(
        [
            path("hooked/<str:room>/", HookedConsumer.as_asgi()),
            path("hooked-token/<str:room>/", HookedTokenConsumer.as_asgi()),
            path("raising/<str:room>/", RaisingConsumer.as_asgi()),
            path("raising-finish/<str:room>/", RaisingFinishConsumer.as_asgi()),
            path("plain/<str:room>/", RoomConsumer.as_asgi()),
        ]
    )


async def settle(*communicators: WebsocketCommunicator) -> None:
    """Wait until each consumer has finished what it was doing (one at a time)."""
    for ws in communicators:
        await ws.send_message(PingMessage())
        assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


@pytest.fixture(autouse=True)
def _reset_hooks() -> Iterator[None]:
    RECORDER.clear()
    INSTALLED.clear()
    previous = get_hooks()
    install_hooks(None)
    yield
    # Put back what the app installed (telemetry), for the tests that follow.
    install_hooks(previous)


async def test_connection_is_observed_from_start_to_close(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/hooked/h-conn/")
    [conn] = RECORDER.connections
    assert RECORDER.named("message_sent") == [
        ("message_sent", conn.connection_id, "authentication")
    ]
    await settle(ws)
    assert RECORDER.named("connection_started") == [
        ("connection_started", "HookedConsumer", "/hooked/<room>/")
    ]
    assert RECORDER.finished[0] == ("connection", None, "accepted", None, None)
    assert conn.path == "/hooked/h-conn/"
    assert conn.status_code == 200
    await ws.disconnect(code=1001)
    assert RECORDER.named("connection_closed") == [
        ("connection_closed", conn.connection_id, 1001)
    ]


async def test_rejected_connection_is_observed(
    chanx_communicator_factory: Factory,
) -> None:
    ws, _ = await open_rejected(chanx_communicator_factory, "/hooked-token/h-rej/")
    await ws.assert_closed(code=4401)
    # Frames after a failed handshake are ignored; the reply to nothing is nothing.
    await ws.send_message(PingMessage())
    assert await ws.receive_nothing()
    assert RECORDER.finished == [("connection", None, "rejected", "401", None)]
    assert RECORDER.connections[0].status_code == 401


@pytest.mark.parametrize(
    ("text", "label", "outcome", "error_type"),
    [
        ('{"action": "ping"}', "ping", "ok", None),
        (
            '{"action": "add", "payload": {"a": "x", "b": 1}}',
            "add",
            "error",
            "validation",
        ),
        ('{"action": "undeclared-xyz"}', "unknown", "error", "validation"),
        ('{"action": {"nested": 1}}', "unknown", "error", "validation"),
        ("{not json", "unknown", "error", "decode"),
        ("[1, 2]", "unknown", "error", "decode"),
        ('{"action": "fail"}', "fail", "error", "handler"),
    ],
)
async def test_message_labels_are_bounded_and_outcomes_reported(
    chanx_communicator_factory: Factory,
    text: str,
    label: str,
    outcome: str,
    error_type: str | None,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/hooked/h-msg/")
    await settle(ws)
    RECORDER.clear()
    await ws.send_to(text_data=text)
    await ws.receive_all_json()
    assert RECORDER.named("message_received") == [
        ("message_received", label, len(text))
    ]
    [(step, seen_label, seen_outcome, seen_error, exc)] = RECORDER.finished
    assert (step, seen_label, seen_outcome, seen_error) == (
        "message",
        label,
        outcome,
        error_type,
    )
    assert isinstance(exc, RuntimeError) == (error_type == "handler")


async def test_frame_sizes_are_utf8_bytes(chanx_communicator_factory: Factory) -> None:
    ws = await open_ws(chanx_communicator_factory, "/hooked/h-size/")
    await settle(ws)
    RECORDER.clear()
    raw = '{"action": "undeclared", "note": "hé ☃"}'  # é: 2 bytes, ☃: 3 bytes
    await ws.send_to(text_data=raw)
    await ws.receive_all_json()
    assert RECORDER.named("message_received") == [
        ("message_received", "unknown", len(raw.encode()))
    ]


async def test_binary_frame_is_a_decode_error(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/hooked/h-bin/")
    await settle(ws)
    RECORDER.clear()
    await ws.send_to(bytes_data=b"\x00\x01\x02")
    await ws.receive_all_json()
    assert RECORDER.named("message_received") == [("message_received", "unknown", 3)]
    assert RECORDER.finished == [("message", "unknown", "error", "decode", None)]


async def test_sent_frames_are_reported(chanx_communicator_factory: Factory) -> None:
    ws = await open_ws(chanx_communicator_factory, "/hooked/h-sent/")
    RECORDER.clear()
    await ws.send_message(PingMessage())
    await ws.receive_all_json()
    assert [call[2] for call in RECORDER.named("message_sent")] == ["pong", "complete"]


async def test_group_message_carrier_travels_to_receivers(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/hooked/h-pub/")
    receiver = await open_ws(chanx_communicator_factory, "/hooked/h-pub/")
    sender_id, receiver_id = (c.connection_id for c in RECORDER.connections)
    await settle(sender, receiver)
    RECORDER.clear()
    await sender.send_message(BroadcastMessage(payload=BroadcastPayload(text="t")))
    await sender.receive_all_json()
    await receiver.receive_all_json(wait_group=True)
    await settle(receiver)
    assert RECORDER.named("publish") == [
        ("publish", sender_id, "group_message", "chat_group", ["room_h-pub"])
    ]
    assert RECORDER.named("deliver") == [
        ("deliver", receiver_id, "group_message", "chat_group", TRACE)
    ]
    assert ("publish", "chat_group", "ok", None, None) in RECORDER.finished
    assert ("deliver", "chat_group", "ok", None, None) in RECORDER.finished


async def test_raw_group_json_has_bounded_label(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/hooked/h-raw/")
    receiver = await open_ws(chanx_communicator_factory, "/hooked/h-raw/")
    RECORDER.clear()
    await sender.send_message(RawBroadcastMessage(payload={"action": "free-text-9"}))
    await sender.receive_all_json()
    await receiver.receive_all_json(wait_group=True)
    assert [call[3] for call in RECORDER.named("publish")] == ["unknown"]
    assert [call[3] for call in RECORDER.named("deliver")] == ["unknown"]


async def test_event_carrier_travels_to_receivers(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/hooked/h-ev/")
    [conn] = RECORDER.connections
    RECORDER.clear()
    event = NotifyEvent(payload=NotifyPayload(content="c"))
    await HookedConsumer.asend_channel_event("room_h-ev", event)
    await ws.receive_all_json()
    assert RECORDER.named("publish") == [
        ("publish", None, "event", "notify", ["room_h-ev"])
    ]
    assert RECORDER.named("deliver") == [
        ("deliver", conn.connection_id, "event", "notify", TRACE)
    ]


@pytest.mark.parametrize("prefix", ["raising", "raising-finish"])
async def test_failing_hooks_break_nothing(
    chanx_communicator_factory: Factory, prefix: str
) -> None:
    with capture_logs() as logs:
        sender = await open_ws(chanx_communicator_factory, f"/{prefix}/h-fail/")
        receiver = await open_ws(chanx_communicator_factory, f"/{prefix}/h-fail/")
        await sender.send_message(PingMessage())
        assert await sender.receive_all_json() == [{"action": "pong", "payload": None}]
        await sender.send_message(BroadcastMessage(payload=BroadcastPayload(text="x")))
        assert await sender.receive_all_json() == []
        [frame] = await receiver.receive_all_json(wait_group=True)
        assert frame["payload"] == "x"
        await RaisingConsumer.asend_channel_event(
            "room_h-fail", NotifyEvent(payload=NotifyPayload(content="e"))
        )
        [event_frame] = await receiver.receive_all_json()
        assert event_frame["action"] == "event_received"
        await receiver.disconnect()
    failures = [e for e in logs if e["event"] == "telemetry_hook_failed"]
    hooks = {e["hook"].removesuffix(".finish") for e in failures}
    assert {
        "connection_started",
        "message_received",
        "publish",
        "deliver",
    } <= hooks
    if prefix == "raising":
        assert {"message_sent", "connection_closed"} <= hooks
    assert all(e["log_level"] == "error" and e["exc_info"] is True for e in failures)


async def test_installed_hooks_are_the_default(
    chanx_communicator_factory: Factory,
) -> None:
    install_hooks(INSTALLED)
    await open_ws(chanx_communicator_factory, "/plain/h-inst/")
    assert INSTALLED.named("connection_started") == [
        ("connection_started", "RoomConsumer", "/plain/<room>/")
    ]
    # A class attribute wins over the installed default.
    await open_ws(chanx_communicator_factory, "/hooked/h-inst/")
    assert len(INSTALLED.named("connection_started")) == 1
    assert len(RECORDER.named("connection_started")) == 1

    install_hooks(None)
    INSTALLED.clear()
    ws = await open_ws(chanx_communicator_factory, "/plain/h-inst/")
    await ws.send_message(PingMessage())
    await ws.receive_all_json()
    assert INSTALLED.calls == []


async def test_installed_failing_hooks_are_made_safe(
    chanx_communicator_factory: Factory,
) -> None:
    install_hooks(RaisingHooks())
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "/plain/h-inst-fail/")
        await ws.send_message(PingMessage())
        assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    assert any(e["event"] == "telemetry_hook_failed" for e in logs)


async def test_a_failed_group_join_is_reported_as_a_channel_layer_error() -> None:
    hooks = RecordingHooks()
    install_hooks(hooks)
    try:
        layer = get_channel_layer()
        assert layer is not None
        original = layer.group_add

        async def failing_group_add(group: str, channel: str) -> None:
            raise ConnectionError("layer down")

        layer.group_add = failing_group_add
        try:
            communicator = WebsocketCommunicator(application, "/ws/room/down/")
            await communicator.connect()
            auth = await communicator.receive_json_from()
            await communicator.disconnect()
        finally:
            layer.group_add = original
    finally:
        install_hooks(None)
    assert auth["payload"]["status_code"] == 500
    assert ("channel_layer_error", "group_add", "ConnectionError") in hooks.calls


def test_hooks_that_isolate_their_own_failures_are_not_wrapped_twice() -> None:
    from chanx.hooks import NOOP_HOOKS, SafeHooks, as_safe

    class Isolating(RecordingHooks):
        failsafe: ClassVar[bool] = True

    isolating = Isolating()
    plain = RecordingHooks()
    assert as_safe(isolating) is isolating
    assert isinstance(as_safe(plain), SafeHooks)
    assert as_safe(NOOP_HOOKS) is NOOP_HOOKS
