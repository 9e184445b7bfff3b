"""The DRF bridge: authenticators, permissions and object lookups on the handshake."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from chanx.codec import plain_json
from chanx.groups import build_group_payload
from chanx.testing import WebsocketCommunicator, WebsocketTestCase
from tests.app.consumers import CHANNELS, SECRET, SessionOnlyConsumer
from tests.app.helpers import (
    Factory,
    frame_text,
    group_members,
    open_rejected,
    open_ws,
    raw_group_send,
    token_header,
)
from tests.app.messages import NotifyEvent, NotifyPayload, WhoAmIMessage
from tests.app.routing import CLIENT_ADDRESS, router


@pytest.fixture
def chanx_router() -> Any:
    return router


async def whoami(ws: WebsocketCommunicator) -> dict[str, Any]:
    await ws.send_message(WhoAmIMessage())
    [frame] = await ws.receive_all_json()
    assert frame["action"] == "identity"
    payload: dict[str, Any] = frame["payload"]
    return payload


# Without credentials (no database) --------------------------------------------


async def test_session_only_without_credentials_is_403(
    chanx_communicator_factory: Factory,
) -> None:
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/session/s/")
    assert frame["payload"] == {
        "status_code": 403,
        "status_text": "Forbidden",
        "data": {"detail": "Authentication credentials were not provided."},
    }
    await ws.assert_closed(code=4403)


async def test_token_only_without_credentials_is_401(
    chanx_communicator_factory: Factory,
) -> None:
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/token/t/")
    assert frame["payload"]["status_code"] == 401
    assert frame["payload"]["status_text"] == "Unauthorized"
    await ws.assert_closed(code=4401)


async def test_url_kwargs_without_queryset_authenticate(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/kw-42/")
    identity = await whoami(ws)
    assert identity["kwargs"] == {"room": "kw-42"}
    assert identity["obj"] is None
    assert identity["authenticated"] is False


async def test_request_is_drf_request_with_client_address(
    chanx_communicator_factory: Factory,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/addr/")
    identity = await whoami(ws)
    assert identity["request_class"] == "rest_framework.request.Request"
    assert identity["remote_addr"] == CLIENT_ADDRESS[0]


async def test_exploding_authenticator_gives_generic_500(
    chanx_communicator_factory: Factory,
) -> None:
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/broken-auth/b/")
    assert frame["payload"] == {
        "status_code": 500,
        "status_text": "Internal Server Error",
        "data": {"detail": "Internal server error"},
    }
    assert SECRET not in frame_text(frame)
    assert "Traceback" not in frame_text(frame)
    await ws.assert_closed(code=4500)


@pytest.mark.parametrize("stage", ["broken-groups", "broken-post-auth"])
async def test_failure_while_starting_session_gives_500_and_no_groups(
    chanx_communicator_factory: Factory, stage: str
) -> None:
    CHANNELS.clear()
    ws, frame = await open_rejected(chanx_communicator_factory, f"/ws/{stage}/x/")
    assert frame["payload"]["status_code"] == 500
    assert frame["payload"]["data"] == {"detail": "Internal server error"}
    assert SECRET not in frame_text(frame)
    await ws.assert_closed(code=4500)
    assert CHANNELS[-1] not in group_members("room_x")
    await raw_group_send("room_x", {"action": "chat_group", "payload": "late"})
    assert await ws.receive_nothing()


async def test_failed_connection_never_gets_group_messages_or_events(
    chanx_communicator_factory: Factory,
) -> None:
    CHANNELS.clear()
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/session/f/")
    assert frame["payload"]["status_code"] == 403
    await ws.assert_closed(code=4403)
    channel = CHANNELS[-1]
    assert channel not in group_members("secure_lobby")

    # Through its groups...
    await raw_group_send("secure_lobby", {"action": "chat_group", "payload": "no"})
    await SessionOnlyConsumer.asend_channel_event(
        "secure_lobby", NotifyEvent(payload=NotifyPayload(content="no"))
    )
    # ...and straight to its channel.
    layer = get_channel_layer()
    assert layer is not None
    await layer.send(
        channel,
        build_group_payload(
            plain_json({"action": "chat_group", "payload": "no"}),
            action="chat_group",
            kind="message",
            exclude_current=True,
            from_channel="elsewhere",
            from_user_pk=None,
            meta={},
        ),
    )
    await layer.send(
        channel,
        {
            "type": "chanx.channel_event",
            "event": {"handler": "notify", "payload": {"content": "no"}},
        },
    )
    # Frames from the client are ignored too.
    await ws.send_message(WhoAmIMessage())
    assert await ws.receive_nothing(timeout=0.3)


# With users in the database ----------------------------------------------------


class AuthenticatedHandshakeTests(WebsocketTestCase):
    router = router

    def setUp(self) -> None:
        super().setUp()
        self.alice = User.objects.create_user("alice", password="pw-alice")
        self.bob = User.objects.create_user("bob", password="pw-bob")
        self.alice_token = Token.objects.create(user=self.alice).key

    async def open(self, path: str, headers: Any = None) -> WebsocketCommunicator:
        ws = self.create_communicator(ws_path=path, headers=headers)
        connected, _ = await ws.connect()
        assert connected
        return ws

    async def test_valid_token_header_authenticates_user(self) -> None:
        ws = await self.open("/ws/token/t/", token_header(self.alice_token))
        await ws.assert_authenticated_status_ok()
        identity = await whoami(ws)
        assert identity["user"] == "alice"
        assert identity["authenticated"] is True

    async def test_invalid_token_is_401(self) -> None:
        ws = await self.open("/ws/token/t/", token_header("0" * 40))
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 401
        assert auth.payload.data == {"detail": "Invalid token."}
        await ws.assert_closed(code=4401)

    async def test_query_string_token_authenticates_user(self) -> None:
        ws = await self.open(f"/ws/query-token/q/?token={self.alice_token}")
        await ws.assert_authenticated_status_ok()
        assert (await whoami(ws))["user"] == "alice"

    async def test_query_string_without_token_is_refused(self) -> None:
        ws = await self.open("/ws/query-token/q/?other=1")
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 403
        await ws.assert_closed(code=4403)

    def session_cookie(self, user: User) -> list[tuple[bytes, bytes]]:
        self.client.force_login(user)
        key = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())]

    async def test_session_cookie_through_auth_middleware_authenticates(self) -> None:
        headers = await sync_to_async(self.session_cookie)(self.bob)
        ws = await self.open("/ws/session/s/", headers)
        await ws.assert_authenticated_status_ok()
        assert (await whoami(ws))["user"] == "bob"

    async def test_unknown_session_cookie_is_403(self) -> None:
        headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}=nosuchkey".encode())]
        ws = await self.open("/ws/session/s/", headers)
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 403
        await ws.assert_closed(code=4403)

    async def test_object_found_and_allowed_sets_obj(self) -> None:
        path = f"/ws/users/{self.alice.pk}/"
        ws = await self.open(path, token_header(self.alice_token))
        await ws.assert_authenticated_status_ok()
        identity = await whoami(ws)
        assert identity["obj"] == self.alice.pk
        assert identity["user"] == "alice"

    async def test_object_not_found_is_404(self) -> None:
        ws = await self.open("/ws/users/999999/", token_header(self.alice_token))
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 404
        assert auth.payload.data == {"detail": "Not found."}
        await ws.assert_closed(code=4404)

    async def test_object_permission_denied_is_403(self) -> None:
        path = f"/ws/users/{self.bob.pk}/"
        ws = await self.open(path, token_header(self.alice_token))
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 403
        await ws.assert_closed(code=4403)

    async def test_object_route_without_credentials_is_401(self) -> None:
        ws = await self.open(f"/ws/users/{self.alice.pk}/")
        auth = await ws.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 401
        await ws.assert_closed(code=4401)
