"""Messages clients send to ``ChatDetailConsumer`` (the guide's group chat)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from chanx.messages.base import BaseMessage
from chanx.messages.incoming import PingMessage


class NewChatMessagePayload(BaseModel):
    """Body of a new group chat message.

    Attributes:
        content: The text to post.
        groups: Groups to broadcast to; the chat's own group when omitted.
    """

    content: str
    groups: list[str] | None = None


class NewChatMessage(BaseMessage):
    """Post a message to the group chat."""

    action: Literal["new_chat_message"] = "new_chat_message"
    payload: NewChatMessagePayload


class JoinGroupPayload(BaseModel):
    """Body of a join request.

    Attributes:
        group_name: The channel-layer group to join.
    """

    group_name: str


class JoinGroupMessage(BaseMessage):
    """Also receive the messages of another group."""

    action: Literal["join_group"] = "join_group"
    payload: JoinGroupPayload


ChatIncomingMessage = PingMessage | NewChatMessage | JoinGroupMessage
