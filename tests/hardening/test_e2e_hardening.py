"""Hardening end to end: the demo in a real uvicorn process, real Redis, real sockets.

The server runs with ``--ws-max-size 262144`` (256 KiB) to show how uvicorn's
own frame limit and chanx's ``MAX_FRAME_BYTES`` (64 KiB by default) stack up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
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
    manage,
    seeded_demo,
)

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "hardening-" + secrets.token_hex(8)
WS_MAX_SIZE = 262_144
PASSWORD = "demo-password"  # seed_demo's password for every demo user
PONG = {"action": "pong", "payload": None}


@dataclass
class Demo:
    server: UvicornServer
    tokens: dict[str, str]
    session_key: str


_LOGIN = (
    "from django.test import Client; c = Client(); "
    "assert c.login(username='alice', password='demo-password'); "
    "print(c.cookies['sessionid'].value)"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("e2e-hardening")
    extra = {"METRICS_TOKEN": METRICS_TOKEN, "CHANX_LOG_FORMAT": "json"}
    with seeded_demo(workdir, **extra) as (env, tokens):
        session_key = manage(env, "shell", "-c", _LOGIN).strip().splitlines()[-1]
        server = launch(
            "hardening", env, workdir, extra_args=["--ws-max-size", str(WS_MAX_SIZE)]
        )
        try:
            yield Demo(server, tokens, session_key)
        finally:
            server.stop()


def error_types(frame: dict[str, Any]) -> list[str]:
    assert frame["action"] == "error", frame
    return [entry["type"] for entry in frame["payload"]]


async def ping(ws: ClientConnection) -> None:
    await send_action(ws, "ping")
    assert await next_frame(ws) == PONG


async def closed_code(ws: ClientConnection) -> int:
    """Wait for the server to close ``ws``; its close code."""
    try:
        await asyncio.wait_for(ws.wait_closed(), RECV_TIMEOUT)
    except (asyncio.TimeoutError, TimeoutError):
        raise AssertionError("the server did not close the connection") from None
    assert ws.close_code is not None
    return ws.close_code


async def read_until_closed(ws: ClientConnection, actions: list[str]) -> None:
    """Append each frame's action to ``actions`` until the connection closes."""
    while True:
        frame = await next_frame(ws)
        actions.append(frame["action"])
        if frame["action"] == "error":
            assert error_types(frame) == ["rate_limited"]


def error_counts(server: UvicornServer) -> dict[str, float]:
    """``chanx_message_errors_total`` of RoomConsumer by error_type, from /metrics."""
    response = httpx.get(
        f"{server.http_url}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "chanx_message_errors_total"
                and labels.get("consumer") == "RoomConsumer"
            ):
                kind = labels["error_type"]
                counts[kind] = counts.get(kind, 0.0) + sample.value
    return counts


async def test_oversized_frames_chanx_answers_uvicorn_closes_1009(demo: Demo) -> None:
    before = error_counts(demo.server)
    async with open_ws(demo.server, LOBBY, token=demo.tokens["alice"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        # Over chanx's 64 KiB, under uvicorn's 256 KiB: an error, still open.
        await send_action(ws, "chat", {"content": "x" * 100_000})
        assert error_types(await next_frame(ws)) == ["frame_too_large"]
        await ping(ws)
        # Over uvicorn's limit: the server closes before chanx sees the frame.
        await send_action(ws, "chat", {"content": "x" * (WS_MAX_SIZE + 1)})
        assert await closed_code(ws) == 1009
    after = error_counts(demo.server)
    assert after.get("frame_too_large", 0) - before.get("frame_too_large", 0) == 1


async def test_flooding_client_is_refused_then_closed_4429(demo: Demo) -> None:
    before = error_counts(demo.server)
    actions: list[str] = []
    async with open_ws(demo.server, LOBBY, token=demo.tokens["bob"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        ping_text = json.dumps({"action": "ping"})
        try:
            for _ in range(400):  # as fast as the socket takes them
                await ws.send(ping_text)
        except ConnectionClosed:
            pass  # closed by the server mid-flood
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(ws, actions)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4429
    # The default bucket lets the first 40 through (plus what refilled), then
    # the 50th refused frame closes the connection.
    assert actions.count("pong") >= 40
    assert actions.count("error") == 50
    assert actions[-1] == "error"
    after = error_counts(demo.server)
    assert after.get("rate_limited", 0) - before.get("rate_limited", 0) == 50
    # Other clients are served as usual.
    async with open_ws(demo.server, LOBBY, token=demo.tokens["bob"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        await ping(ws)


BAD_FRAMES: list[tuple[str | bytes, str, str]] = [
    ("{not json", "json_invalid", "decode"),
    ("[1, 2, 3]", "frame_type", "decode"),
    (b"\x00\xffbinary", "frame_binary", "decode"),
    ('{"payload": {"content": "no action"}}', "missing", "validation"),
    ('{"action": "drop_tables", "payload": null}', "unknown_action", "validation"),
    ('{"action": "chat", "payload": {"content": 42}}', "string_type", "validation"),
    ('{"action": "chat", "payload": "' + "é" * 40_000 + '"}', "frame_too_large", ""),
    ('{"action": "chat", "payload": ' + "[" * 5000 + "]" * 5000 + "}", "", ""),
]


async def test_bad_frames_over_the_socket_leave_the_connection_usable(
    demo: Demo,
) -> None:
    before = error_counts(demo.server)
    async with open_ws(demo.server, LOBBY, token=demo.tokens["alice"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        for frame, detail_type, _ in BAD_FRAMES:
            await ws.send(frame)
            types = error_types(await next_frame(ws))
            assert types == [detail_type or "json_too_deep"], frame[:40]
            await ping(ws)
        # Extra fields are ignored, the known ones still checked.
        await ws.send(
            json.dumps(
                {
                    "action": "chat",
                    "payload": {"content": "extra", "is_admin": True},
                    "room": "private",
                }
            )
        )
        assert (await next_frame(ws))["action"] == "room_message"
    after = error_counts(demo.server)
    for error_type, expected in [
        ("decode", 3),
        ("validation", 3),
        ("frame_too_large", 1),
        ("too_deep", 1),
    ]:
        assert after.get(error_type, 0) - before.get(error_type, 0) == expected


async def test_text_frame_that_is_not_utf8_is_closed_1007_by_the_server(
    demo: Demo,
) -> None:
    async with open_ws(demo.server, LOBBY, token=demo.tokens["alice"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        await ws.send(b'{"action": "chat", "payload": "\xff\xfe"}', text=True)
        # RFC 6455: the server must fail the connection; chanx never sees it.
        assert await closed_code(ws) == 1007
    async with open_ws(demo.server, LOBBY, token=demo.tokens["alice"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        await ping(ws)


async def test_payload_fields_cannot_move_a_client_into_another_room(
    demo: Demo,
) -> None:
    # Alice is in "private"; bob is not and tries to reach it through fields.
    async with (
        open_ws(
            demo.server, "/ws/chat/private/", token=demo.tokens["alice"]
        ) as private,
        open_ws(demo.server, LOBBY, token=demo.tokens["bob"]) as bob,
    ):
        assert await next_frame(private) == AUTH_OK
        assert await next_frame(bob) == AUTH_OK
        hop = {
            "action": "chat",
            "payload": {"content": "hop", "room": "private", "group": "room_2"},
            "room": "private",
            "groups": ["room_1", "room_2", "room_private"],
            "lookup": "private",
        }
        await bob.send(json.dumps(hop))
        echoed = await next_frame(bob)
        assert echoed["payload"]["content"] == "hop"  # it went to the lobby only
        # A sentinel published after the hop: anything leaked would come first.
        await send_action(private, "chat", {"content": "sentinel"})
        first = await next_frame(private)
        assert first["payload"] == {"username": "alice", "content": "sentinel"}


def _secrets(demo: Demo) -> dict[str, str]:
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    return {
        **{f"token:{name}": token for name, token in demo.tokens.items()},
        "session": demo.session_key,
        "password": PASSWORD,
        "basic": basic,
        "bad-token": "f" * 39 + "1",
    }


async def _authenticated_traffic(demo: Demo) -> None:
    """Sessions with every kind of credential, and requests that carry them."""
    url = f"{demo.server.ws_url}{LOBBY}"
    origin = Origin(demo.server.http_url)
    header = {"Authorization": f"Token {demo.tokens['bob']}"}
    cookie = {"Cookie": f"sessionid={demo.session_key}"}
    for headers in (header, cookie):
        async with connect(
            url, origin=origin, additional_headers=headers, proxy=None
        ) as ws:
            assert await next_frame(ws) == AUTH_OK
            await send_action(ws, "chat", {"content": "hi", "password": PASSWORD})
            assert (await next_frame(ws))["action"] == "room_message"
            await send_action(ws, "chat", {"password": PASSWORD})
            assert (await next_frame(ws))["action"] == "error"
    query = f"?password={PASSWORD}&token={demo.tokens['alice']}"
    async with connect(url + query, origin=origin, proxy=None) as ws:
        assert await next_frame(ws) == AUTH_OK
    async with open_ws(demo.server, LOBBY, token="f" * 39 + "1") as ws:
        assert (await next_frame(ws))["payload"]["status_code"] == 401
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    async with httpx.AsyncClient(base_url=demo.server.http_url, timeout=10) as http:
        for headers in (
            {"Authorization": f"Token {demo.tokens['alice']}"},
            {"Authorization": f"Basic {basic}"},
            {"Cookie": f"sessionid={demo.session_key}; csrftoken=abc"},
        ):
            await http.post(
                "/api/announce/",
                json={"content": "x", "level": "info", "password": PASSWORD},
                headers=headers,
            )
        await http.get(f"/api/announce/?token={demo.tokens['alice']}")


def _log_text(path: Path) -> str:
    return path.read_text(errors="replace")


async def test_logs_never_hold_tokens_passwords_cookies_or_auth_headers(
    demo: Demo,
) -> None:
    await _authenticated_traffic(demo)
    text = _log_text(demo.server.log_path)
    leaked = [name for name, value in _secrets(demo).items() if value in text]
    assert leaked == []
    # The traffic was logged (redacted), so the check above is not vacuous.
    assert text.count("connection_authenticated") >= 3
    assert "token=[redacted]" in text
    assert "password=[redacted]" in text
    assert "/api/announce/" in text


def test_metrics_need_the_token_and_probes_say_only_ok(demo: Demo) -> None:
    with httpx.Client(base_url=demo.server.http_url, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert "chanx_" not in refused.text
        good = http.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert good.status_code == 200
        assert "chanx_connections_active" in good.text
        for probe in ("/healthz", "/readyz"):
            response = http.get(probe)
            assert response.json() == {"status": "ok"}
            body = response.text.lower()
            assert "redis" not in body
            assert "version" not in body
