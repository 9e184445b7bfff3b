"""Channel-layer faults and draining, in process (the e2e tests use real Redis).

The in-memory layer stands in for Redis; its methods are replaced to fail or
hang the way a dead or half-dead Redis makes channels-redis fail or hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from chanx import drain
from chanx.faults import GroupSendError, seconds_setting
from chanx.settings import chanx_settings
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import RoomConsumer
from tests.app.messages import (
    BroadcastMessage,
    BroadcastPayload,
    NotifyEvent,
    NotifyPayload,
)
from tests.app.routing import router

Factory = Callable[..., Any]

GROUP_SEND_FAILED = [
    {
        "type": "group_send_failed",
        "loc": [],
        "msg": "The message could not be sent to the group; try again later",
    }
]


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture
def layer() -> Iterator[Any]:
    channel_layer = get_channel_layer()
    assert channel_layer is not None
    yield channel_layer
    for name in ("group_send", "receive"):
        channel_layer.__dict__.pop(name, None)


@pytest.fixture
def short_layer_timeout() -> Iterator[None]:
    with override_settings(
        CHANX={"SEND_COMPLETION": True, "CHANNEL_LAYER_TIMEOUT": 0.2}
    ):
        yield


@pytest.fixture
async def reset_drain() -> AsyncIterator[None]:
    yield
    drain._reset()


async def joined(factory: Factory, path: str) -> WebsocketCommunicator:
    ws: WebsocketCommunicator = await factory(path)
    connected, _ = await ws.connect()
    assert connected
    await ws.assert_authenticated_status_ok()
    return ws


async def ping(ws: WebsocketCommunicator) -> None:
    await ws.send_json_to({"action": "ping"})
    frames = await ws.receive_all_json()
    assert [f["action"] for f in frames] == ["pong"]


def broadcast(text: str) -> BroadcastMessage:
    return BroadcastMessage(payload=BroadcastPayload(text=text))


@pytest.mark.usefixtures("short_layer_timeout")
async def test_hanging_group_send_is_cut_off_and_reported_to_sender(
    chanx_communicator_factory: Factory, layer: Any
) -> None:
    ws = await joined(chanx_communicator_factory, "/ws/room/hang/")

    async def hang(group: str, message: dict[str, Any]) -> None:
        await asyncio.Event().wait()

    layer.group_send = hang
    await ws.send_message(broadcast("lost"))
    [error] = await ws.receive_all_json(timeout=2)
    assert error == {"action": "error", "payload": GROUP_SEND_FAILED}
    await ping(ws)


async def test_receive_errors_keep_connection_and_groups_are_rejoined(
    chanx_communicator_factory: Factory, layer: Any
) -> None:
    listener = await joined(chanx_communicator_factory, "/ws/room/outage/")
    sender = await joined(chanx_communicator_factory, "/ws/room/outage/")
    original = type(layer).receive
    down = asyncio.Event()
    down.set()

    async def receive(channel: str) -> dict[str, Any]:
        if down.is_set():
            raise ConnectionError("layer down")
        message: dict[str, Any] = await original(layer, channel)
        return message

    layer.receive = receive
    # The listener's pending receive still works; its next one fails.
    await sender.send_message(broadcast("wake"))
    await sender.receive_all_json()
    await listener.receive_all_json(wait_group=True)
    await ping(listener)
    # The outage wiped the layer's memberships, as a Redis restart does.
    layer.groups.clear()
    down.clear()

    async def delivered() -> bool:
        await sender.send_message(broadcast("back"))
        await sender.receive_all_json()
        # receive_nothing() waits without cancelling the consumer on timeout.
        if await listener.receive_nothing(timeout=0.3):
            return False
        frames = await listener.receive_all_json(wait_group=True)
        return any(f.get("payload") == "back" for f in frames)

    for _ in range(50):
        if await delivered():
            break
    else:
        raise AssertionError("group messages did not come back after the outage")
    await ping(listener)


async def test_failed_channel_event_raises_group_send_error(layer: Any) -> None:
    async def refuse(group: str, message: dict[str, Any]) -> None:
        raise ConnectionError("refused")

    layer.group_send = refuse
    event = NotifyEvent(payload=NotifyPayload(content="hello"))
    with pytest.raises(GroupSendError) as caught:
        await RoomConsumer.asend_channel_event("room_x", event)
    assert caught.value.error_type == "ConnectionError"
    assert caught.value.errors == GROUP_SEND_FAILED


@pytest.mark.parametrize("value", ["soon", -1, 0, True])
def test_bad_timeout_settings_fail_early_with_a_hint(value: object) -> None:
    with (
        override_settings(CHANX={"SEND_TIMEOUT": value}),
        pytest.raises(ImproperlyConfigured, match="SEND_TIMEOUT"),
    ):
        seconds_setting("SEND_TIMEOUT")


def test_timeouts_can_be_switched_off() -> None:
    with override_settings(CHANX={"SEND_TIMEOUT": None}):
        assert seconds_setting("SEND_TIMEOUT") is None
    assert chanx_settings.CHANNEL_LAYER_TIMEOUT == 5.0
    assert chanx_settings.DRAIN_TIMEOUT == 30.0


@pytest.mark.usefixtures("reset_drain")
async def test_drain_closes_connections_with_1001_and_refuses_late_ones(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await joined(chanx_communicator_factory, "/ws/room/drain/")
    flushed: list[float] = []
    drain.on_shutdown(flushed.append)
    draining = asyncio.create_task(drain.drain(5.0))
    await ws.assert_closed(code=1001)
    # A connection that arrives while the process drains is closed at once.
    late: WebsocketCommunicator = await chanx_communicator_factory("/ws/room/late/")
    assert await late.connect() == (False, 1001)
    # The server's side of the close handshake, as uvicorn would send it.
    await ws.disconnect(code=1001)
    await late.disconnect(code=1006)
    assert await draining == 0
    assert drain.live_consumers() == []
    drain.run_shutdown_callbacks(2.0)
    assert flushed == [2.0]
