"""Messages broadcast to channel groups; each recipient gets ``is_mine``/``is_current``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from chanx.messages.base import BaseGroupMessage


class MemberMessage(BaseGroupMessage):
    """A group chat message as serialized by ``ChatMessageSerializer``."""

    action: Literal["member_message"] = "member_message"
    payload: dict[str, Any]


class RoomMessagePayload(BaseModel):
    """Body of a room message.

    Attributes:
        username: Who wrote it.
        content: The text.
    """

    username: str
    content: str


class RoomGroupMessage(BaseGroupMessage):
    """A chat line relayed to everyone in a room."""

    action: Literal["room_message"] = "room_message"
    payload: RoomMessagePayload
