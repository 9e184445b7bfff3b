"""A consumer over :mod:`tests.app.future_messages`, itself under postponed annotations."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import AllowAny

from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from tests.app.future_messages import (
    FutureIncoming,
    FutureLoud,
    FutureShout,
    FutureTick,
    FutureWhisper,
)


class FutureConsumer(AsyncJsonWebsocketConsumer[FutureIncoming, FutureTick]):
    permission_classes = [AllowAny]
    groups = ["future"]

    async def receive_message(self, message: FutureIncoming, **kwargs: Any) -> None:
        match message:
            case FutureShout(payload=shout):
                await self.send_message(
                    FutureLoud(payload=" ".join([shout.text.upper()] * shout.times))
                )
            case FutureWhisper(payload=text):
                await self.send_message(FutureLoud(payload=text.lower()))

    async def receive_event(self, event: FutureTick) -> None:
        await self.send_message(FutureLoud(payload=f"tick {event.payload}"))
