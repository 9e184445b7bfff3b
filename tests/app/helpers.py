"""Small helpers shared by the test modules."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from chanx.codec import plain_json
from chanx.groups import build_group_payload
from chanx.testing import WebsocketCommunicator

Factory = Callable[..., Awaitable[WebsocketCommunicator]]
Headers = list[tuple[bytes, bytes]]


async def open_ws(
    factory: Factory, path: str, headers: Headers | None = None
) -> WebsocketCommunicator:
    """Connect with ``factory`` and wait for a successful authentication frame."""
    communicator = await factory(path=path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected, f"handshake to {path} refused"
    await communicator.assert_authenticated_status_ok()
    return communicator


async def open_rejected(
    factory: Factory, path: str, headers: Headers | None = None
) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """Connect, return the communicator and the authentication frame."""
    communicator = await factory(path=path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected, f"handshake to {path} refused before authentication"
    frame = await communicator.receive_frame()
    assert frame["action"] == "authentication", frame
    return communicator, frame


def _make_user(username: str) -> tuple[User, str]:
    user = User.objects.create_user(username=username, password="pw-" + username)
    token = Token.objects.create(user=user)
    return user, token.key


async def make_user(username: str) -> tuple[User, str]:
    """Create a user with an API token; returns the user and the token key."""
    return await sync_to_async(_make_user)(username)


def token_header(key: str) -> Headers:
    """DRF ``TokenAuthentication`` credentials."""
    return [(b"authorization", f"Token {key}".encode())]


async def raw_group_send(group: str, content: dict[str, Any]) -> None:
    """Publish a chanx group message from outside any consumer."""
    layer = get_channel_layer()
    assert layer is not None
    payload = build_group_payload(
        plain_json(content),
        action=content.get("action"),
        kind="message",
        exclude_current=True,
        from_channel="outside.channel",
        from_user_pk=None,
        meta={},
    )
    await layer.group_send(group, payload)


def group_members(group: str) -> set[str]:
    """Channels currently in ``group`` on the in-memory channel layer."""
    layer = get_channel_layer()
    assert layer is not None
    return set(layer.groups.get(group, {}))


def frame_text(frame: Any) -> str:
    """A frame as text, to search for strings that must not leak."""
    return json.dumps(frame)
