"""A routing module that defines ``router``."""

from __future__ import annotations

from channels.routing import URLRouter
from django.urls import path

from tests.app.consumers import RoomConsumer

router = URLRouter([path("room/<str:room>/", RoomConsumer.as_asgi())])
