"""``chanx.testing``: the communicator helpers and ``WebsocketTestCase``."""

from __future__ import annotations

import asyncio
import contextlib
import unittest
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.authtoken.models import Token

from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import AuthenticationMessage
from chanx.testing import (
    WebsocketCommunicator,
    WebsocketTestCase,
    default_router,
    disconnect_quietly,
)
from tests.app.consumers import RECORDS
from tests.app.helpers import Factory, open_ws, token_header
from tests.app.messages import EchoMessage, NoteMessage, NotePayload, WhoAmIMessage
from tests.app.routing import router

PONG = {"action": "pong", "payload": None}
#: The application, for test cases defined inside test functions.
APP = router


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture(autouse=True)
def _clear_records() -> Iterator[None]:
    RECORDS.clear()
    yield
    RECORDS.clear()


async def test_receive_all_json_stops_at_complete(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/th-all/")
    await ws.send_message(PingMessage())
    await ws.send_message(EchoMessage(payload="second"))
    assert await ws.receive_all_json() == [PONG]
    assert await ws.receive_all_json() == [
        {"action": "echo_reply", "payload": "second"}
    ]
    assert await ws.receive_nothing()


@asynccontextmanager
async def unmanaged(path: str) -> AsyncIterator[WebsocketCommunicator]:
    """A communicator outside the fixtures, for tests that let a receive time out.

    A timed-out receive cancels the application; this keeps those tests
    independent of the fixtures' own cleanup, which is tested separately.
    """
    ws = WebsocketCommunicator(router, path)
    try:
        yield ws
    finally:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await ws.disconnect()


async def test_receive_all_json_timeout_is_a_helpful_assertion() -> None:
    async with unmanaged("/ws/quiet/th-timeout/") as ws:
        assert (await ws.connect())[0]
        await ws.assert_authenticated_status_ok()
        await ws.send_message(PingMessage())
        with pytest.raises(AssertionError) as info:
            await ws.receive_all_json(timeout=0.2)
    assert str(info.value) == (
        "no 'complete' frame within 0.2s; received [{'action': 'pong', 'payload': None}]"
    )


async def test_receive_until_action() -> None:
    async with unmanaged("/ws/room/th-until/") as ws:
        assert (await ws.connect())[0]
        await ws.assert_authenticated_status_ok()
        await ws.send_message(PingMessage())
        await ws.send_message(PingMessage())
        assert await ws.receive_until_action("pong") == [PONG]
        assert await ws.receive_until_action("pong", inclusive=False) == [
            {"action": "complete", "payload": None}
        ]
        assert await ws.receive_until_action("complete") == [
            {"action": "complete", "payload": None}
        ]
        with pytest.raises(AssertionError, match=r"no 'pong' frame within 0\.1s"):
            await ws.receive_until_action("pong", timeout=0.1)


async def test_disconnect_quietly_after_a_timed_out_receive() -> None:
    ws = WebsocketCommunicator(router, "/ws/quiet/th-cancel/")
    assert (await ws.connect())[0]
    with pytest.raises(AssertionError):
        await ws.receive_all_json(timeout=0.1)
    try:
        await disconnect_quietly([ws])
    except asyncio.CancelledError:
        raise AssertionError("disconnect_quietly raised CancelledError") from None


async def test_wait_for_auth_returns_the_message(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/th-auth/")
    assert (await ws.connect())[0]
    auth = await ws.wait_for_auth()
    assert isinstance(auth, AuthenticationMessage)
    assert auth.payload.status_code == 200
    assert auth.payload.status_text == "OK"


@override_settings(CHANX={"SEND_COMPLETION": True, "CAMELIZE": True})
async def test_helpers_speak_camel_case(chanx_communicator_factory: Factory) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/th-camel/")
    assert (await ws.connect())[0]
    auth = await ws.assert_authenticated_status_ok()
    assert auth.payload.status_text == "OK"
    await ws.send_message(NoteMessage(payload=NotePayload(note_text="c")))
    assert await ws.receive_all_json() == [
        {"action": "note_reply", "payload": {"noteText": "c", "isUrgent": False}}
    ]


@override_settings(
    CHANX={"SEND_COMPLETION": True, "SEND_AUTHENTICATION_MESSAGE": False}
)
async def test_wait_for_auth_follows_the_setting(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/room/th-noauth/")
    assert (await ws.connect())[0]
    assert await ws.wait_for_auth() is None
    assert await ws.receive_nothing()


async def test_assert_authenticated_status_ok_fails_on_403(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/session/th-403/")
    assert (await ws.connect())[0]
    with pytest.raises(AssertionError) as info:
        await ws.assert_authenticated_status_ok()
    assert "authentication failed with 403" in str(info.value)
    assert "Authentication credentials were not provided." in str(info.value)


async def test_assert_closed_checks_the_code(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await chanx_communicator_factory(path="/ws/session/th-closed/")
    assert (await ws.connect())[0]
    # The authentication frame before the close is skipped.
    assert await ws.assert_closed(code=4403) == 4403

    other = await chanx_communicator_factory(path="/ws/session/th-closed2/")
    assert (await other.connect())[0]
    with pytest.raises(AssertionError, match="closed with 4403, expected 4000"):
        await other.assert_closed(code=4000)


def test_default_router_is_the_websocket_app_of_asgi_application() -> None:
    with override_settings(ASGI_APPLICATION="tests.app.asgi.application"):
        assert default_router() is router
    with override_settings(ASGI_APPLICATION="tests.app.routing.router"):
        assert default_router() is router


@pytest.mark.django_db(transaction=True)
def test_websocket_test_case_disconnects_after_each_async_test() -> None:
    class Inner(WebsocketTestCase):
        router = APP
        ws_path = "/ws/lifecycle/th-inner/"

        async def test_left_open(self) -> None:
            await self.auth_communicator.connect()
            await self.auth_communicator.assert_authenticated_status_ok()
            RECORDS.append(("test_done", "left_open"))

        async def test_fails_while_open(self) -> None:
            await self.auth_communicator.connect()
            await self.auth_communicator.assert_authenticated_status_ok()
            RECORDS.append(("test_done", "fails_while_open"))
            raise AssertionError("inner failure")

    result = unittest.TestResult()
    for name in ("test_left_open", "test_fails_while_open"):
        Inner(name)(result)
    assert result.errors == []
    assert [str(test) for test, _ in result.failures] == [
        str(Inner("test_fails_while_open"))
    ]
    # Each test's connection was closed by the test case, right after the test.
    assert [r for r in RECORDS if r[0] != "in_groups_at_post_authentication"] == [
        ("test_done", "left_open"),
        ("disconnect", 1000),
        ("test_done", "fails_while_open"),
        ("disconnect", 1000),
    ]


class WebsocketTestCaseTests(WebsocketTestCase):
    router = router
    ws_path = "/ws/token/th-case/"

    def setUp(self) -> None:
        super().setUp()
        user = User.objects.create_user("carol")
        self.token = Token.objects.create(user=user).key

    def get_ws_headers(self) -> list[tuple[bytes, bytes]]:
        return token_header(self.token)

    async def test_auth_communicator_uses_path_and_headers(self) -> None:
        ws = self.auth_communicator
        assert ws is self.auth_communicator
        connected, _ = await ws.connect()
        assert connected
        await ws.assert_authenticated_status_ok()
        await ws.send_message(WhoAmIMessage())
        [identity] = await ws.receive_all_json()
        assert identity["payload"]["user"] == "carol"
        assert identity["payload"]["kwargs"] == {"room": "th-case"}

    async def test_create_communicator_overrides(self) -> None:
        ws = self.create_communicator(ws_path="/ws/token/th-case2/", headers=[])
        assert (await ws.connect())[0]
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_websocket_test_case_reports_the_helpers_assertion() -> None:
    class Inner(WebsocketTestCase):
        router = APP
        ws_path = "/ws/quiet/th-inner-timeout/"

        async def test_times_out(self) -> None:
            await self.auth_communicator.connect()
            await self.auth_communicator.assert_authenticated_status_ok()
            await self.auth_communicator.send_message(PingMessage())
            await self.auth_communicator.receive_all_json(timeout=0.1)

    result = unittest.TestResult()
    Inner("test_times_out")(result)
    assert result.errors == []
    [(_, report)] = result.failures
    assert "no 'complete' frame within 0.1s" in report
