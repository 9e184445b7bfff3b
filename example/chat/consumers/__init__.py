"""WebSocket consumers of the demo chat app."""

from chat.consumers.group_chat import ChatDetailConsumer
from chat.consumers.ping import PingConsumer
from chat.consumers.room import ANNOUNCEMENTS_GROUP, RoomConsumer, room_group_name

__all__ = [
    "ANNOUNCEMENTS_GROUP",
    "ChatDetailConsumer",
    "PingConsumer",
    "RoomConsumer",
    "room_group_name",
]
