"""Redis (the channel layer) dies while clients are connected, then comes back.

A real uvicorn process serves the demo on a Redis of the test's own, which
the test kills by pid and restarts on the same port (empty: every group
membership is gone, as after a real crash).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.e2e.clients import AUTH_OK, LOBBY, RECV_TIMEOUT, next_frame, open_ws
from tests.e2e.servers import UvicornServer, launch
from tests.hardening.faults_servers import (
    RedisProcess,
    eventually,
    faults_env,
    logged_events,
    metric,
    readyz_status,
    tokens_for,
)

pytestmark = pytest.mark.e2e

RECOVERY_WAIT = 30.0


@dataclass
class Outage:
    server: UvicornServer
    redis: RedisProcess
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    workdir = tmp_path_factory.mktemp("faults-redis")
    redis = RedisProcess(workdir / "redis.log")
    redis.start()
    try:
        env = faults_env(workdir, redis.url, FAULTS_LAYER_TIMEOUT="2")
        tokens = tokens_for(env)
        server = launch("redis-outage", env, workdir)
        try:
            yield Outage(server, redis, tokens)
        finally:
            server.stop()
    finally:
        redis.stop()


async def chat(ws: ClientConnection, content: str) -> None:
    await ws.send(json.dumps({"action": "chat", "payload": {"content": content}}))


async def frame_where(ws: ClientConnection, **wanted: Any) -> dict[str, Any]:
    """The next frame whose top-level keys have ``wanted`` values (others skipped)."""
    while True:
        frame = await next_frame(ws)
        if all(frame.get(k) == v for k, v in wanted.items()):
            return frame


async def ping(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"action": "ping"}))
    await frame_where(ws, action="pong")


async def delivered(
    sender: ClientConnection, receiver: ClientConnection, label: str
) -> bool:
    """Send one chat line; True if ``receiver`` gets it within a short wait."""
    await chat(sender, label)
    try:
        await asyncio.wait_for(_content(receiver, label), 1.0)
    except asyncio.TimeoutError:
        return False
    return True


async def _content(ws: ClientConnection, label: str) -> None:
    while True:
        payload = json.loads(await ws.recv()).get("payload") or {}
        if isinstance(payload, dict) and payload.get("content") == label:
            return


async def drain_frames(ws: ClientConnection) -> None:
    """Read whatever frames are waiting (errors, echoes) without blocking."""
    while True:
        try:
            await asyncio.wait_for(ws.recv(), 0.2)
        except asyncio.TimeoutError:
            return


async def test_outage_keeps_direct_messages_and_fails_group_sends_visibly(
    outage: Outage,
) -> None:
    server, redis = outage.server, outage.redis
    alice_ws = open_ws(server, LOBBY, token=outage.tokens["alice"])
    bob_ws = open_ws(server, LOBBY, token=outage.tokens["bob"])
    async with alice_ws as alice, bob_ws as bob:
        assert await next_frame(alice) == AUTH_OK
        assert await next_frame(bob) == AUTH_OK
        assert await delivered(alice, bob, "before")
        assert await asyncio.to_thread(readyz_status, server) == 200

        redis.stop()
        # /readyz takes the process out of the load balancer...
        await eventually(
            lambda: asyncio.to_thread(lambda: readyz_status(server) == 503),
            RECOVERY_WAIT,
            "/readyz to report 503",
        )
        # ...while its open connections keep answering what needs no Redis.
        await drain_frames(alice)
        await ping(alice)
        await ping(bob)

        # A group send fails visibly: an error frame, the socket stays open.
        await chat(alice, "during")
        error = await frame_where(alice, action="error")
        assert error["payload"] == [
            {
                "type": "group_send_failed",
                "loc": [],
                "msg": "The message could not be sent to the group; try again later",
            }
        ]
        await ping(alice)
        sends = metric(server, "chanx_group_sends_total", outcome="error")
        layer_errors = metric(
            server, "chanx_channel_layer_errors_total", operation="group_send"
        )
        assert sends >= 1
        assert layer_errors >= 1
        assert "group_send_failed" in logged_events(server)

        redis.start()
        await eventually(
            lambda: asyncio.to_thread(lambda: readyz_status(server) == 200),
            RECOVERY_WAIT,
            "/readyz to report 200 again",
        )
        # The restarted Redis has no groups: the consumers re-join theirs
        # on their own, without an app restart or a reconnect.
        labels = iter(range(1000))
        await eventually(
            lambda: delivered(alice, bob, f"after-{next(labels)}"),
            RECOVERY_WAIT,
            "group messages to flow again",
        )
        await drain_frames(bob)
        await drain_frames(alice)
        assert await delivered(bob, alice, "both-ways")
        await ping(alice)


async def test_connecting_during_outage_is_refused_cleanly_then_works(
    outage: Outage, tmp_path: Path
) -> None:
    server, redis = outage.server, outage.redis
    redis.stop()
    try:
        async with open_ws(server, LOBBY, token=outage.tokens["bob"]) as ws:
            # Joining the room's groups needs Redis: a clear 500, closed 4500.
            frame = await next_frame(ws)
            assert frame["payload"]["status_code"] == 500
            await asyncio.wait_for(ws.wait_closed(), RECV_TIMEOUT)
            assert ws.close_code == 4500
    finally:
        redis.start()
    await eventually(
        lambda: asyncio.to_thread(lambda: readyz_status(server) == 200),
        RECOVERY_WAIT,
        "/readyz to report 200 again",
    )
    async with open_ws(server, LOBBY, token=outage.tokens["bob"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        await ping(ws)
