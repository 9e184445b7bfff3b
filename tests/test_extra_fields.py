"""Extra fields: ignored by default, refused where a message forbids them."""

from __future__ import annotations

from typing import Any, Literal

from django.test import override_settings
from pydantic import BaseModel, ConfigDict

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.base import BaseMessage
from chanx.testing import WebsocketCommunicator


class Note(BaseModel):
    text: str


class LenientMessage(BaseMessage):
    action: Literal["lenient"] = "lenient"
    payload: Note


class StrictMessage(BaseMessage):
    model_config = ConfigDict(extra="forbid")

    action: Literal["strict"] = "strict"
    payload: Note


class EchoTextConsumer(AsyncJsonWebsocketConsumer[LenientMessage | StrictMessage]):
    authentication_classes: Any = []
    permission_classes: Any = []

    async def receive_message(
        self, message: LenientMessage | StrictMessage, **kwargs: Any
    ) -> None:
        await self.send_json({"action": "text", "payload": message.payload.text})


@override_settings(CHANX={"SEND_COMPLETION": True})
async def test_extra_fields_are_ignored_unless_the_message_forbids_them() -> None:
    communicator = WebsocketCommunicator(EchoTextConsumer.as_asgi(), "/ws/")
    assert (await communicator.connect())[0]
    await communicator.assert_authenticated_status_ok()
    extra = {"payload": {"text": "hi"}, "tracking": "x"}
    await communicator.send_json_to({"action": "lenient", **extra})
    assert await communicator.receive_all_json() == [
        {"action": "text", "payload": "hi"}
    ]
    await communicator.send_json_to({"action": "strict", **extra})
    [error] = await communicator.receive_all_json()
    assert error["payload"] == [
        {
            "type": "extra_forbidden",
            "loc": ["tracking"],
            "msg": "Extra inputs are not permitted",
        }
    ]
    await communicator.disconnect()


@override_settings(CHANX={"SEND_COMPLETION": True})
async def test_trace_context_keys_are_accepted_even_where_extras_are_forbidden() -> (
    None
):
    communicator = WebsocketCommunicator(EchoTextConsumer.as_asgi(), "/ws/")
    assert (await communicator.connect())[0]
    await communicator.assert_authenticated_status_ok()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await communicator.send_json_to(
        {
            "action": "strict",
            "payload": {"text": "traced"},
            "traceparent": traceparent,
            "tracestate": "vendor=1",
        }
    )
    assert await communicator.receive_all_json() == [
        {"action": "text", "payload": "traced"}
    ]
    await communicator.disconnect()
