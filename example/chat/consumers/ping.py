"""The guide's minimal consumer: answers ``ping`` with ``pong``, no authentication."""

from __future__ import annotations

from typing import Any

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage


class PingConsumer(AsyncJsonWebsocketConsumer[PingMessage]):
    """Basic WebSocket consumer: DRF's default authentication and permissions."""

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        """Handle incoming validated messages."""
        match message:
            case PingMessage():
                await self.send_message(PongMessage())
