"""A routing module that defines only ``websocket_urlpatterns``."""

from __future__ import annotations

from django.urls import path

from tests.app.consumers import RoomConsumer

websocket_urlpatterns = [path("chat/<str:room>/", RoomConsumer.as_asgi())]
