"""Guide, "Minimal Consumer Example" (as written)."""

from typing import Any

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.base import BaseMessage  # noqa: F401 - imported as in the guide
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage


class MyConsumer(AsyncJsonWebsocketConsumer[PingMessage]):
    """Basic WebSocket consumer."""

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        """Handle incoming validated messages."""
        # Handle message using pattern matching
        match message:
            case PingMessage():
                await self.send_message(PongMessage())
