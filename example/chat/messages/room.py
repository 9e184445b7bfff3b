"""Messages between clients and ``RoomConsumer`` (the demo room chat)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from chanx.messages.base import BaseMessage
from chanx.messages.incoming import PingMessage


class ChatMessagePayload(BaseModel):
    """Body of a chat line.

    Attributes:
        content: The text to send to the room.
    """

    content: str


class ChatMessage(BaseMessage):
    """A chat line a client sends to its room."""

    action: Literal["chat"] = "chat"
    payload: ChatMessagePayload


class AnnouncementPayload(BaseModel):
    """Body of an announcement.

    Attributes:
        content: The announcement text.
        level: Severity, e.g. ``"info"`` or ``"warning"``.
    """

    content: str
    level: str = "info"


class AnnouncementMessage(BaseMessage):
    """A site-wide announcement pushed to every connected client."""

    action: Literal["announcement"] = "announcement"
    payload: AnnouncementPayload


RoomIncomingMessage = PingMessage | ChatMessage
