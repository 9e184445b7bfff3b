"""The pytest fixtures from ``chanx.pytest_plugin``, overridden in this module."""

from __future__ import annotations

from typing import Any

import pytest
from channels.routing import URLRouter
from django.urls import path

from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import RECORDS, RoomConsumer
from tests.app.helpers import Factory
from tests.app.messages import WhoAmIMessage
from tests.app.routing import router

HEADERS = [(b"x-fixture", b"yes")]


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture
def chanx_ws_path() -> str:
    return "/ws/room/fixture-room/"


@pytest.fixture
def chanx_ws_headers() -> list[tuple[bytes, bytes]]:
    return HEADERS


async def test_auth_communicator_is_connected(
    chanx_auth_communicator: WebsocketCommunicator,
) -> None:
    await chanx_auth_communicator.assert_authenticated_status_ok()
    await chanx_auth_communicator.send_message(WhoAmIMessage())
    [identity] = await chanx_auth_communicator.receive_all_json()
    assert identity["payload"]["kwargs"] == {"room": "fixture-room"}
    assert chanx_auth_communicator.scope["headers"] == HEADERS


async def test_factory_uses_module_defaults(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory()
    assert ws.scope["path"] == "/ws/room/fixture-room/"
    assert ws.scope["headers"] == HEADERS
    assert (await ws.connect())[0]
    await ws.assert_authenticated_status_ok()
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


async def test_factory_arguments_override_defaults(
    chanx_communicator_factory: Factory,
) -> None:
    other_router = URLRouter([path("elsewhere/<str:room>/", RoomConsumer.as_asgi())])
    ws = await chanx_communicator_factory(
        path="/elsewhere/other/",
        headers=[],
        subprotocols=["chanx.v1"],
        router=other_router,
    )
    assert ws.scope["headers"] == []
    assert ws.scope["subprotocols"] == ["chanx.v1"]
    assert (await ws.connect())[0]
    await ws.assert_authenticated_status_ok()
    await ws.send_message(WhoAmIMessage())
    [identity] = await ws.receive_all_json()
    assert identity["payload"]["kwargs"] == {"room": "other"}


_left_open: list[str] = []


async def test_factory_connection_left_open(
    chanx_communicator_factory: Factory,
) -> None:
    RECORDS.clear()
    ws = await chanx_communicator_factory(path="/ws/lifecycle/left-open/")
    assert (await ws.connect())[0]
    await ws.assert_authenticated_status_ok()
    _left_open.append("left-open")


def test_factory_disconnected_the_previous_tests_connection() -> None:
    """Runs after the test above (file order) and checks its cleanup."""
    if not _left_open:
        pytest.skip("needs test_factory_connection_left_open to run first")
    assert ("disconnect", 1000) in RECORDS
    RECORDS.clear()
