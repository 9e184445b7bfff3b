"""Two uvicorn processes, one Redis channel layer: the demo's room chat end to end.

Process A and process B serve the same demo project, share one SQLite file
and one Redis channel layer (a prefix unique to this run). Group messages and
channel events must reach clients of both processes; handshakes that fail
authentication must report DRF's status and close with ``4000 + status``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.e2e.clients import (
    AUTH_OK,
    LOBBY,
    RECV_TIMEOUT,
    next_frame,
    open_ws,
    send_action,
)
from tests.e2e.servers import (
    UvicornServer,
    launch,
    postgres_database,
    seeded_demo,
)

pytestmark = pytest.mark.e2e

# channels_redis blocks up to 5 s per BZPOPMIN while a consumer waits for
# messages; staying idle longer than that crosses at least one such read.
IDLE_SECONDS = 7.0


@dataclass
class Cluster:
    """Both servers and the demo users' tokens."""

    a: UvicornServer
    b: UvicornServer
    tokens: dict[str, str]

    @property
    def servers(self) -> tuple[UvicornServer, UvicornServer]:
        return (self.a, self.b)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The demo's database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'e2e.sqlite3'}"
        return
    with postgres_database(f"chanx_e2e_{uuid.uuid4().hex}") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("e2e")
    servers: list[UvicornServer] = []
    with seeded_demo(workdir, database_url) as (env, tokens):
        try:
            for name in ("a", "b"):
                servers.append(launch(name, env, workdir))
            yield Cluster(servers[0], servers[1], tokens)
        finally:
            graceful = {server.name: server.stop() for server in servers}
    # A consumer stuck on the channel layer shows up as a slow shutdown or as
    # a traceback, while every test may still have passed. (The conftest hook
    # attaches the logs to this failure.)
    problems: list[str] = []
    for server in servers:
        if not graceful[server.name]:
            problems.append(f"server {server.name} had to be killed")
        elif "Traceback" in server.log_path.read_text(errors="replace"):
            problems.append(f"server {server.name} logged a traceback")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


async def test_room_messages_and_announcements_cross_processes(
    cluster: Cluster,
) -> None:
    alice, bob = cluster.tokens["alice"], cluster.tokens["bob"]
    async with (
        open_ws(cluster.a, LOBBY, token=alice) as alice_a,
        open_ws(cluster.b, LOBBY, token=bob) as bob_b,
        open_ws(cluster.b, LOBBY, token=alice) as alice_b,
    ):
        clients = (alice_a, bob_b, alice_b)
        # The authentication frame comes after the groups were joined.
        for ws in clients:
            assert await next_frame(ws) == AUTH_OK

        await send_action(alice_a, "chat", {"content": "hi"})
        payload = {"username": "alice", "content": "hi"}
        assert await next_frame(bob_b) == {
            "action": "room_message",
            "payload": payload,
            "is_mine": False,
            "is_current": False,
        }
        assert await next_frame(alice_b) == {
            "action": "room_message",
            "payload": payload,
            "is_mine": True,
            "is_current": False,
        }
        assert await next_frame(alice_a) == {
            "action": "room_message",
            "payload": payload,
            "is_mine": True,
            "is_current": True,
        }
        # A pong right after proves nothing else (e.g. a duplicate) was queued.
        for ws in clients:
            await send_action(ws, "ping")
            assert await next_frame(ws) == {"action": "pong", "payload": None}

        async with httpx.AsyncClient(
            base_url=cluster.b.http_url, trust_env=False, timeout=RECV_TIMEOUT
        ) as http:
            response = await http.post(
                "/api/announce/",
                json={"content": "maintenance at noon", "level": "warning"},
                headers={"Authorization": f"Token {alice}"},
            )
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "sent"}
        for ws in clients:
            assert await next_frame(ws) == {
                "action": "announcement",
                "payload": {"content": "maintenance at noon", "level": "warning"},
            }


@pytest.mark.parametrize(
    ("user", "path", "status", "detail"),
    [
        pytest.param(
            "bob",
            "/ws/chat/private/",
            403,
            "You are not a member of this room.",
            id="not-a-member",
        ),
        # QueryTokenAuthentication has a WWW-Authenticate scheme ("Token"), so
        # DRF answers missing or bad credentials with 401, not 403.
        pytest.param(
            None,
            LOBBY,
            401,
            "Authentication credentials were not provided.",
            id="no-token",
        ),
        pytest.param("invalid", LOBBY, 401, "Invalid token.", id="bad-token"),
        pytest.param(
            "alice", "/ws/chat/nowhere/", 404, "Not found.", id="no-such-room"
        ),
    ],
)
async def test_failed_handshake_reports_drf_status_then_closes(
    cluster: Cluster, user: str | None, path: str, status: int, detail: str
) -> None:
    token = None if user is None else cluster.tokens.get(user, "0" * 40)
    async with open_ws(cluster.a, path, token=token) as ws:
        assert await next_frame(ws) == {
            "action": "authentication",
            "payload": {
                "status_code": status,
                "status_text": HTTPStatus(status).phrase,
                "data": {"detail": detail},
            },
        }
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    assert closed.value.rcvd is not None, "the server did not send a close frame"
    assert closed.value.rcvd.code == 4000 + status


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("http://evil.example", id="foreign"),
        pytest.param(None, id="none"),
        # An allowed host as a prefix of another host, and a sandboxed page.
        pytest.param("http://127.0.0.1.evil.example", id="lookalike"),
        pytest.param("null", id="null-origin"),
    ],
)
async def test_handshake_without_allowed_origin_is_refused(
    cluster: Cluster, origin: str | None
) -> None:
    url = f"{cluster.b.ws_url}{LOBBY}?token={cluster.tokens['alice']}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            url,
            origin=None if origin is None else Origin(origin),
            proxy=None,
            open_timeout=RECV_TIMEOUT,
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_idle_connection_outlives_the_channel_layer_blocking_read(
    cluster: Cluster,
) -> None:
    async with open_ws(cluster.a, LOBBY, token=cluster.tokens["bob"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        try:
            await asyncio.wait_for(ws.wait_closed(), IDLE_SECONDS)
        except (asyncio.TimeoutError, TimeoutError):
            pass
        else:
            pytest.fail(f"the server closed an idle connection (code {ws.close_code})")
        await send_action(ws, "ping")
        assert await next_frame(ws) == {"action": "pong", "payload": None}


async def test_ping_consumer_accepts_anonymous_clients(cluster: Cluster) -> None:
    async with open_ws(cluster.b, "/ws/ping/") as ws:
        assert await next_frame(ws) == AUTH_OK
        await send_action(ws, "ping")
        assert await next_frame(ws) == {"action": "pong", "payload": None}


async def test_announce_requires_credentials(cluster: Cluster) -> None:
    async with httpx.AsyncClient(
        base_url=cluster.a.http_url, trust_env=False, timeout=RECV_TIMEOUT
    ) as http:
        response = await http.post("/api/announce/", json={"content": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


async def test_bad_frames_get_error_frames_and_the_socket_stays_usable(
    cluster: Cluster,
) -> None:
    secret = "<script>SECRET-INPUT</script>"
    async with open_ws(cluster.b, LOBBY, token=cluster.tokens["alice"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        await ws.send("{not json")
        assert await next_frame(ws) == {
            "action": "error",
            "payload": [{"type": "json_invalid", "loc": [], "msg": "Invalid JSON"}],
        }
        await ws.send(json.dumps({"action": secret, "payload": secret}))
        unknown = await next_frame(ws)
        assert unknown["payload"][0]["type"] == "unknown_action"
        assert "SECRET-INPUT" not in json.dumps(unknown)
        await ws.send(b"\x00\xff binary")
        binary = await next_frame(ws)
        assert binary["payload"][0]["type"] == "frame_binary"
        await send_action(ws, "chat", {"content": {"nested": secret}})
        invalid = await next_frame(ws)
        assert invalid["action"] == "error"
        assert invalid["payload"][0]["loc"] == ["payload", "content"]
        assert "SECRET-INPUT" not in json.dumps(invalid)
        await send_action(ws, "ping")
        assert await next_frame(ws) == {"action": "pong", "payload": None}
