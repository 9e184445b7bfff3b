"""Incoming frames: dispatch, client-safe error frames, ordering."""

from __future__ import annotations

from typing import Any

import pytest

from chanx.messages.base import BaseMessage
from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import SECRET
from tests.app.helpers import Factory, frame_text, open_ws
from tests.app.messages import (
    AddMessage,
    AddPayload,
    EchoMessage,
    NoteMessage,
    NotePayload,
)
from tests.app.routing import router

#: Put into bad frames; an error frame must never echo it back.
MARK = "ZQX-attacker-controlled"


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture
async def ws(chanx_communicator_factory: Factory) -> WebsocketCommunicator:
    return await open_ws(chanx_communicator_factory, "/ws/room/incoming/")


async def assert_still_serving(ws: WebsocketCommunicator) -> None:
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (PingMessage(), {"action": "pong", "payload": None}),
        (EchoMessage(payload="hello"), {"action": "echo_reply", "payload": "hello"}),
        (AddMessage(payload=AddPayload(a=2, b=40)), {"action": "sum", "payload": 42}),
        (
            NoteMessage(payload=NotePayload(note_text="n")),
            {"action": "note_reply", "payload": {"note_text": "n", "is_urgent": False}},
        ),
    ],
)
async def test_valid_message_reaches_its_handler(
    ws: WebsocketCommunicator, message: BaseMessage, expected: dict[str, Any]
) -> None:
    await ws.send_message(message)
    assert await ws.receive_all_json() == [expected]


async def test_payload_is_coerced_to_the_declared_model(
    ws: WebsocketCommunicator,
) -> None:
    await ws.send_to(text_data='{"action": "add", "payload": {"a": "2", "b": 3}}')
    assert await ws.receive_all_json() == [{"action": "sum", "payload": 5}]


@pytest.mark.parametrize(
    ("text", "expected_type", "expected_loc"),
    [
        ('{"action": "echo", "payload": "' + MARK, "json_invalid", []),
        ("[" * 1000, "json_too_deep", []),
        (f'["{MARK}"]', "frame_type", []),
        ("42", "frame_type", []),
        ("null", "frame_type", []),
        (f'"{MARK}"', "frame_type", []),
        (f'{{"action": "{MARK}"}}', "unknown_action", ["action"]),
        (f'{{"action": ["{MARK}"]}}', "unknown_action", ["action"]),
        (f'{{"payload": "{MARK}"}}', "missing", ["action"]),
        (
            f'{{"action": "add", "payload": {{"a": "{MARK}", "b": 2}}}}',
            "int_parsing",
            ["payload", "a"],
        ),
        (
            f'{{"action": "echo", "payload": {{"{MARK}": "{MARK}"}}}}',
            "string_type",
            ["payload"],
        ),
    ],
    ids=[
        "invalid-json",
        "too-deep",
        "list",
        "number",
        "null",
        "string",
        "unknown-action",
        "unhashable-action",
        "missing-action",
        "wrong-field-type",
        "wrong-payload-type",
    ],
)
async def test_bad_frame_gets_one_safe_error_frame(
    ws: WebsocketCommunicator,
    text: str,
    expected_type: str,
    expected_loc: list[str],
) -> None:
    await ws.send_to(text_data=text)
    frames = await ws.receive_all_json()
    assert len(frames) == 1, frames
    [error] = frames
    assert error["action"] == "error"
    assert isinstance(error["payload"], list)
    assert error["payload"], "the error frame lists at least one problem"
    for entry in error["payload"]:
        assert set(entry) == {"type", "loc", "msg"}
    assert error["payload"][0]["type"] == expected_type
    assert error["payload"][0]["loc"] == expected_loc
    assert MARK not in frame_text(error)
    await assert_still_serving(ws)


async def test_several_field_errors_are_listed_together(
    ws: WebsocketCommunicator,
) -> None:
    await ws.send_to(text_data='{"action": "add", "payload": {"a": "x"}}')
    [error] = await ws.receive_all_json()
    assert sorted(e["loc"][-1] for e in error["payload"]) == ["a", "b"]


async def test_unknown_action_lists_what_is_allowed(ws: WebsocketCommunicator) -> None:
    await ws.send_to(text_data='{"action": "nope"}')
    [error] = await ws.receive_all_json()
    message = error["payload"][0]["msg"]
    assert message.startswith("Expected one of: ")
    assert "'ping'" in message
    assert "'echo'" in message
    assert "nope" not in message


async def test_binary_frame_gets_error_frame(ws: WebsocketCommunicator) -> None:
    await ws.send_to(bytes_data=b'{"action": "ping"}')
    [error] = await ws.receive_all_json()
    assert error == {
        "action": "error",
        "payload": [
            {
                "type": "frame_binary",
                "loc": [],
                "msg": "Binary frames are not supported; send JSON text",
            }
        ],
    }
    await assert_still_serving(ws)


async def test_handler_exception_sends_generic_error(
    ws: WebsocketCommunicator,
) -> None:
    await ws.send_to(text_data='{"action": "fail"}')
    frames = await ws.receive_all_json()
    assert frames == [
        {"action": "error", "payload": {"detail": "Failed to process message"}}
    ]
    assert SECRET not in frame_text(frames)
    assert "Traceback" not in frame_text(frames)
    await assert_still_serving(ws)


async def test_messages_are_handled_in_order(ws: WebsocketCommunicator) -> None:
    for i in range(20):
        await ws.send_message(EchoMessage(payload=f"m{i}"))
    replies = [await ws.receive_all_json() for _ in range(20)]
    assert replies == [
        [{"action": "echo_reply", "payload": f"m{i}"}] for i in range(20)
    ]
