"""Graceful shutdown under ``python -m chanx.serve``: drain, close 1001, flush.

A real server process gets SIGTERM while a client waits for the reply to a
message the server is still handling. Spans are exported only by the final
flush (the batch delay is a minute), so their arrival proves it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection

from tests.e2e.clients import RECV_TIMEOUT, next_frame, open_ws
from tests.e2e.peers import OtlpReceiver
from tests.e2e.servers import HOST, UvicornServer
from tests.hardening.faults_servers import (
    ServeProcess,
    ServeSetup,
    eventually,
    launch_serve,
    logged_events,
    redis_and_env,
)

pytestmark = pytest.mark.e2e

APP = "tests.hardening.faults_asgi:application"
DRAIN_TIMEOUT = 10.0
SLOW_REPLY = 2.0
SHORT_DRAIN = 1.0
STUCK_REPLY = 60.0
# The process must be gone within the drain timeout plus this margin.
EXIT_MARGIN = 15.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeSetup]:
    workdir = tmp_path_factory.mktemp("faults-shutdown")
    with redis_and_env(workdir) as env:
        yield ServeSetup(workdir, env)


def start(
    setup: ServeSetup,
    receiver: OtlpReceiver,
    name: str,
    reply: float = SLOW_REPLY,
    args: list[str] | None = None,
) -> ServeProcess:
    env = {
        **setup.env,
        "FAULTS_SLOW_REPLY": str(reply),
        "OTEL_SERVICE_NAME": "chanx-drain",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        # Nothing is exported on a timer: only the shutdown flush sends spans.
        "OTEL_BSP_SCHEDULE_DELAY": "60000",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
    }
    args = args or ["--drain-timeout", str(DRAIN_TIMEOUT)]
    return launch_serve(name, env, setup.workdir, APP, args)


def refuses_connections(server: UvicornServer) -> bool:
    try:
        with socket.create_connection((HOST, server.port), timeout=2):
            return False
    except OSError:
        return True


def wait_exit(server: UvicornServer, timeout: float) -> float:
    """Seconds until the process exited; fails after ``timeout``."""
    assert server.process is not None
    started = time.monotonic()
    server.process.wait(timeout=timeout)
    return time.monotonic() - started


async def sigterm_while_handling_a_ping(
    server: ServeProcess, ws: ClientConnection
) -> None:
    """Authenticated ``ws`` sends a ping; once the server is handling it, SIGTERM."""
    assert (await next_frame(ws))["payload"]["status_code"] == 200
    await ws.send(json.dumps({"action": "ping"}))
    await eventually(
        lambda: asyncio.to_thread(lambda: "message_received" in logged_events(server)),
        RECV_TIMEOUT,
        "the server to start handling the ping",
    )
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)


async def test_sigterm_finishes_in_flight_message_closes_1001_and_flushes(
    setup: ServeSetup,
) -> None:
    with OtlpReceiver() as receiver:
        server = start(setup, receiver, "drain")
        try:
            async with open_ws(server, "/ws/slow/") as ws:
                await sigterm_while_handling_a_ping(server, ws)
                await eventually(
                    lambda: asyncio.to_thread(
                        lambda: "drain_started" in logged_events(server)
                    ),
                    RECV_TIMEOUT,
                    "the drain to start",
                )
                # Draining: the listening socket is closed...
                assert await asyncio.to_thread(refuses_connections, server)
                # ...the in-flight message still gets its reply, then 1001.
                assert (await next_frame(ws))["action"] == "pong"
                await asyncio.wait_for(ws.wait_closed(), RECV_TIMEOUT)
                assert ws.close_code == 1001
            await asyncio.to_thread(wait_exit, server, DRAIN_TIMEOUT + EXIT_MARGIN)
            # Exported by the flush at shutdown, not by the (1 minute) timer.
            assert receiver.find(name="receive ping", service="chanx-drain")
            assert "drain_finished" in logged_events(server)
            # The last line, logged just before the process ends itself.
            assert logged_events(server)[-1] == "server_stopped"
        finally:
            server.stop()


async def test_drain_timeout_bounds_shutdown_of_a_stuck_handler(
    setup: ServeSetup,
) -> None:
    with OtlpReceiver() as receiver:
        args = ["--drain-timeout", str(SHORT_DRAIN)]
        server = start(setup, receiver, "drain-timeout", STUCK_REPLY, args)
        try:
            async with open_ws(server, "/ws/slow/") as ws:
                await sigterm_while_handling_a_ping(server, ws)
                # The handler would take a minute: the drain gives up, and
                # uvicorn closes the socket with 1012 ("service restart").
                await asyncio.wait_for(ws.wait_closed(), SHORT_DRAIN + EXIT_MARGIN)
                assert ws.close_code == 1012
            await asyncio.to_thread(wait_exit, server, SHORT_DRAIN + EXIT_MARGIN)
            assert "drain_timeout" in logged_events(server)
        finally:
            server.stop()
