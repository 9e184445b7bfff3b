"""ASGI entry point: Django for HTTP, chanx consumers for WebSockets.

Run with ``uvicorn config.asgi:application`` from the ``example`` directory.
"""

from __future__ import annotations

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

from chanx.telemetry import setup
from chanx.telemetry.asgi import TelemetryHTTPApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Sets up Django; it must run before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from config.routing import router  # noqa: E402

if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
):
    # The demo owns no other SDK setup: spans go out over OTLP, configured by
    # the standard OTEL_* variables, and are flushed when the process exits.
    setup()

application = ProtocolTypeRouter(
    {
        # /metrics, /healthz and /readyz are answered before Django's stack.
        "http": TelemetryHTTPApp(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(router)),
    }
)
