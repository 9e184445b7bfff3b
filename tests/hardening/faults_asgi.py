"""ASGI app for the fault e2e tests: the demo plus a slow and a gated consumer.

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
#: A file the gated consumer waits for before it accepts (no file: no wait).
CONNECT_GATE = os.environ.get("FAULTS_CONNECT_GATE", "")
#: Seconds the gated consumer waits for :data:`CONNECT_GATE` at most.
GATE_TIMEOUT = 30.0


class SlowPingConsumer(AsyncJsonWebsocketConsumer[PingMessage]):
    """Answers ``ping`` with ``pong`` after :data:`SLOW_REPLY` seconds."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await asyncio.sleep(SLOW_REPLY)
        await self.send_message(PongMessage())


class GatedConnectConsumer(SlowPingConsumer):
    """Holds each handshake before its accept until :data:`CONNECT_GATE` exists.

    A test leaves in that window, then opens the gate: the accept meets a
    client that is gone, as a real one that hangs up mid-handshake.
    """

    async def connect(self) -> None:
        self.logger.info("connect_gate_waiting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GATE_TIMEOUT
        while CONNECT_GATE and not await asyncio.to_thread(
            os.path.exists, CONNECT_GATE
        ):
            if loop.time() > deadline:
                raise TimeoutError("the test never opened the connect gate")
            await asyncio.sleep(0.01)
        await super().connect()


if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    setup()

application = ProtocolTypeRouter(
    {
        "http": TelemetryHTTPApp(django_asgi_app),
        "websocket": URLRouter(
            [
                path("ws/slow/", SlowPingConsumer.as_asgi()),
                path("ws/gated/", GatedConnectConsumer.as_asgi()),
                path("ws/", include("chat.routing")),
            ]
        ),
    }
)
