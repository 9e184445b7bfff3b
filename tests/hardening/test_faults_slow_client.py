"""A client that stops reading: bounded server memory, others unaffected.

The slow client is a raw socket with a tiny receive buffer that completes the
WebSocket handshake and then reads nothing, while another member of its room
floods the room. uvicorn stops writing once the socket buffers are full, and
the consumer's send waits. After ``SEND_TIMEOUT`` chanx drops the connection
(close code 4408, ``slow_client_dropped``), so the client can reconnect and
resync instead of silently missing messages: meanwhile channels-redis keeps
at most ``capacity`` (100) messages per channel and drops older ones.
Server memory stays bounded either way; this test checks both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import ClientConnection

from tests.e2e.clients import AUTH_OK, LOBBY, RECV_TIMEOUT, next_frame, open_ws
from tests.e2e.servers import HOST, UvicornServer, launch
from tests.hardening.faults_servers import (
    RedisProcess,
    eventually,
    faults_env,
    logged_events,
    metric,
    rss_kib,
    tokens_for,
)

pytestmark = pytest.mark.e2e

SEND_TIMEOUT = 1.0
CONTENT = "x" * 32_000
# Up to ~16 MB, sent until the slow client is dropped: more than the socket
# buffers between server and client hold, so the server's writes block.
FILL_MESSAGES = 500
# ~24 MB more after that: a server that kept a backlog for the slow client
# would grow by about this much.
MORE_MESSAGES = 750
# RSS growth allowed over the whole flood (KiB), well below the 32 MB sent;
# measured: about 4 MB.
RSS_GROWTH_CAP_KIB = 16 * 1024
DROP_WAIT = 60.0


@dataclass
class SlowSetup:
    server: UvicornServer
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlowSetup]:
    workdir = tmp_path_factory.mktemp("faults-slow")
    redis = RedisProcess(workdir / "redis.log")
    redis.start()
    try:
        env = faults_env(workdir, redis.url, FAULTS_SEND_TIMEOUT=str(SEND_TIMEOUT))
        tokens = tokens_for(env)
        server = launch("slow-client", env, workdir)
        try:
            yield SlowSetup(server, tokens)
        finally:
            server.stop()
    finally:
        redis.stop()


def open_raw_websocket(server: UvicornServer, path: str) -> socket.socket:
    """Handshake on a socket with a tiny receive buffer; read up to the auth frame."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connect, so the advertised TCP window stays small.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(RECV_TIMEOUT)
    sock.connect((HOST, server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {server.http_url}\r\n\r\n"
    )
    sock.sendall(request.encode())
    received = b""
    while b'"status_code":200' not in received.replace(b" ", b""):
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {received!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 101"), received[:80]
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> int:
    """Read everything the server sent until it closes the socket; bytes read."""
    deadline = time.monotonic() + timeout
    total = 0
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return total
        if not chunk:
            return total
        total += len(chunk)
    raise AssertionError(f"socket still open after {timeout}s ({total} bytes read)")


class Flooder:
    """Sends chat lines and reads their echoes, never more than ``WINDOW`` ahead.

    Unpaced, the flooder would itself be a slow reader of its own echoes.
    """

    WINDOW = 20

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.sent = 0
        self.echoed = 0
        self.caught_up = asyncio.Event()
        self.text = json.dumps({"action": "chat", "payload": {"content": CONTENT}})

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                if len(frame) > len(CONTENT):
                    self.echoed += 1
                    if self.echoed >= self.sent - self.WINDOW:
                        self.caught_up.set()

    async def send(self) -> None:
        if self.sent - self.echoed >= self.WINDOW:
            self.caught_up.clear()
            await asyncio.wait_for(self.caught_up.wait(), RECV_TIMEOUT)
        self.sent += 1
        await self.ws.send(self.text)


def dropped(server: UvicornServer) -> bool:
    return "slow_client_dropped" in logged_events(server)


async def pong(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"action": "ping"}))
    while (await next_frame(ws))["action"] != "pong":
        pass


async def test_slow_client_is_dropped_memory_stays_bounded_others_served(
    slow: SlowSetup,
) -> None:
    server = slow.server
    assert server.process is not None
    sock = await asyncio.to_thread(
        open_raw_websocket, server, f"{LOBBY}?token={slow.tokens['bob']}"
    )
    try:
        async with (
            open_ws(server, LOBBY, token=slow.tokens["alice"]) as alice,
            open_ws(server, "/ws/ping/") as bystander,
        ):
            assert await next_frame(alice) == AUTH_OK
            assert (await next_frame(bystander))["payload"]["status_code"] == 200
            await pong(bystander)
            rss_before = rss_kib(server.process.pid)
            flooder = Flooder(alice)
            reader = asyncio.create_task(flooder.read())
            for index in range(FILL_MESSAGES):
                await flooder.send()
                if index % 20 == 0:
                    # Someone else on the same server is still served.
                    await pong(bystander)
                    if await asyncio.to_thread(dropped, server):
                        break
            await eventually(
                lambda: asyncio.to_thread(dropped, server),
                DROP_WAIT,
                "the slow client to be dropped",
            )
            peak = rss_kib(server.process.pid)
            for index in range(MORE_MESSAGES):
                await flooder.send()
                if index % 50 == 0:
                    await pong(bystander)
                    peak = max(peak, rss_kib(server.process.pid))
            await pong(bystander)
            peak = max(peak, rss_kib(server.process.pid))
            reader.cancel()
        growth = peak - rss_before
        assert growth < RSS_GROWTH_CAP_KIB, f"RSS grew by {growth} KiB"
        # Counted once the consumer has ended (after a short try to send 4408).
        await eventually(
            lambda: asyncio.to_thread(
                metric, server, "chanx_connections_closed_total", code_class="4xxx"
            ),
            DROP_WAIT,
            "the dropped connection to be counted",
        )
        # The server let go of the socket: reading now ends in EOF.
        await asyncio.to_thread(read_until_closed, sock, DROP_WAIT)
    finally:
        sock.close()
