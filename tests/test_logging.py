"""Structured logs: message_received / message_sent and their switches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from channels.routing import URLRouter
from django.test import override_settings
from django.urls import path
from structlog.testing import capture_logs

from chanx.messages.incoming import PingMessage
from tests.app.consumers import SECRET, RoomConsumer, TokenOnlyConsumer
from tests.app.helpers import Factory, make_user, open_ws, token_header
from tests.app.messages import EchoMessage, FailMessage


class IgnoringConsumer(RoomConsumer):
    log_ignored_actions = ["ping", "pong"]


class SilentConsumer(RoomConsumer):
    log_received_message = False
    log_sent_message = False


class VerboseConsumer(RoomConsumer):
    log_received_message = True
    log_sent_message = True


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter(
        [
            path("room/<str:room>/", RoomConsumer.as_asgi()),
            path("ignoring/<str:room>/", IgnoringConsumer.as_asgi()),
            path("silent/<str:room>/", SilentConsumer.as_asgi()),
            path("verbose/<str:room>/", VerboseConsumer.as_asgi()),
            path("token/<str:room>/", TokenOnlyConsumer.as_asgi()),
        ]
    )


def entries(logs: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == event]


def actions(logs: Sequence[Mapping[str, Any]], event: str) -> list[str]:
    return [e["action"] for e in entries(logs, event)]


async def test_received_and_sent_messages_are_logged_with_context(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "room/log-1/")
        await ws.send_message(PingMessage())
        assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    [received] = entries(logs, "message_received")
    assert received["action"] == "ping"
    assert received["consumer"] == "RoomConsumer"
    assert received["path"] == "room/log-1/"
    assert received["log_level"] == "info"
    assert isinstance(received["connection_id"], str)
    assert received["connection_id"]
    assert actions(logs, "message_sent") == ["authentication", "pong", "complete"]
    for sent in entries(logs, "message_sent"):
        assert sent["connection_id"] == received["connection_id"]
        assert sent["consumer"] == "RoomConsumer"
        assert sent["path"] == "room/log-1/"


async def test_each_connection_has_its_own_connection_id(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        await open_ws(chanx_communicator_factory, "room/log-a/")
        await open_ws(chanx_communicator_factory, "room/log-b/")
    ids = {e["path"]: e["connection_id"] for e in entries(logs, "message_sent")}
    assert len(ids) == 2
    assert ids["room/log-a/"] != ids["room/log-b/"]


async def test_ignored_actions_are_not_logged(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "ignoring/log-ign/")
        await ws.send_message(PingMessage())
        await ws.receive_all_json()
        await ws.send_message(EchoMessage(payload="kept"))
        await ws.receive_all_json()
    assert actions(logs, "message_received") == ["echo"]
    assert "pong" not in actions(logs, "message_sent")
    assert "echo_reply" in actions(logs, "message_sent")


async def test_switched_off_logs_nothing_about_messages(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "silent/log-off/")
        await ws.send_message(EchoMessage(payload="quiet"))
        assert await ws.receive_all_json() == [
            {"action": "echo_reply", "payload": "quiet"}
        ]
    assert entries(logs, "message_received") == []
    assert entries(logs, "message_sent") == []
    # Other events still are.
    assert entries(logs, "connection_authenticated")


async def test_settings_switch_logging_off(chanx_communicator_factory: Factory) -> None:
    chanx = {
        "SEND_COMPLETION": True,
        "LOG_RECEIVED_MESSAGE": False,
        "LOG_SENT_MESSAGE": False,
    }
    with override_settings(CHANX=chanx), capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "room/log-setting/")
        await ws.send_message(PingMessage())
        await ws.receive_all_json()
        verbose = await open_ws(chanx_communicator_factory, "verbose/log-setting/")
        await verbose.send_message(PingMessage())
        await verbose.receive_all_json()
    # Only the consumer whose class attributes switch logging on logs.
    assert {e["consumer"] for e in entries(logs, "message_received")} == {
        "VerboseConsumer"
    }
    assert {e["consumer"] for e in entries(logs, "message_sent")} == {"VerboseConsumer"}


async def test_handler_exception_is_logged_with_traceback(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "room/log-fail/")
        await ws.send_message(FailMessage())
        await ws.receive_all_json()
    [failure] = entries(logs, "message_handler_failed")
    assert failure["log_level"] == "error"
    assert failure["exc_info"] is True
    assert failure["action"] == "fail"
    assert failure["consumer"] == "RoomConsumer"


async def test_rejected_frames_are_logged_without_their_content(
    chanx_communicator_factory: Factory,
) -> None:
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "room/log-bad/")
        await ws.send_to(text_data=f'{{"action": "echo", "payload": ["{SECRET}"]}}')
        await ws.receive_all_json()
    [rejected] = entries(logs, "message_rejected")
    assert rejected["error_type"] == "validation"
    assert rejected["errors"] == 1
    assert SECRET not in repr(logs)


@pytest.mark.django_db(transaction=True)
async def test_lifecycle_events_and_the_user_id_switch(
    chanx_communicator_factory: Factory,
) -> None:
    _, token = await make_user("logged-user")
    headers = token_header(token)
    with capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "token/lifecycle/", headers)
        await ws.disconnect()
    opened, authenticated, closed = (
        entries(logs, name)
        for name in (
            "connection_opened",
            "connection_authenticated",
            "connection_closed",
        )
    )
    assert opened[0]["route"] == "token/<room>/"
    assert authenticated[0]["user_id"]
    assert closed[0]["code"] == 1000
    hidden = {"SEND_COMPLETION": True, "TELEMETRY": {"LOG_USER_ID": False}}
    with override_settings(CHANX=hidden), capture_logs() as logs:
        ws = await open_ws(chanx_communicator_factory, "token/lifecycle/", headers)
        await ws.disconnect()
    assert all("user_id" not in entry for entry in logs)
    assert entries(logs, "connection_authenticated")
