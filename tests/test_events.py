"""Channel events: typed delivery from async and sync code, bad events survive."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from structlog.testing import capture_logs

from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import SECRET, NoEventsConsumer, RoomConsumer
from tests.app.helpers import Factory, frame_text, open_ws
from tests.app.messages import (
    CountEvent,
    FailEvent,
    NotifyEvent,
    NotifyPayload,
    OtherEvent,
)
from tests.app.routing import router


@pytest.fixture
def chanx_router() -> Any:
    return router


async def assert_still_serving(ws: WebsocketCommunicator) -> None:
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


async def send_raw_event(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(group, {"type": "chanx.channel_event", "event": event})


async def test_async_event_reaches_receive_event_typed(
    chanx_communicator_factory: Factory,
) -> None:
    first = await open_ws(chanx_communicator_factory, "/ws/room/ev-async/")
    second = await open_ws(chanx_communicator_factory, "/ws/room/ev-async/")
    event = NotifyEvent(payload=NotifyPayload(content="deploy", level="warning"))
    await RoomConsumer.asend_channel_event("room_ev-async", event)
    expected = {
        "action": "event_received",
        "payload": {
            "type": "NotifyEvent",
            "handler": "notify",
            "payload": {"content": "deploy", "level": "warning"},
        },
    }
    # receive_all_json also checks that "complete" follows the handled event.
    assert await first.receive_all_json() == [expected]
    assert await second.receive_all_json() == [expected]


async def test_sync_event_from_worker_thread(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/ev-sync/")

    def view_like_code() -> None:
        RoomConsumer.send_channel_event("room_ev-sync", CountEvent(payload=7))

    await sync_to_async(view_like_code)()
    assert await ws.receive_all_json() == [
        {
            "action": "event_received",
            "payload": {"type": "CountEvent", "handler": "count", "payload": 7},
        }
    ]


async def test_event_only_reaches_its_group(
    chanx_communicator_factory: Factory,
) -> None:
    inside = await open_ws(chanx_communicator_factory, "/ws/room/ev-in/")
    outside = await open_ws(chanx_communicator_factory, "/ws/room/ev-out/")
    await RoomConsumer.asend_channel_event("room_ev-in", CountEvent(payload=1))
    [frame] = await inside.receive_all_json()
    assert frame["payload"]["payload"] == 1
    assert await outside.receive_nothing()


@pytest.mark.parametrize(
    ("event", "handler"),
    [
        ({"handler": "notify", "payload": {"content": 5}}, "notify"),
        ({"handler": "notify"}, "notify"),
        ({"handler": "mystery", "payload": None}, "unknown"),
        ({"payload": 1}, "unknown"),
    ],
)
async def test_invalid_event_is_logged_and_consumer_keeps_working(
    chanx_communicator_factory: Factory, event: dict[str, Any], handler: str
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/ev-bad/")
    with capture_logs() as logs:
        await send_raw_event("room_ev-bad", event)
        assert await ws.receive_nothing()
    [entry] = [e for e in logs if e["event"] == "event_invalid"]
    assert entry["log_level"] == "warning"
    assert entry["handler"] == handler
    assert entry["consumer"] == "RoomConsumer"
    await assert_still_serving(ws)


async def test_event_not_in_union_is_refused_with_hint() -> None:
    with pytest.raises(
        ValueError, match="RoomConsumer does not declare the event"
    ) as info:
        await RoomConsumer.asend_channel_event("room_x", OtherEvent())  # type: ignore[arg-type]
    assert "hint: add it to the consumer's Event union" in str(info.value)


def test_event_not_in_union_is_refused_from_sync_code() -> None:
    with pytest.raises(ValueError, match="does not declare the event OtherEvent"):
        RoomConsumer.send_channel_event("room_x", OtherEvent())  # type: ignore[arg-type]


async def test_consumer_without_events_refuses_to_send_one() -> None:
    with pytest.raises(ValueError, match="NoEventsConsumer does not declare"):
        await NoEventsConsumer.asend_channel_event("room_x", CountEvent(payload=1))  # type: ignore[arg-type]


async def test_non_event_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a BaseChannelEvent, got dict"):
        await RoomConsumer.asend_channel_event("room_x", {"handler": "count"})  # type: ignore[arg-type]


async def test_consumer_without_events_logs_and_survives_one(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/no-events/ev-none/")
    with capture_logs() as logs:
        await send_raw_event("room_ev-none", {"handler": "count", "payload": 1})
        assert await ws.receive_nothing()
    [entry] = [e for e in logs if e["event"] == "event_invalid"]
    assert entry["consumer"] == "NoEventsConsumer"
    assert entry["handler"] == "unknown"
    await assert_still_serving(ws)


async def test_event_handler_exception_is_logged_not_sent(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/ev-fail/")
    with capture_logs() as logs:
        await RoomConsumer.asend_channel_event("room_ev-fail", FailEvent())
        frames = await ws.receive_all_json()
    assert frames == []
    assert SECRET not in frame_text(frames)
    [entry] = [e for e in logs if e["event"] == "event_handler_failed"]
    assert entry["handler"] == "fail_event"
    assert entry["exc_info"] is True
    await assert_still_serving(ws)


async def test_no_complete_after_event_without_send_completion(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/quiet/ev-quiet/")
    await RoomConsumer.asend_channel_event("room_ev-quiet", CountEvent(payload=3))
    frame = await ws.receive_frame()
    assert frame["action"] == "event_received"
    assert await ws.receive_nothing()
