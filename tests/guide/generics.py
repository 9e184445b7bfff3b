"""Guide, "Generic Type Parameters" (as written)."""

from typing import Any

from chat.models import Room

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from tests.guide.messages import (
    ChatEvent,
    ChatGroupMessage,
    ChatIncomingMessage,
    ChatMessage,
    NotificationMessage,
)


# Simple consumer with just incoming message type
class SimpleConsumer(AsyncJsonWebsocketConsumer[PingMessage]): ...


# Full consumer with all generic parameters
class FullConsumer(
    AsyncJsonWebsocketConsumer[
        ChatIncomingMessage,  # Incoming message types
        ChatEvent,  # Channel events
        ChatGroupMessage,  # Outgoing group message
        Room,  # Model for object permissions
    ]
): ...


class HandlingConsumer(AsyncJsonWebsocketConsumer[ChatIncomingMessage]):
    """Guide, "Message Handling" and "Sending Messages", in a consumer."""

    handled: list[str]

    async def handle_chat(self, payload: Any) -> None:
        await self.send_message(NotificationMessage(payload={"echo": payload.content}))

    async def handle_notification(self, payload: dict[str, str]) -> None:
        # Create a message instance with structured payload
        notification = NotificationMessage(
            payload={"type": "info", "text": "Update received"}
        )
        # Send it to the client
        await self.send_message(notification)

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        """
        Process a validated received message.

        Args:
            message: The validated message object (typed as ChatIncomingMessage)
            **kwargs: Additional arguments from receive_json
        """
        # Use pattern matching for cleaner message handling
        match message:
            case ChatMessage(payload=payload):
                # Handle chat message with extracted payload
                await self.handle_chat(payload)
            case NotificationMessage(payload=notification_payload):
                # Handle notification with direct access to payload
                await self.handle_notification(notification_payload)
            case PingMessage():
                # Handle standard ping message
                await self.send_message(PongMessage())
