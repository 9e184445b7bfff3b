"""Guide, "Group Messaging" (as written)."""

from typing import Any

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from tests.guide.messages import ChatGroupMessage, ChatIncomingMessage, ChatMessage


class ChatConsumer(
    AsyncJsonWebsocketConsumer[ChatIncomingMessage, None, ChatGroupMessage]
):
    async def build_groups(self) -> list[str]:
        """
        Define which groups this consumer should join.

        Returns:
            Iterable of group names
        """
        # Get room ID from URL parameters
        room_id = self.scope["url_route"]["kwargs"].get("room_id", "default")
        # Return list of groups to join
        return [f"chat_room_{room_id}"]

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        """Handle incoming messages and broadcast to groups."""
        match message:
            case ChatMessage(payload=payload):
                # Using send_group_message
                username = getattr(self.user, "username", "Anonymous")
                await self.send_group_message(
                    ChatGroupMessage(
                        payload={"username": username, "content": payload.content}
                    ),
                    exclude_current=False,  # Include sender in recipients
                )
            case _:
                pass
