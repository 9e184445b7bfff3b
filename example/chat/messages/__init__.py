"""Message and event types of the demo chat app.

Modules:
    chat: what clients send to the group chat (``ChatDetailConsumer``).
    room: what clients and ``RoomConsumer`` exchange.
    group: messages broadcast to channel groups.
    events: channel events.
"""

from chat.messages.chat import (
    ChatIncomingMessage,
    JoinGroupMessage,
    NewChatMessage,
)
from chat.messages.events import NotifyEvent, RoomEvent
from chat.messages.group import MemberMessage, RoomGroupMessage
from chat.messages.room import (
    AnnouncementMessage,
    ChatMessage,
    RoomIncomingMessage,
)

__all__ = [
    "AnnouncementMessage",
    "ChatIncomingMessage",
    "ChatMessage",
    "JoinGroupMessage",
    "MemberMessage",
    "NewChatMessage",
    "NotifyEvent",
    "RoomEvent",
    "RoomGroupMessage",
    "RoomIncomingMessage",
]
