"""``RoomConsumer``: a members-only chat room that also relays announcements."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from chat.authentication import QueryTokenAuthentication
from chat.messages.events import NotifyEvent
from chat.messages.group import RoomGroupMessage, RoomMessagePayload
from chat.messages.room import (
    AnnouncementMessage,
    AnnouncementPayload,
    ChatMessage,
    RoomIncomingMessage,
)
from chat.models import Room
from chat.permissions import IsRoomMember

#: Group every ``RoomConsumer`` joins; ``POST /api/announce/`` sends events to it.
ANNOUNCEMENTS_GROUP = "announcements"


def room_group_name(pk: int) -> str:
    """The channel-layer group of a room."""
    return f"room_{pk}"


class RoomConsumer(
    AsyncJsonWebsocketConsumer[RoomIncomingMessage, NotifyEvent, RoomGroupMessage, Room]
):
    """Chat room at ``/ws/chat/<room>/``, open to the room's members.

    Authenticate with ``?token=<key>`` (browsers), an ``Authorization: Token``
    header, or a Django session. A ``chat`` message goes to everyone in the
    room, the sender's connections included; ``NotifyEvent`` events sent to
    ``announcements`` reach every client as ``announcement`` messages.
    """

    authentication_classes = [QueryTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsRoomMember]
    queryset = Room.objects.all()
    lookup_field = "name"
    lookup_url_kwarg = "room"
    groups = [ANNOUNCEMENTS_GROUP]

    room_group: str

    async def build_groups(self) -> list[str]:
        """Join the room's own group besides ``announcements``."""
        assert self.obj is not None
        self.room_group = room_group_name(self.obj.pk)
        return [self.room_group]

    async def receive_message(
        self, message: RoomIncomingMessage, **kwargs: Any
    ) -> None:
        """Answer pings; relay chat lines to the room."""
        match message:
            case PingMessage():
                await self.send_message(PongMessage())
            case ChatMessage(payload=payload):
                # Only the room's group: the default (self.groups) would also
                # broadcast to "announcements", i.e. to every room.
                await self.send_group_message(
                    RoomGroupMessage(
                        payload=RoomMessagePayload(
                            username=self.user.get_username(), content=payload.content
                        )
                    ),
                    groups=[self.room_group],
                    exclude_current=False,
                )

    async def receive_event(self, event: NotifyEvent) -> None:
        """Pass announcements on to the client."""
        match event:
            case NotifyEvent(payload=payload):
                await self.send_message(
                    AnnouncementMessage(
                        payload=AnnouncementPayload(
                            content=payload.content, level=payload.level
                        )
                    )
                )
