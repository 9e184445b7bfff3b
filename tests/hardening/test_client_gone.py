"""A client that leaves while the server answers it is not a handler failure."""

from __future__ import annotations

from typing import Any

import pytest
from channels.routing import URLRouter
from django.urls import path
from structlog.testing import capture_logs

from chanx.messages.incoming import PingMessage
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, open_ws


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
