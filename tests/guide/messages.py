"""The app-specific message names the guide's examples use without defining them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from chanx.messages.base import BaseChannelEvent, BaseGroupMessage, BaseMessage
from chanx.messages.incoming import PingMessage


class ChatPayload(BaseModel):
    content: str


class ChatMessage(BaseMessage):
    action: Literal["chat"] = "chat"
    payload: ChatPayload


class NotificationMessage(BaseMessage):
    action: Literal["notification"] = "notification"
    payload: dict[str, str]


ChatIncomingMessage = ChatMessage | NotificationMessage | PingMessage


class MessageResponse(BaseMessage):
    action: Literal["message_response"] = "message_response"
    payload: dict[str, str]


class SuccessMessage(BaseMessage):
    action: Literal["success"] = "success"
    payload: Any


# From "Group Messaging", as written there.
class ChatGroupMessage(BaseGroupMessage):
    """Message type for group chat."""

    action: Literal["chat_group"] = "chat_group"
    payload: dict[str, str]


# From "Channel Events", as written there.
class NotifyEvent(BaseChannelEvent):
    class Payload(BaseModel):
        content: str
        level: str = "info"

    handler: Literal["notify"] = "notify"
    payload: Payload


ChatEvent = NotifyEvent  # Can be a union of multiple event types
