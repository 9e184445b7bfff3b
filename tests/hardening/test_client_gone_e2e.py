"""A client that hangs up mid-handshake, through a real server and socket.

The server (``python -m chanx.serve``) holds the handshake before its
accept until the test opens a gate; the test's client resets its socket in
that window. The accept then meets a client that is gone: an ``info``
line and a bounded ``client_gone`` rejection, never ``connect_failed``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clients import RECV_TIMEOUT, next_frame, open_ws
from tests.e2e.servers import HOST
from tests.hardening.faults_servers import (
    ServeProcess,
    eventually,
    launch_serve,
    logged_events,
    logged_records,
    metric,
    redis_and_env,
)

pytestmark = pytest.mark.e2e

APP = "tests.hardening.faults_asgi:application"
REJECTED = "chanx_connections_rejected_total"


@pytest.fixture(scope="module")
def gated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServeProcess, Path]]:
    workdir = tmp_path_factory.mktemp("client-gone")
    gate = workdir / "gate"
    extra = {"FAULTS_CONNECT_GATE": str(gate), "FAULTS_SLOW_REPLY": "0"}
    with redis_and_env(workdir, **extra) as env:
        server = launch_serve("gated", env, workdir, APP, [])
        try:
            yield server, gate
        finally:
            server.stop()


def upgrade_request(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def reset(sock: socket.socket) -> None:
    """Close with an RST (linger 0), as a client whose process died."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def test_a_client_leaving_before_the_accept_is_client_gone(
    gated: tuple[ServeProcess, Path],
) -> None:
    server, gate = gated
    before = metric(server, REJECTED, reason="client_gone")
    sock = socket.create_connection((HOST, server.port), timeout=RECV_TIMEOUT)
    sock.sendall(upgrade_request(server.port, "/ws/gated/"))
    await eventually(
        lambda: asyncio.to_thread(
            lambda: "connect_gate_waiting" in logged_events(server)
        ),
        RECV_TIMEOUT,
        "the server to hold the handshake",
    )
    reset(sock)
    gate.touch()
    await eventually(
        lambda: asyncio.to_thread(
            lambda: metric(server, REJECTED, reason="client_gone") > before
        ),
        RECV_TIMEOUT,
        "the rejection to be counted",
    )
    assert metric(server, REJECTED, reason="client_gone") == before + 1
    assert metric(server, REJECTED, reason="error") == 0
    records = logged_records(server)
    events = [record["event"] for record in records]
    assert "client_gone" in events
    assert "connect_failed" not in events
    failures = [r for r in records if r.get("level") in {"error", "critical"}]
    assert failures == []
    # The server goes on: the next client through the open gate is served.
    async with open_ws(server, "/ws/gated/") as ws:
        assert (await next_frame(ws))["payload"]["status_code"] == 200
        await ws.send(json.dumps({"action": "ping"}))
        assert (await next_frame(ws))["action"] == "pong"
