"""ASGI app for the graceful-shutdown e2e test: the demo plus a slow consumer.

Served by ``python -m chanx.serve tests.hardening.faults_asgi:application``
(from ``example/``, with the repository on ``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from rest_framework.permissions import AllowAny

from chanx.telemetry import setup
from chanx.telemetry.asgi import TelemetryHTTPApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.hardening.faults_settings")
django_asgi_app = get_asgi_application()

from chanx.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from chanx.messages.incoming import PingMessage  # noqa: E402
from chanx.messages.outgoing import PongMessage  # noqa: E402
from chanx.routing import include, path  # noqa: E402

#: Seconds the slow consumer takes to answer a ping.
SLOW_REPLY = float(os.environ.get("FAULTS_SLOW_REPLY", "2"))


class SlowPingConsumer(AsyncJsonWebsocketConsumer[PingMessage]):
    """Answers ``ping`` with ``pong`` after :data:`SLOW_REPLY` seconds."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await asyncio.sleep(SLOW_REPLY)
        await self.send_message(PongMessage())


if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    setup()

application = ProtocolTypeRouter(
    {
        "http": TelemetryHTTPApp(django_asgi_app),
        "websocket": URLRouter(
            [
                path("ws/slow/", SlowPingConsumer.as_asgi()),
                path("ws/", include("chat.routing")),
            ]
        ),
    }
)
