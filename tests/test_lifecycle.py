"""Connection lifecycle: handshake order, custom connect/disconnect, auth frame."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer

from chanx.messages.incoming import PingMessage
from tests.app.consumers import CHANNELS, RECORDS
from tests.app.helpers import Factory, group_members, open_ws, raw_group_send
from tests.app.messages import EchoMessage, WhoAmIMessage
from tests.app.routing import router


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture(autouse=True)
def _clear_records() -> Iterator[None]:
    RECORDS.clear()
    CHANNELS.clear()
    yield
    RECORDS.clear()
    CHANNELS.clear()


async def test_groups_are_joined_before_post_authentication(
    chanx_communicator_factory: Factory,
) -> None:
    await open_ws(chanx_communicator_factory, "/ws/lifecycle/order/")
    assert RECORDS == [("in_groups_at_post_authentication", True)]


async def test_group_message_right_after_auth_frame_is_delivered(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/right-after/")
    # No waiting: status 200 promises the connection is already in its groups.
    await raw_group_send("room_right-after", {"action": "chat_group", "payload": "hi"})
    assert await ws.receive_all_json(wait_group=True) == [
        {"action": "chat_group", "payload": "hi", "is_mine": False, "is_current": False}
    ]


async def test_authentication_frame_reports_success(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/auth-frame/")
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_frame() == {
        "action": "authentication",
        "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}},
    }


async def test_custom_connect_calling_super_adds_work(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/welcome/w/")
    assert await ws.receive_frame() == {"action": "echo_reply", "payload": "welcome"}
    # The standard handshake ran: the connection is in its group.
    assert CHANNELS[-1] in group_members("room_w")
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


async def test_custom_connect_without_super_still_handles_messages(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/plain/p/")
    connected, _ = await ws.connect()
    assert connected
    # It did its own handshake: no authentication frame, no groups.
    assert await ws.receive_nothing()
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    await ws.send_message(EchoMessage(payload="plain"))
    assert await ws.receive_all_json() == [{"action": "echo_reply", "payload": "plain"}]


async def test_custom_connect_without_super_receives_group_messages(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/plain/p2/")
    assert (await ws.connect())[0]
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_add("room_p2", CHANNELS[-1])
    await raw_group_send("room_p2", {"action": "chat_group", "payload": "own"})
    [frame] = await ws.receive_all_json(wait_group=True)
    assert frame["payload"] == "own"


async def test_disconnect_is_called_with_the_close_code(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/lifecycle/bye/")
    channel = CHANNELS[-1]
    assert channel in group_members("room_bye")
    await ws.disconnect(code=4321)
    assert ("disconnect", 4321) in RECORDS
    # Groups are left when the socket closes.
    assert channel not in group_members("room_bye")


async def test_without_authentication_message_first_frame_is_the_reply(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/no-auth-frame/quiet-auth/")
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_nothing()
    await ws.send_message(WhoAmIMessage())
    [identity] = await ws.receive_all_json()
    assert identity["action"] == "identity"
    # Authentication still ran and the groups were joined.
    assert identity["payload"]["groups"] == ["room_quiet-auth"]
    assert identity["payload"]["request_class"] == "rest_framework.request.Request"


async def test_wait_for_auth_is_none_when_consumer_sends_no_auth_frame(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/no-auth-frame/none/")
    assert (await ws.connect())[0]
    assert await ws.wait_for_auth(send_authentication_message=False) is None
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
