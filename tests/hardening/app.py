"""Consumers for the hardening tests: a realistic message union, several limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from channels.routing import URLRouter
from django.urls import path
from pydantic import BaseModel, Field
from rest_framework.permissions import AllowAny

from chanx.generic.authenticator import AuthenticationResult
from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.base import BaseMessage
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from tests.app.consumers import TokenOnlyConsumer
from tests.app.messages import AddMessage, EchoMessage, NoteMessage


class PostPayload(BaseModel):
    title: str = Field(max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=10)
    priority: Literal["low", "high"] = "low"
    reply_to: int | None = None


class PostMessage(BaseMessage):
    """Nested model, list, enum-like literal and optional field."""

    action: Literal["post"] = "post"
    payload: PostPayload


class AckReply(BaseMessage):
    action: Literal["ack"] = "ack"
    payload: str


FuzzIncoming = PingMessage | EchoMessage | AddMessage | NoteMessage | PostMessage


class FuzzConsumer(AsyncJsonWebsocketConsumer[FuzzIncoming]):
    """Default size and depth limits; no rate limit (fuzzing sends many frames)."""

    permission_classes = [AllowAny]
    rate_limit: Mapping[str, Any] | Literal[False] | None = False

    async def receive_message(self, message: FuzzIncoming, **kwargs: Any) -> None:
        if isinstance(message, PingMessage):
            await self.send_message(PongMessage())
        else:
            await self.send_message(AckReply(payload=str(message.action)))


class DefaultLimitsConsumer(FuzzConsumer):
    """Every limit as the CHANX settings say."""

    rate_limit = None


class TightConsumer(FuzzConsumer):
    """Small limits; the bucket practically never refills during a test."""

    max_frame_bytes = 512
    max_json_depth = 4
    rate_limit = {"RATE": 0.001, "BURST": 5, "CLOSE_AFTER": 3}


class UnlimitedConsumer(FuzzConsumer):
    """Every limit switched off on the class."""

    max_frame_bytes = 0
    max_json_depth = 0


#: Channel names of :class:`CrashingConsumer` connections.
CRASHING: list[str] = []


class CrashingConsumer(FuzzConsumer):
    """Has a channel-layer handler that raises: the connection dies with it."""

    async def connect(self) -> None:
        CRASHING.append(self.channel_name)
        await super().connect()

    async def crash(self, message: dict[str, Any]) -> None:
        raise RuntimeError("crashed on purpose")


#: Released by a test to let :class:`SlowAuthConsumer` finish authenticating.
AUTH_GATE: dict[str, asyncio.Event] = {}


class SlowAuthConsumer(TokenOnlyConsumer):
    """Token auth that waits for the test before deciding: the handshake window."""

    async def authenticate(self) -> AuthenticationResult:
        AUTH_GATE.setdefault("started", asyncio.Event()).set()
        await AUTH_GATE.setdefault("release", asyncio.Event()).wait()
        return await super().authenticate()


router = URLRouter(
    [
        path("ws/fuzz/", FuzzConsumer.as_asgi()),
        path("ws/default/", DefaultLimitsConsumer.as_asgi()),
        path("ws/tight/", TightConsumer.as_asgi()),
        path("ws/unlimited/", UnlimitedConsumer.as_asgi()),
        path("ws/crashing/", CrashingConsumer.as_asgi()),
        path("ws/slow-auth/<str:room>/", SlowAuthConsumer.as_asgi()),
    ]
)
