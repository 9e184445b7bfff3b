"""Consumers shared by the tests; :mod:`tests.app.routing` serves them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from tests.app.messages import (
    AddMessage,
    BroadcastMessage,
    ChatGroupMessage,
    EchoMessage,
    EchoReply,
    EventReply,
    FailEvent,
    FailMessage,
    IdentityReply,
    JoinMessage,
    NoteMessage,
    NoteReply,
    RawBroadcastMessage,
    RawMessage,
    RoomEvent,
    RoomIncoming,
    SumReply,
    WhoAmIMessage,
)

#: A text that handlers put into exceptions; it must never reach a client.
SECRET = "s3cret-internal-detail"

#: What consumers report about themselves: ("kind", value) pairs, cleared by tests.
RECORDS: list[tuple[str, Any]] = []

#: The channel name of every connection, in connection order, cleared by tests.
CHANNELS: list[str] = []


def identity(
    consumer: AsyncJsonWebsocketConsumer[Any, Any, Any, Any],
) -> dict[str, Any]:
    """What a consumer knows about its connection, as JSON."""
    user, request, obj = consumer.user, consumer.request, consumer.obj
    return {
        "user": getattr(user, "username", None) or None,
        "authenticated": bool(getattr(user, "is_authenticated", False)),
        "obj": getattr(obj, "pk", None),
        "request_class": None
        if request is None
        else f"{type(request).__module__}.{type(request).__qualname__}",
        "remote_addr": None if request is None else request.META.get("REMOTE_ADDR"),
        "groups": list(consumer.groups),
        "kwargs": dict(consumer.scope["url_route"]["kwargs"]),
    }


class RoomConsumer(
    AsyncJsonWebsocketConsumer[RoomIncoming, RoomEvent, ChatGroupMessage]
):
    """Anyone may connect to ``/ws/room/<room>/``; joins the group ``room_<room>``."""

    permission_classes = [AllowAny]

    async def connect(self) -> None:
        CHANNELS.append(self.channel_name)
        await super().connect()

    async def build_groups(self) -> list[str]:
        return [f"room_{self.scope['url_route']['kwargs'].get('room', 'lobby')}"]

    async def receive_message(self, message: RoomIncoming, **kwargs: Any) -> None:
        match message:
            case PingMessage():
                await self.send_message(PongMessage())
            case EchoMessage(payload=text):
                await self.send_message(EchoReply(payload=text))
            case AddMessage(payload=numbers):
                await self.send_message(SumReply(payload=numbers.a + numbers.b))
            case FailMessage():
                raise RuntimeError(SECRET)
            case WhoAmIMessage():
                await self.send_message(IdentityReply(payload=identity(self)))
            case BroadcastMessage(payload=broadcast):
                await self.send_group_message(
                    ChatGroupMessage(payload=broadcast.text),
                    groups=broadcast.groups,
                    exclude_current=broadcast.exclude_current,
                )
            case RawBroadcastMessage(payload=content):
                await self.send_to_groups(content)
            case RawMessage(payload=content):
                await self.send_json(content)
            case JoinMessage(payload=join):
                self.groups.append(join.group_name)
                await self.channel_layer.group_add(join.group_name, self.channel_name)
            case NoteMessage(payload=note):
                await self.send_message(NoteReply(payload=note))

    async def receive_event(self, event: RoomEvent) -> None:
        if isinstance(event, FailEvent):
            raise RuntimeError(SECRET)
        await self.send_message(
            EventReply(payload={"type": type(event).__name__, **event.model_dump()})
        )


class QuietRoomConsumer(RoomConsumer):
    send_completion = False


class LoudRoomConsumer(RoomConsumer):
    send_completion = True


class NoAuthFrameConsumer(RoomConsumer):
    send_authentication_message = False


class LobbyConsumer(RoomConsumer):
    """Joins the class-level group ``lobby_all`` besides ``room_<room>``."""

    groups = ["lobby_all"]


class NoEventsConsumer(AsyncJsonWebsocketConsumer[PingMessage]):
    """Declares no events; joins ``room_<room>``."""

    permission_classes = [AllowAny]

    async def build_groups(self) -> list[str]:
        return [f"room_{self.scope['url_route']['kwargs']['room']}"]

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await self.send_message(PongMessage())


# Authentication ---------------------------------------------------------------


class QueryTokenAuthentication(BaseAuthentication):
    """``?token=<key>``: browsers cannot set headers on a WebSocket handshake."""

    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        key = request.query_params.get("token")
        if not key:
            return None
        token = Token.objects.select_related("user").filter(key=key).first()
        if token is None:
            return None
        return token.user, token


class ExplodingAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        raise RuntimeError(SECRET)


class IsSelf(BasePermission):
    """Only the user may open their own ``/ws/users/<pk>/``."""

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return bool(obj == request.user)


class SessionOnlyConsumer(RoomConsumer):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    groups = ["secure_lobby"]


class TokenOnlyConsumer(RoomConsumer):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    groups = ["secure_lobby"]


class QueryTokenConsumer(RoomConsumer):
    authentication_classes = [QueryTokenAuthentication]
    permission_classes = [IsAuthenticated]


class BrokenAuthConsumer(RoomConsumer):
    authentication_classes = [ExplodingAuthentication]


class UserObjectConsumer(
    AsyncJsonWebsocketConsumer[RoomIncoming, None, ChatGroupMessage, User]
):
    """``/ws/users/<pk>/``: a token user may open only their own."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated, IsSelf]
    queryset = User.objects.all()

    async def receive_message(self, message: RoomIncoming, **kwargs: Any) -> None:
        await self.send_message(IdentityReply(payload=identity(self)))


# Lifecycle --------------------------------------------------------------------


class BrokenGroupsConsumer(RoomConsumer):
    async def build_groups(self) -> list[str]:
        raise RuntimeError(SECRET)


class BrokenPostAuthConsumer(RoomConsumer):
    async def post_authentication(self) -> None:
        raise RuntimeError(SECRET)


class LifecycleConsumer(RoomConsumer):
    """Records whether its groups were joined by ``post_authentication`` and
    the code ``disconnect`` is called with."""

    async def post_authentication(self) -> None:
        layer_groups: dict[str, Any] = self.channel_layer.groups
        joined = all(self.channel_name in layer_groups.get(g, {}) for g in self.groups)
        RECORDS.append(("in_groups_at_post_authentication", joined))

    async def disconnect(self, code: int) -> None:
        RECORDS.append(("disconnect", code))


class WelcomeConsumer(RoomConsumer):
    """Adds work after the standard handshake."""

    async def connect(self) -> None:
        await super().connect()
        await self.send_message(EchoReply(payload="welcome"))


class PlainAcceptConsumer(RoomConsumer):
    """Does its own handshake without calling ``super().connect()``."""

    async def connect(self) -> None:
        CHANNELS.append(self.channel_name)
        await self.accept()
