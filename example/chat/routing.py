"""WebSocket routes of the chat app, mounted under ``/ws/`` by ``config.routing``."""

from __future__ import annotations

from channels.routing import URLRouter

from chanx.routing import path
from chat.consumers import ChatDetailConsumer, PingConsumer, RoomConsumer

router = URLRouter(
    [
        path("ping/", PingConsumer.as_asgi()),
        path("chat/<str:room>/", RoomConsumer.as_asgi()),
        path("groupchat/<int:pk>/", ChatDetailConsumer.as_asgi()),
    ]
)
