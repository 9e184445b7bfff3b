"""The test application: every test consumer under ``/ws/...``."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from tests.app import consumers as c

#: Where the test router says every connection comes from.
CLIENT_ADDRESS = ("203.0.113.7", 50123)

websocket_urlpatterns = [
    path("ws/room/<str:room>/", c.RoomConsumer.as_asgi()),
    path("ws/quiet/<str:room>/", c.QuietRoomConsumer.as_asgi()),
    path("ws/loud/<str:room>/", c.LoudRoomConsumer.as_asgi()),
    path("ws/no-auth-frame/<str:room>/", c.NoAuthFrameConsumer.as_asgi()),
    path("ws/lobby/<str:room>/", c.LobbyConsumer.as_asgi()),
    path("ws/no-events/<str:room>/", c.NoEventsConsumer.as_asgi()),
    path(
        "ws/session/<str:room>/",
        AuthMiddlewareStack(c.SessionOnlyConsumer.as_asgi()),
    ),
    path("ws/token/<str:room>/", c.TokenOnlyConsumer.as_asgi()),
    path("ws/query-token/<str:room>/", c.QueryTokenConsumer.as_asgi()),
    path("ws/users/<int:pk>/", c.UserObjectConsumer.as_asgi()),
    path("ws/broken-auth/<str:room>/", c.BrokenAuthConsumer.as_asgi()),
    path("ws/broken-groups/<str:room>/", c.BrokenGroupsConsumer.as_asgi()),
    path("ws/broken-post-auth/<str:room>/", c.BrokenPostAuthConsumer.as_asgi()),
    path("ws/lifecycle/<str:room>/", c.LifecycleConsumer.as_asgi()),
    path("ws/welcome/<str:room>/", c.WelcomeConsumer.as_asgi()),
    path("ws/plain/<str:room>/", c.PlainAcceptConsumer.as_asgi()),
]


class ClientAddressMiddleware:
    """Adds the client address a server would put into the scope."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await self.inner({**scope, "client": CLIENT_ADDRESS}, receive, send)


router = ClientAddressMiddleware(URLRouter(websocket_urlpatterns))
