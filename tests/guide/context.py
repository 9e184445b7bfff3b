"""Guide, "Accessing User and Context", "Post-Authentication Hook", "Error Handling"
and "Configuration Options" (as written, inside consumers that report what they saw)."""

from typing import Any
from urllib.parse import parse_qs

from chat.models import ChatMember, GroupChat, Room
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.incoming import PingMessage
from tests.guide.messages import (
    ChatGroupMessage,
    ChatIncomingMessage,
    ChatMessage,
    SuccessMessage,
)


class ContextConsumer(
    AsyncJsonWebsocketConsumer[ChatIncomingMessage, None, None, GroupChat]
):
    queryset = GroupChat.objects.all()
    room: GroupChat
    member: ChatMember

    async def update_user_status(self) -> None:
        self.status_updates = getattr(self, "status_updates", 0) + 1

    async def post_authentication(self) -> None:
        """Execute after successful authentication."""
        # Perform custom initialization
        self.user_status = "online"
        # Record connection in database
        await self.update_user_status()
        # For object-based consumers, access the object
        if self.obj:
            # Initialize object-specific state
            self.room = self.obj
            self.member = await self.room.members.aget(user=self.user)

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        # Access the authenticated user
        user = self.user
        # Access the Django request (from authentication)
        request = self.request
        # For consumers with object-level permissions, access the object
        obj = self.obj  # Typed based on M generic parameter
        # Access the raw ASGI connection scope
        scope = self.scope
        # Access URL parameters
        url_params = self.scope["url_route"]["kwargs"]
        # Access query string parameters
        query_params = parse_qs(self.scope["query_string"].decode())
        await self.send_message(
            SuccessMessage(
                payload={
                    "user": user.username,
                    "request_user": request.user.username,
                    "obj": obj.pk if obj else None,
                    "path": scope["path"],
                    "url_params": url_params,
                    "query_params": query_params,
                    "user_status": self.user_status,
                    "member": self.member.pk,
                }
            )
        )


class ErrorHandlingConsumer(AsyncJsonWebsocketConsumer[ChatIncomingMessage]):
    async def process_chat(self, payload: Any) -> dict[str, str]:
        if payload.content == "bad":
            raise ValueError("content must not be 'bad'")
        if payload.content == "crash":
            raise RuntimeError("secret internal detail")
        return {"saved": payload.content}

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        try:
            match message:
                case ChatMessage(payload=payload):
                    result = await self.process_chat(payload)
                    await self.send_message(SuccessMessage(payload=result))
        except ValueError as e:
            # Send custom error for specific exceptions
            from chanx.messages.outgoing import ErrorMessage

            await self.send_message(ErrorMessage(payload={"detail": str(e)}))
        # Other exceptions are handled automatically


class ConfiguredConsumer(
    AsyncJsonWebsocketConsumer[ChatIncomingMessage, None, ChatGroupMessage]
):
    # Authentication
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    queryset = Room.objects.all()
    auth_method = "get"
    # Behavior flags
    send_completion = True  # Send completion messages
    send_message_immediately = True  # Yield control after sending
    log_received_message = True  # Log received messages
    log_sent_message = True  # Log sent messages
    log_ignored_actions = ["ping", "pong"]  # Don't log these actions
    send_authentication_message = True  # Send auth status

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        match message:
            case PingMessage():
                from chanx.messages.outgoing import PongMessage

                await self.send_message(PongMessage())
            case _:
                pass
