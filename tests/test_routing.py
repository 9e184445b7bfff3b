"""``chanx.routing``: ``include`` and ``route_template``."""

from __future__ import annotations

from typing import Any

import pytest
from channels.routing import URLRouter

from chanx.routing import include, path, route_template
from tests.app import routing_patterns, routing_router
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, open_ws
from tests.app.messages import WhoAmIMessage


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter(
        [
            path("ws/", include("tests.app.routing_router")),
            path("api/", include("tests.app.routing_patterns")),
            path("list/", include([path("x/<str:room>/", RoomConsumer.as_asgi())])),
        ]
    )


def test_include_module_path_with_router() -> None:
    assert include("tests.app.routing_router") is routing_router.router


def test_include_module_object() -> None:
    assert include(routing_router) is routing_router.router


def test_include_module_path_with_urlpatterns() -> None:
    included = include("tests.app.routing_patterns")
    assert isinstance(included, URLRouter)
    assert included.routes == routing_patterns.websocket_urlpatterns


def test_include_list_and_router() -> None:
    routes = [path("a/", RoomConsumer.as_asgi())]
    included = include(routes)
    assert isinstance(included, URLRouter)
    assert included.routes == routes
    assert include(included) is included


def test_include_module_without_routes_has_hint() -> None:
    with pytest.raises(ImportError) as info:
        include("tests.app.routing_empty")
    assert str(info.value) == (
        "tests.app.routing_empty defines neither 'router' (a URLRouter) nor "
        "'websocket_urlpatterns' (a list of routes) to include"
    )


def test_include_missing_module() -> None:
    with pytest.raises(ImportError, match=r"tests\.app\.no_such_routing"):
        include("tests.app.no_such_routing")


@pytest.mark.parametrize(
    ("ws_path", "room"),
    [
        ("/ws/room/r-inc/", "r-inc"),
        ("/api/chat/r-api/", "r-api"),
        ("/list/x/r-l/", "r-l"),
    ],
)
async def test_included_routes_serve_consumers(
    chanx_communicator_factory: Factory, ws_path: str, room: str
) -> None:
    ws = await open_ws(chanx_communicator_factory, ws_path)
    await ws.send_message(WhoAmIMessage())
    [identity] = await ws.receive_all_json()
    assert identity["payload"]["kwargs"] == {"room": room}


@pytest.mark.parametrize(
    ("ws_path", "kwargs", "expected"),
    [
        ("/ws/chat/lobby/", {"room": "lobby"}, "/ws/chat/<room>/"),
        ("/ws/chat/lobby/", {}, "/ws/chat/lobby/"),
        ("/ws/users/5/", {"pk": 5}, "/ws/users/<pk>/"),
        (
            "/ws/org/7/team/blue/",
            {"org": 7, "team": "blue"},
            "/ws/org/<org>/team/<team>/",
        ),
        ("/ws/lobby-x/lobby/", {"room": "lobby"}, "/ws/lobby-x/<room>/"),
    ],
)
def test_route_template(ws_path: str, kwargs: dict[str, Any], expected: str) -> None:
    assert route_template(ws_path, kwargs) == expected


@pytest.mark.parametrize(
    ("ws_path", "kwargs", "expected"),
    [
        ("/ws/users/007/", {"pk": 7}, "/ws/users/<pk>/"),
        ("/ws/files/a/b/", {"name": "a/b"}, "/ws/files/<name>/"),
    ],
)
def test_route_template_is_bounded_for_any_kwargs(
    ws_path: str, kwargs: dict[str, Any], expected: str
) -> None:
    assert route_template(ws_path, kwargs) == expected


def test_connections_to_one_route_share_its_template() -> None:
    # Every connection keeps its route: one string for all of them, not a
    # copy each.
    first = route_template("/ws/room/lobby/", {"room": "lobby"})
    second = route_template("/ws/room/" + "kitchen/", {"room": "kitchen"})
    plain = route_template("/ws/" + "echo/", {})
    assert first is second
    assert plain is route_template("/ws/echo/", {})
