"""Outgoing frames: completion flags, the wire's action key, camelCase, raw JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.consumer import AsyncConsumer
from channels.routing import URLRouter
from django.test import override_settings
from django.urls import path

from chanx.generic.base import sends_like_channels
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from chanx.settings import chanx_settings
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import NoEventsConsumer
from tests.app.helpers import Factory, open_rejected, open_ws
from tests.app.messages import EchoMessage, NoteMessage, NotePayload, RawMessage
from tests.app.routing import router

PONG = {"action": "pong", "payload": None}
COMPLETE = {"action": "complete", "payload": None}


@pytest.fixture
def chanx_router() -> Any:
    return router


async def test_send_message_serializes_the_model(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/out/")
    await ws.send_message(
        NoteMessage(payload=NotePayload(note_text="n", is_urgent=True))
    )
    assert await ws.receive_frame() == {
        "action": "note_reply",
        "payload": {"note_text": "n", "is_urgent": True},
    }
    assert await ws.receive_frame() == COMPLETE


async def test_completion_from_the_setting(chanx_communicator_factory: Factory) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/setting-on/")
    await ws.send_message(PingMessage())
    assert await ws.receive_frame() == PONG
    assert await ws.receive_frame() == COMPLETE


async def test_class_attribute_false_wins_over_setting(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/quiet/class-off/")
    await ws.send_message(PingMessage())
    assert await ws.receive_frame() == PONG
    assert await ws.receive_nothing()


async def test_class_attribute_true_wins_over_setting(
    chanx_communicator_factory: Factory,
) -> None:
    with override_settings(CHANX={"SEND_COMPLETION": False}):
        ws = await open_ws(chanx_communicator_factory, "/ws/loud/class-on/")
        await ws.send_message(PingMessage())
        assert await ws.receive_frame() == PONG
        assert await ws.receive_frame() == COMPLETE


async def test_override_settings_applies_to_consumers_created_afterwards(
    chanx_communicator_factory: Factory,
) -> None:
    before = await open_ws(chanx_communicator_factory, "/ws/room/before/")
    with override_settings(CHANX={"SEND_COMPLETION": False}):
        after = await open_ws(chanx_communicator_factory, "/ws/room/after/")
        for ws in (before, after):
            await ws.send_message(PingMessage())
            assert await ws.receive_frame() == PONG
        # The connection made before the override keeps the flags it started with.
        assert await before.receive_frame() == COMPLETE
        assert await after.receive_nothing()
    again = await open_ws(chanx_communicator_factory, "/ws/room/again/")
    await again.send_message(PingMessage())
    assert await again.receive_all_json() == [PONG]


@override_settings(CHANX={"SEND_COMPLETION": True, "MESSAGE_ACTION_KEY": "type"})
async def test_message_action_key_renames_the_wire_key_both_ways(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/type-key/")
    assert (await ws.connect())[0]
    auth = await ws.receive_frame()
    assert auth["type"] == "authentication"
    assert "action" not in auth
    await ws.send_json_to({"type": "echo", "payload": "typed"})
    assert await ws.receive_frame() == {"type": "echo_reply", "payload": "typed"}
    assert await ws.receive_frame() == {"type": "complete", "payload": None}
    await ws.send_json_to({"type": "nope"})
    error = await ws.receive_frame()
    assert error["type"] == "error"
    assert error["payload"][0]["type"] == "unknown_action"
    assert await ws.receive_frame() == {"type": "complete", "payload": None}
    # The testing helpers follow the setting too.
    await ws.send_message(EchoMessage(payload="helper"))
    assert await ws.receive_all_json() == [{"type": "echo_reply", "payload": "helper"}]


@override_settings(CHANX={"SEND_COMPLETION": True, "MESSAGE_ACTION_KEY": "type"})
async def test_missing_type_key_error_names_the_wire_key(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/type-missing/")
    await ws.send_json_to({"payload": "x"})
    [error] = await ws.receive_all_json()
    assert error["payload"][0]["loc"] == ["type"]


@override_settings(CHANX={"SEND_COMPLETION": True, "CAMELIZE": True})
async def test_camelize_converts_keys_out_and_in(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/camel/")
    assert (await ws.connect())[0]
    auth = await ws.receive_frame()
    assert auth["payload"]["statusCode"] == 200
    assert auth["payload"]["statusText"] == "OK"
    assert "status_code" not in auth["payload"]
    await ws.send_json_to(
        {"action": "note", "payload": {"noteText": "camel", "isUrgent": True}}
    )
    assert await ws.receive_all_json() == [
        {"action": "note_reply", "payload": {"noteText": "camel", "isUrgent": True}}
    ]


@override_settings(CHANX={"SEND_COMPLETION": True, "CAMELIZE": True})
async def test_camelize_applies_to_auth_failure_frames(
    chanx_communicator_factory: Factory,
) -> None:
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/token/camel/")
    assert frame["payload"]["statusCode"] == 401
    await ws.assert_closed(code=4401)


@override_settings(
    CHANX={
        "SEND_COMPLETION": True,
        "CAMELIZE": True,
        "MESSAGE_ACTION_KEY": "messageType",
    }
)
async def test_camel_case_action_key_works_both_ways(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/camel-key/")
    assert (await ws.connect())[0]
    auth = await ws.receive_frame()
    assert auth["messageType"] == "authentication"
    await ws.send_json_to({"messageType": "echo", "payload": "x"})
    assert await ws.receive_all_json() == [
        {"messageType": "echo_reply", "payload": "x"}
    ]


def test_unknown_chanx_setting_is_refused() -> None:
    with (
        override_settings(CHANX={"SEND_COMPLETON": True}),
        pytest.raises(
            ValueError, match=r"Unknown CHANX setting\(s\): \['SEND_COMPLETON'\]"
        ),
    ):
        chanx_settings.as_dict()


async def test_send_json_sends_raw_content(chanx_communicator_factory: Factory) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/raw/")
    content = {"action": "custom", "data": {"nested_key": [1, 2, 3]}, "n": None}
    await ws.send_message(RawMessage(payload=content))
    assert await ws.receive_all_json() == [content]


@override_settings(CHANX={"SEND_COMPLETION": True, "MESSAGE_ACTION_KEY": "type"})
async def test_send_json_goes_through_the_codec(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/raw-type/")
    assert (await ws.connect())[0]
    await ws.receive_frame()
    await ws.send_json_to({"type": "raw", "payload": {"action": "custom", "v": 1}})
    assert await ws.receive_all_json() == [{"type": "custom", "v": 1}]


class _CountingSendConsumer(NoEventsConsumer):
    """Overrides ``send()``: every frame chanx sends must go through it."""

    sent: list[str] = []

    async def send(self, text_data: str | None = None, **kwargs: Any) -> None:
        if text_data is not None:
            type(self).sent.append(text_data)
        await super().send(text_data=text_data, **kwargs)


async def _ping_once(consumer: type[NoEventsConsumer]) -> None:
    """Connect to ``consumer``, ping it, check the pong and completion, leave."""
    communicator = WebsocketCommunicator(
        URLRouter([path("ws/t/<room>/", consumer.as_asgi())]), "/ws/t/r1/"
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.assert_authenticated_status_ok()
    await communicator.send_message(PingMessage())
    assert await communicator.receive_frame() == PONG
    assert await communicator.receive_frame() == COMPLETE
    await communicator.disconnect()


def test_only_consumers_keeping_channels_send_skip_it() -> None:
    class OwnBaseSend(AsyncConsumer):  # type: ignore[misc]
        async def send(self, message: dict[str, Any]) -> None:
            await super().send(message)

    class Mixed(NoEventsConsumer, OwnBaseSend):
        pass

    assert sends_like_channels(NoEventsConsumer)
    assert NoEventsConsumer._chanx_direct_send
    assert not sends_like_channels(_CountingSendConsumer)
    assert not _CountingSendConsumer._chanx_direct_send
    # A send(message) override below Channels' websocket send() counts too.
    assert not Mixed._chanx_direct_send


async def test_a_consumer_overriding_send_sees_every_frame() -> None:
    _CountingSendConsumer.sent = []
    await _ping_once(_CountingSendConsumer)
    actions = [json.loads(text)["action"] for text in _CountingSendConsumer.sent]
    assert actions == ["authentication", "pong", "complete"]


class _YieldingConsumer(NoEventsConsumer):
    """Records whether a callback scheduled before a send ran before the send returned."""

    send_message_immediately = True
    marks: list[str] = []

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        marks = type(self).marks
        asyncio.get_running_loop().call_soon(marks.append, "other task")
        await self.send_message(PongMessage())
        marks.append("after send")


class _NotYieldingConsumer(_YieldingConsumer):
    send_message_immediately = False


@pytest.mark.parametrize(
    ("consumer", "expected"),
    [
        (_YieldingConsumer, ["other task", "after send"]),
        (_NotYieldingConsumer, ["after send", "other task"]),
    ],
)
async def test_send_message_immediately_yields_to_the_loop_after_each_send(
    consumer: type[_YieldingConsumer], expected: list[str]
) -> None:
    consumer.marks = []
    await _ping_once(consumer)
    assert consumer.marks == expected
