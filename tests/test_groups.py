"""Group messages: recipients, exclusion, is_mine / is_current, raw JSON."""

from __future__ import annotations

from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings
from structlog.testing import capture_logs

from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import LobbyConsumer
from tests.app.helpers import Factory, make_user, open_ws, raw_group_send, token_header
from tests.app.messages import (
    BroadcastMessage,
    BroadcastPayload,
    JoinMessage,
    JoinPayload,
    RawBroadcastMessage,
    WhoAmIMessage,
)
from tests.app.routing import router


@pytest.fixture
def chanx_router() -> Any:
    return router


def chat(text: str, *, mine: bool, current: bool) -> dict[str, Any]:
    return {
        "action": "chat_group",
        "payload": text,
        "is_mine": mine,
        "is_current": current,
    }


async def broadcast(
    ws: WebsocketCommunicator,
    text: str,
    *,
    groups: list[str] | None = None,
    exclude_current: bool = True,
) -> None:
    """Ask ``ws``'s consumer to send a group message; wait until it has."""
    payload = BroadcastPayload(
        text=text, groups=groups, exclude_current=exclude_current
    )
    await ws.send_message(BroadcastMessage(payload=payload))
    assert await ws.receive_all_json() == []


async def test_group_message_reaches_other_members_not_sender(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g-default/")
    other = await open_ws(chanx_communicator_factory, "/ws/room/g-default/")
    outsider = await open_ws(chanx_communicator_factory, "/ws/room/g-elsewhere/")
    await broadcast(sender, "hello")
    assert await other.receive_all_json(wait_group=True) == [
        chat("hello", mine=False, current=False)
    ]
    assert await sender.receive_nothing()
    assert await outsider.receive_nothing()


async def test_group_message_to_explicit_groups(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g-a/")
    same_room = await open_ws(chanx_communicator_factory, "/ws/room/g-a/")
    target = await open_ws(chanx_communicator_factory, "/ws/room/g-b/")
    also_target = await open_ws(chanx_communicator_factory, "/ws/room/g-c/")
    await broadcast(sender, "over there", groups=["room_g-b", "room_g-c"])
    for ws in (target, also_target):
        assert await ws.receive_all_json(wait_group=True) == [
            chat("over there", mine=False, current=False)
        ]
    assert await same_room.receive_nothing()


async def test_exclude_current_false_includes_the_sender(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g-self/")
    other = await open_ws(chanx_communicator_factory, "/ws/room/g-self/")
    await broadcast(sender, "me too", exclude_current=False)
    assert await sender.receive_all_json(wait_group=True) == [
        chat("me too", mine=False, current=True)
    ]
    assert await other.receive_all_json(wait_group=True) == [
        chat("me too", mine=False, current=False)
    ]


@pytest.mark.django_db(transaction=True)
async def test_is_mine_and_is_current_per_recipient(
    chanx_communicator_factory: Factory,
) -> None:
    _, alice_key = await make_user("alice")
    _, bob_key = await make_user("bob")
    path = "/ws/room/g-matrix/"
    alice1 = await open_ws(chanx_communicator_factory, path, token_header(alice_key))
    alice2 = await open_ws(chanx_communicator_factory, path, token_header(alice_key))
    bob = await open_ws(chanx_communicator_factory, path, token_header(bob_key))
    anon1 = await open_ws(chanx_communicator_factory, path)
    anon2 = await open_ws(chanx_communicator_factory, path)

    await broadcast(alice1, "from alice", exclude_current=False)
    expected = {
        alice1: chat("from alice", mine=True, current=True),
        alice2: chat("from alice", mine=True, current=False),
        bob: chat("from alice", mine=False, current=False),
        anon1: chat("from alice", mine=False, current=False),
        anon2: chat("from alice", mine=False, current=False),
    }
    for ws, frame in expected.items():
        assert await ws.receive_all_json(wait_group=True) == [frame]

    await broadcast(anon1, "from anon", exclude_current=False)
    [own] = await anon1.receive_all_json(wait_group=True)
    assert own["is_current"] is True
    # Two anonymous users are not the same user.
    for ws in (anon2, alice1, bob):
        assert await ws.receive_all_json(wait_group=True) == [
            chat("from anon", mine=False, current=False)
        ]


async def test_send_to_groups_relays_raw_json(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g-raw/")
    other = await open_ws(chanx_communicator_factory, "/ws/room/g-raw/")
    content = {"action": "custom_raw", "data": {"k": [1, 2]}}
    await sender.send_message(RawBroadcastMessage(payload=content))
    assert await sender.receive_all_json() == []
    assert await other.receive_all_json(wait_group=True) == [content]
    assert await sender.receive_nothing()


async def test_message_from_outside_a_consumer_is_relayed(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/g-outside/")
    await raw_group_send("room_g-outside", {"action": "chat_group", "payload": "x"})
    assert await ws.receive_all_json(wait_group=True) == [
        chat("x", mine=False, current=False)
    ]


async def test_no_group_complete_without_send_completion(
    chanx_communicator_factory: Factory,
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g-quiet/")
    quiet = await open_ws(chanx_communicator_factory, "/ws/quiet/g-quiet/")
    await broadcast(sender, "hush")
    assert await quiet.receive_frame() == chat("hush", mine=False, current=False)
    assert await quiet.receive_nothing()


async def test_groups_attribute_is_copied_per_connection(
    chanx_communicator_factory: Factory,
) -> None:
    first = await open_ws(chanx_communicator_factory, "/ws/lobby/g-copy1/")
    second = await open_ws(chanx_communicator_factory, "/ws/lobby/g-copy2/")
    await first.send_message(JoinMessage(payload=JoinPayload(group_name="g_extra")))
    assert await first.receive_all_json() == []

    await first.send_message(WhoAmIMessage())
    [identity] = await first.receive_all_json()
    assert identity["payload"]["groups"] == ["lobby_all", "room_g-copy1", "g_extra"]
    await second.send_message(WhoAmIMessage())
    [identity] = await second.receive_all_json()
    assert identity["payload"]["groups"] == ["lobby_all", "room_g-copy2"]
    assert LobbyConsumer.groups == ["lobby_all"]

    third = await open_ws(chanx_communicator_factory, "/ws/lobby/g-copy3/")
    await raw_group_send("g_extra", {"action": "chat_group", "payload": "extra"})
    assert await first.receive_all_json(wait_group=True) == [
        chat("extra", mine=False, current=False)
    ]
    assert await third.receive_nothing()
    # Class-level groups are joined by every connection.
    await raw_group_send("lobby_all", {"action": "chat_group", "payload": "all"})
    for ws in (first, second, third):
        assert await ws.receive_all_json(wait_group=True) == [
            chat("all", mine=False, current=False)
        ]


async def test_each_member_gets_the_frame_in_its_own_codec(
    chanx_communicator_factory: Factory,
) -> None:
    path = "/ws/room/g-codecs/"
    camel_settings = {
        "CAMELIZE": True,
        "MESSAGE_ACTION_KEY": "messageType",
        "SEND_COMPLETION": False,
    }
    with override_settings(CHANX=camel_settings):
        camel = await chanx_communicator_factory(path=path)
        assert (await camel.connect())[0]
        assert (await camel.receive_frame())["messageType"] == "authentication"
    sender = await open_ws(chanx_communicator_factory, path)
    peer = await open_ws(chanx_communicator_factory, path)

    await broadcast(sender, "hi")
    assert await peer.receive_all_json(wait_group=True) == [
        chat("hi", mine=False, current=False)
    ]
    assert await camel.receive_frame() == {
        "messageType": "chat_group",
        "payload": "hi",
        "isMine": False,
        "isCurrent": False,
    }
    content = {"action": "custom_raw", "some_key": {"inner_key": [1]}}
    await sender.send_message(RawBroadcastMessage(payload=content))
    assert await peer.receive_all_json(wait_group=True) == [content]
    assert await camel.receive_frame() == {
        "messageType": "custom_raw",
        "someKey": {"innerKey": [1]},
    }
    assert await camel.receive_nothing()


@pytest.mark.parametrize(
    "payload",
    [
        # The shape of an older chanx (content as an object), e.g. mid-upgrade.
        {
            "type": "chanx.group_message",
            "content": {"action": "chat_group", "payload": "old"},
            "kind": "message",
            "exclude_current": True,
            "from_channel": "elsewhere",
            "from_user_pk": None,
        },
        {"type": "chanx.group_message", "text": ["not", "text"], "kind": "message"},
        # Typed messages get the flags spliced in: the text must be an object.
        {
            "type": "chanx.group_message",
            "text": "[1, 2]",
            "action": "chat_group",
            "kind": "message",
            "exclude_current": False,
            "from_channel": "elsewhere",
            "from_user_pk": None,
        },
        {"type": "chanx.group_message"},
    ],
)
async def test_a_malformed_group_payload_is_logged_and_the_connection_serves_on(
    chanx_communicator_factory: Factory, payload: dict[str, Any]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/g-malformed/")
    layer = get_channel_layer()
    assert layer is not None
    with capture_logs() as logs:
        await layer.group_send("room_g-malformed", payload)
        await raw_group_send(
            "room_g-malformed", {"action": "chat_group", "payload": "ok"}
        )
        # Channel-layer messages are handled in order: the good one follows.
        assert await ws.receive_all_json(wait_group=True) == [
            chat("ok", mine=False, current=False)
        ]
    dropped = [e for e in logs if e["event"] == "group_message_dropped"]
    assert [e["reason"] for e in dropped] == ["malformed"]
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
