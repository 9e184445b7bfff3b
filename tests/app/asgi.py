"""An ``ASGI_APPLICATION`` for tests of ``chanx.testing.default_router``."""

from __future__ import annotations

from channels.routing import ProtocolTypeRouter

from tests.app.routing import router

application = ProtocolTypeRouter({"websocket": router})
