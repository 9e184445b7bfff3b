"""Mistakes in consumer and message classes fail when the class is defined."""

from __future__ import annotations

import types
from typing import Any, Generic, Literal

import pytest
from channels.routing import URLRouter
from django.contrib.auth.models import User
from django.urls import path
from pydantic import BaseModel
from rest_framework.permissions import AllowAny
from typing_extensions import TypeVar

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.base import BaseChannelEvent, BaseGroupMessage, BaseMessage
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from tests.app.consumers import QuietRoomConsumer, RoomConsumer
from tests.app.future_consumers import FutureConsumer
from tests.app.helpers import Factory, open_ws
from tests.app.messages import (
    ChatGroupMessage,
    EchoMessage,
    EchoReply,
    NotifyEvent,
    NotifyPayload,
)


class DuplicatePing(BaseMessage):
    action: Literal["ping"] = "ping"
    payload: str = ""


class DuplicateNotify(BaseChannelEvent):
    handler: Literal["notify"] = "notify"
    payload: None = None


class PingConsumer(AsyncJsonWebsocketConsumer[PingMessage]):
    permission_classes = [AllowAny]

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await self.send_message(PongMessage())


class ThreeArgConsumer(
    AsyncJsonWebsocketConsumer[PingMessage, NotifyEvent, ChatGroupMessage]
):
    permission_classes = [AllowAny]
    groups = ["three_arg"]

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await self.send_message(PongMessage())

    async def receive_event(self, event: NotifyEvent) -> None:
        await self.send_message(EchoReply(payload=event.payload.content))


T = TypeVar("T")


class EchoingBase(AsyncJsonWebsocketConsumer[T, NotifyEvent], Generic[T]):
    """A generic intermediate base: shared behaviour, messages left open."""

    permission_classes = [AllowAny]

    async def receive_message(self, message: T, **kwargs: Any) -> None:
        assert isinstance(message, BaseMessage)
        await self.send_message(EchoReply(payload=f"base got {message.action}"))


class ConcreteEcho(EchoingBase[PingMessage | EchoMessage]):
    pass


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter(
        [
            path("ping/", PingConsumer.as_asgi()),
            path("three/", ThreeArgConsumer.as_asgi()),
            path("concrete/", ConcreteEcho.as_asgi()),
            path("future/", FutureConsumer.as_asgi()),
            path("quiet/<str:room>/", QuietRoomConsumer.as_asgi()),
        ]
    )


def test_consumer_without_incoming_type_is_refused_with_hint() -> None:
    with pytest.raises(TypeError) as info:

        class Bare(AsyncJsonWebsocketConsumer):  # type: ignore[type-arg]
            pass

    assert "Bare must name its incoming message type" in str(info.value)
    assert "hint: class Bare(AsyncJsonWebsocketConsumer[PingMessage])" in str(
        info.value
    )


@pytest.mark.parametrize("incoming", [int, BaseModel, NotifyEvent])
def test_incoming_type_must_be_a_base_message(incoming: Any) -> None:
    with pytest.raises(TypeError) as info:

        class NotMessages(AsyncJsonWebsocketConsumer[PingMessage | incoming]):
            pass

    assert "NotMessages IC" in str(info.value)
    assert "is not a BaseMessage subclass" in str(info.value)
    assert "hint: list BaseMessage subclasses joined with '|'" in str(info.value)


def test_event_type_must_be_a_channel_event() -> None:
    with pytest.raises(TypeError, match="is not a BaseChannelEvent subclass"):

        class BadEvents(AsyncJsonWebsocketConsumer[PingMessage, EchoMessage]):
            pass


def test_group_and_model_types_are_checked() -> None:
    with pytest.raises(TypeError, match="expected a BaseGroupMessage subclass"):

        class BadGroup(AsyncJsonWebsocketConsumer[PingMessage, None, EchoMessage]):
            pass

    with pytest.raises(TypeError, match="expected a Model subclass or None"):

        class BadModel(AsyncJsonWebsocketConsumer[PingMessage, None, None, str]):
            pass


def test_duplicate_action_across_union_members_is_refused() -> None:
    with pytest.raises(TypeError) as info:

        class Twice(AsyncJsonWebsocketConsumer[PingMessage | DuplicatePing]):
            pass

    assert "action 'ping' is declared by both PingMessage and DuplicatePing" in str(
        info.value
    )


def test_duplicate_event_handler_is_refused() -> None:
    with pytest.raises(TypeError, match="handler 'notify' is declared by both"):

        class TwiceEvents(
            AsyncJsonWebsocketConsumer[PingMessage, NotifyEvent | DuplicateNotify]
        ):
            pass


def test_message_action_must_be_a_literal() -> None:
    with pytest.raises(TypeError) as info:

        class Loose(BaseMessage):
            action: str = "loose"

    assert "Loose.action must be annotated with a Literal" in str(info.value)
    assert 'hint: action: Literal["my_action"] = "my_action"' in str(info.value)


def test_event_handler_must_be_a_literal() -> None:
    with pytest.raises(TypeError) as info:

        class LooseEvent(BaseChannelEvent):
            handler: str = "loose"

    assert "LooseEvent.handler must be annotated with a Literal" in str(info.value)
    assert 'hint: handler: Literal["my_handler"] = "my_handler"' in str(info.value)


def test_group_message_action_must_be_a_literal() -> None:
    with pytest.raises(TypeError, match=r"LooseGroup\.action must be annotated"):

        class LooseGroup(BaseGroupMessage):
            action: str = "loose"


def test_generic_consumer_base_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError, match="EchoingBase is generic"):
        EchoingBase()


def test_schemas_know_their_declared_names() -> None:
    assert ConcreteEcho._chanx_schema is not None
    assert ConcreteEcho._chanx_schema.incoming.names == {"ping", "echo"}
    assert ConcreteEcho._chanx_schema.handler_label({"handler": "notify"}) == "notify"
    assert ThreeArgConsumer._chanx_schema is not None
    assert ThreeArgConsumer._chanx_schema.group_message is ChatGroupMessage


def test_model_type_is_kept() -> None:
    class WithModel(AsyncJsonWebsocketConsumer[PingMessage, None, None, User]):
        pass

    assert WithModel._chanx_schema is not None
    assert WithModel._chanx_schema.model is User


async def test_single_argument_form_works(chanx_communicator_factory: Factory) -> None:
    ws = await open_ws(chanx_communicator_factory, "ping/")
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


async def test_three_argument_form_handles_messages_and_events(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "three/")
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    event = NotifyEvent(payload=NotifyPayload(content="three args"))
    await ThreeArgConsumer.asend_channel_event("three_arg", event)
    assert await ws.receive_all_json() == [
        {"action": "echo_reply", "payload": "three args"}
    ]


async def test_concrete_subclass_of_generic_base_validates_its_union(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "concrete/")
    await ws.send_message(EchoMessage(payload="x"))
    assert await ws.receive_all_json() == [
        {"action": "echo_reply", "payload": "base got echo"}
    ]
    await ws.send_to(text_data='{"action": "add", "payload": {"a": 1, "b": 2}}')
    [error] = await ws.receive_all_json()
    assert error["action"] == "error"
    assert error["payload"][0]["type"] == "unknown_action"
    assert error["payload"][0]["msg"] == "Expected one of: 'echo', 'ping'"


async def test_future_annotations_message_module_works(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "future/")
    await ws.send_to(
        text_data='{"action": "shout", "payload": {"text": "hey", "times": 2}}'
    )
    assert await ws.receive_all_json() == [{"action": "loud", "payload": "HEY HEY"}]
    await ws.send_to(text_data='{"action": "whisper", "payload": "PSST"}')
    assert await ws.receive_all_json() == [{"action": "loud", "payload": "psst"}]
    await ws.send_to(text_data='{"action": "shout", "payload": {"times": 2}}')
    [error] = await ws.receive_all_json()
    assert error["payload"] == [
        {
            "type": "missing",
            "loc": ["payload", "text"],
            "msg": "Field required",
        }
    ]


async def test_subclass_of_concrete_consumer_inherits_its_schema(
    chanx_communicator_factory: Factory,
) -> None:
    assert QuietRoomConsumer._chanx_schema is RoomConsumer._chanx_schema
    ws = await open_ws(chanx_communicator_factory, "quiet/inherit/")
    await ws.send_message(EchoMessage(payload="inherited"))
    assert await ws.receive_frame() == {"action": "echo_reply", "payload": "inherited"}
    # The subclass's own flag applies: no completion frame follows.
    assert await ws.receive_nothing()


def test_groups_given_as_a_string_fails_with_a_hint() -> None:
    with pytest.raises(TypeError, match=r'groups = \["announcements"\]'):

        class StringGroups(AsyncJsonWebsocketConsumer[PingMessage]):
            groups = "announcements"  # type: ignore[assignment]


def test_unknown_auth_method_fails_with_a_hint() -> None:
    with pytest.raises(TypeError, match="is not an HTTP method; hint: one of"):

        class Typo(AsyncJsonWebsocketConsumer[PingMessage]):
            auth_method = "gett"


@pytest.mark.parametrize(
    ("attribute", "value", "hint"),
    [
        ("max_frame_bytes", "64k", r"MAX_FRAME_BYTES'\] must be a positive int"),
        ("max_json_depth", -1, r"MAX_JSON_DEPTH'\] must be a positive int"),
        ("rate_limit", {"RATE": 20, "BRUST": 40}, r"Unknown CHANX\['RATE_LIMIT'\] key"),
    ],
)
def test_bad_limit_on_the_class_fails_at_definition(
    attribute: str, value: object, hint: str
) -> None:
    with pytest.raises(TypeError, match=rf"^BadLimit: .*{hint}"):
        types.new_class(
            "BadLimit",
            (AsyncJsonWebsocketConsumer[PingMessage],),
            exec_body=lambda ns: ns.update({attribute: value, "__module__": __name__}),
        )
