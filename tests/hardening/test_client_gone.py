"""A client that leaves while the server answers it is not a handler failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path
from structlog.testing import capture_logs

from chanx.messages.incoming import PingMessage
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, open_ws
from tests.app.routing import router

Message = dict[str, Any]


class VanishingClientConsumer(RoomConsumer):
    """Its transport fails the way uvicorn's does once the client has gone."""

    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: Any = False,
    ) -> None:
        if text_data is not None and '"pong"' in text_data:
            # uvicorn's ClientDisconnected is an OSError subclass.
            raise ConnectionResetError("client disconnected")
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter([path("gone/<str:room>/", VanishingClientConsumer.as_asgi())])


async def test_send_to_a_vanished_client_ends_the_connection_quietly(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "gone/lobby/")
        await ws.send_message(PingMessage())
        # The consumer ends by itself: nothing more is sent, no error frame.
        await ws.wait(timeout=5)
    events = [entry["event"] for entry in logs]
    assert "client_gone" in events
    assert "message_handler_failed" not in events
    errors = [e for e in logs if e.get("log_level") in {"error", "critical"}]
    assert errors == []
    closed = [e for e in logs if e["event"] == "connection_closed"]
    assert closed
    assert closed[-1].get("code") == 1006


def failing_on(message_type: str, app: Any) -> Any:
    """``app`` behind a server whose client is gone by the time
    ``message_type`` is sent: uvicorn raises ``ClientDisconnected`` then."""

    async def wrapped(scope: Message, receive: Any, send: Any) -> None:
        async def send_or_fail(message: Message) -> None:
            if message["type"] == message_type:
                raise ConnectionResetError("client disconnected")
            await send(message)

        await app(scope, receive, send_or_fail)

    return wrapped


def problems(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e.get("log_level") in {"warning", "error", "critical"}]


async def test_a_client_gone_before_the_accept_is_not_a_connect_failure() -> None:
    ws = WebsocketCommunicator(failing_on("websocket.accept", router), "/ws/room/x/")
    with capture_logs() as logs:
        await ws.send_input({"type": "websocket.connect"})
        # The consumer ends by itself, and without raising.
        await ws.wait(timeout=5)
    events = [entry["event"] for entry in logs]
    assert "client_gone" in events
    assert "connect_failed" not in events
    assert problems(logs) == []
    closed = [e for e in logs if e["event"] == "connection_closed"]
    assert [e.get("code") for e in closed] == [1006]


async def test_a_client_gone_before_a_refusal_closes_is_not_a_failure() -> None:
    ws = WebsocketCommunicator(failing_on("websocket.close", router), "/ws/token/x/")
    with capture_logs() as logs:
        connected, _ = await ws.connect()
        assert connected
        frame = await ws.receive_json_from()
        assert frame["payload"]["status_code"] == 401
        # What the server reports once the socket is gone.
        await ws.send_input({"type": "websocket.disconnect", "code": 1006})
        await ws.wait(timeout=5)
    events = [entry["event"] for entry in logs]
    assert "authentication_failed" in events
    assert "connect_failed" not in events
    assert [e.get("phase") for e in logs if e["event"] == "client_gone"] == ["close"]
    assert problems(logs) == []
