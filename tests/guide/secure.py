"""Guide, "Authentication Configuration" (as written; PingMessage imported)."""

from typing import Any

from chat.models import Room
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.base import BaseMessage  # noqa: F401 - imported as in the guide
from chanx.messages.incoming import PingMessage


class SecureConsumer(AsyncJsonWebsocketConsumer[PingMessage, None, None, Room]):
    # Authentication classes determine how users are identified
    authentication_classes = [SessionAuthentication]
    # Permission classes determine if authenticated users have access
    permission_classes = [IsAuthenticated]
    # For object-level permissions, provide a queryset
    queryset = Room.objects.all()
    # HTTP method to emulate for authentication
    auth_method = "get"  # Default is "get"

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        # Only authenticated users reach this point
        pass
