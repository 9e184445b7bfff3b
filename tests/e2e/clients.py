"""WebSocket clients for the e2e tests: connect like a browser, read frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.e2e.servers import UvicornServer

__all__ = ["AUTH_OK", "LOBBY", "RECV_TIMEOUT", "next_frame", "open_ws", "send_action"]

RECV_TIMEOUT = 10.0
LOBBY = "/ws/chat/lobby/"
AUTH_OK = {
    "action": "authentication",
    "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}},
}


def open_ws(server: UvicornServer, path: str, *, token: str | None = None) -> connect:
    """Connect to ``server`` the way a page served by it would (same Origin)."""
    query = f"?token={token}" if token is not None else ""
    return connect(
        f"{server.ws_url}{path}{query}",
        origin=Origin(server.http_url),
        proxy=None,
        open_timeout=RECV_TIMEOUT,
        close_timeout=RECV_TIMEOUT,
    )


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    """The next JSON frame; fails if none comes within ``RECV_TIMEOUT``."""
    try:
        text = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    except (asyncio.TimeoutError, TimeoutError):
        raise AssertionError(f"no frame within {RECV_TIMEOUT}s") from None
    assert isinstance(text, str), f"expected a text frame, got {text!r}"
    frame = json.loads(text)
    assert isinstance(frame, dict), f"expected a JSON object, got {text!r}"
    return frame


async def send_action(ws: ClientConnection, action: str, payload: Any = None) -> None:
    await ws.send(json.dumps({"action": action, "payload": payload}))
