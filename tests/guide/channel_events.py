"""Guide, "Channel Events" (as written)."""

from typing import Any

from django.http import HttpRequest, JsonResponse

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from tests.guide.messages import (
    ChatEvent,
    ChatIncomingMessage,
    MessageResponse,
    NotifyEvent,
)


class ChatConsumer(AsyncJsonWebsocketConsumer[ChatIncomingMessage, ChatEvent]):
    # Configure groups to receive events
    groups = ["announcements"]

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        pass

    # Override receive_event method to handle all event types
    async def receive_event(self, event: ChatEvent) -> None:
        """Handle channel events using pattern matching."""
        match event:
            case NotifyEvent():
                notification = f"{event.payload.level.upper()}: {event.payload.content}"
                await self.send_message(MessageResponse(payload={"text": notification}))


# Using synchronous code (e.g., in a Django view)
def send_notification(request: HttpRequest) -> JsonResponse:
    ChatConsumer.send_channel_event(
        "announcements",  # Group name to send to
        NotifyEvent(
            payload=NotifyEvent.Payload(
                content="Important system notice", level="warning"
            )
        ),
    )
    return JsonResponse({"status": "sent"})


# Using asynchronous code
async def async_send_notification() -> None:
    await ChatConsumer.asend_channel_event(
        "announcements",
        NotifyEvent(
            payload=NotifyEvent.Payload(
                content="Important system notice", level="warning"
            )
        ),
    )
