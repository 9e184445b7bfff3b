"""Security properties in-process: what an unauthenticated connection can see,
and what error frames may contain."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.layers import get_channel_layer
from structlog.testing import capture_logs

from chanx.codec import plain_json
from chanx.events import build_event_payload
from chanx.groups import build_group_payload
from chanx.messages.incoming import PingMessage
from tests.app.consumers import CHANNELS, RoomConsumer
from tests.app.helpers import Factory, make_user, open_ws, raw_group_send, token_header
from tests.app.messages import NotifyEvent, NotifyPayload
from tests.hardening.app import AUTH_GATE

UNAUTHORIZED = {
    "action": "authentication",
    "payload": {
        "status_code": 401,
        "status_text": "Unauthorized",
        "data": {"detail": "Authentication credentials were not provided."},
    },
}


async def reach_everywhere(channel: str, text: str) -> None:
    """Try every way a frame could reach ``channel``: its groups and directly."""
    layer = get_channel_layer()
    assert layer is not None
    content = {"action": "chat_group", "payload": text}
    for group in ("secure_lobby", "room_vault"):
        await raw_group_send(group, content)
    event = NotifyEvent(payload=NotifyPayload(content=text))
    await RoomConsumer.asend_channel_event("room_vault", event)
    direct = build_group_payload(
        plain_json(content),
        action="chat_group",
        kind="message",
        exclude_current=False,
        from_channel="elsewhere",
        from_user_pk=None,
        meta={},
    )
    await layer.send(channel, direct)
    await layer.send(channel, build_event_payload(event, {}))


@pytest.fixture
def gate() -> dict[str, asyncio.Event]:
    AUTH_GATE.clear()
    AUTH_GATE["started"] = asyncio.Event()
    AUTH_GATE["release"] = asyncio.Event()
    return AUTH_GATE


async def test_nothing_reaches_a_connection_that_fails_authentication(
    chanx_communicator_factory: Factory, gate: dict[str, asyncio.Event]
) -> None:
    CHANNELS.clear()
    ws = await chanx_communicator_factory(path="/ws/slow-auth/vault/")
    with capture_logs() as logs:
        connected, _ = await ws.connect()  # accepted; authentication is pending
        assert connected
        await asyncio.wait_for(gate["started"].wait(), 5)
        # The handshake window: the socket is open, nobody is authenticated yet.
        await reach_everywhere(CHANNELS[-1], "during-handshake")
        await ws.send_message(PingMessage())
        gate["release"].set()
        assert await ws.receive_frame() == UNAUTHORIZED
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}
        # And after the failure.
        await reach_everywhere(CHANNELS[-1], "after-failure")
        await ws.send_message(PingMessage())
        await ws.send_to(text_data="{not json")
        assert await ws.receive_nothing(timeout=0.3)
    events = [entry["event"] for entry in logs]
    # The direct sends did arrive and were dropped on purpose, not lost.
    assert events.count("group_message_dropped") == 2
    assert events.count("event_dropped") == 2
    assert events.count("frame_ignored") == 3


@pytest.mark.django_db(transaction=True)
async def test_a_connection_that_passes_later_gets_only_what_follows_its_join(
    chanx_communicator_factory: Factory, gate: dict[str, asyncio.Event]
) -> None:
    _, key = await make_user("late-joiner")
    CHANNELS.clear()
    ws = await chanx_communicator_factory(
        path="/ws/slow-auth/vault/", headers=token_header(key)
    )
    connected, _ = await ws.connect()
    assert connected
    await asyncio.wait_for(gate["started"].wait(), 5)
    await raw_group_send("room_vault", {"action": "chat_group", "payload": "early"})
    gate["release"].set()
    await ws.assert_authenticated_status_ok()
    await raw_group_send("room_vault", {"action": "chat_group", "payload": "late"})
    frames = await ws.receive_all_json(wait_group=True)
    assert [f["payload"] for f in frames] == ["late"]


@pytest.mark.parametrize(
    "frame",
    [
        '{"action": "echo", "payload": {"sql": "SELECT * FROM auth_user"}}',
        '{"action": "/etc/passwd", "payload": "C:\\\\Windows"}',
        '{"action": "add", "payload": {"a": "Traceback (most recent call last)"}}',
        "[" * 50,
        '{"action": "note", "payload": {"note_text": "' + "x" * 70_000 + '"}}',
    ],
)
async def test_error_frames_hold_no_internals_and_no_input(
    chanx_communicator_factory: Factory, frame: str
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/fuzz/")
    await ws.send_to(text_data=frame)
    [error] = await ws.receive_all_json()
    text = json.dumps(error)
    assert error["action"] == "error"
    for leak in ("SELECT", "passwd", "Windows", "Traceback", ".py", "xxxxxxxx"):
        assert leak not in text
    assert len(text) < 600, "an error frame is short whatever the input"
