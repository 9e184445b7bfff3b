"""WebSocket routes of the demo project: everything lives under ``/ws/``."""

from __future__ import annotations

from channels.routing import URLRouter

from chanx.routing import include, path

router = URLRouter([path("ws/", include("chat.routing"))])
