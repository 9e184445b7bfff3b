"""What every chanx consumer has: class options, per-connection state, sending.

The handshake, group messaging and channel events build on this in their own
modules; :mod:`chanx.generic.websocket` puts them together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db.models import QuerySet

from chanx.codec import utf8_size
from chanx.config import ConsumerConfig, resolve_config
from chanx.db import closer
from chanx.errors import ErrorDetail
from chanx.hooks import ConnectionInfo, ConsumerHooks, as_safe, get_hooks
from chanx.messages.base import BaseMessage
from chanx.messages.outgoing import CompleteMessage, ErrorMessage
from chanx.schema import UNKNOWN, ConsumerSchema

__all__ = ["AuthState", "ConsumerBase"]

AuthState = Literal["pending", "ok", "failed"]


def resolve_hooks(consumer: type[Any]) -> ConsumerHooks:
    """The class's own ``hooks`` (made failsafe), else the installed default."""
    own: ConsumerHooks | None = consumer.hooks
    return as_safe(own) if own is not None else get_hooks()


class ConsumerBase(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Options, per-connection state and the send path of a chanx consumer."""

    # DRF-style authentication; None means DRF's configured defaults.
    authentication_classes: Sequence[type[Any]] | None = None
    permission_classes: Sequence[type[Any]] | None = None
    queryset: QuerySet[Any] | None = None
    auth_method: str = "get"
    lookup_field: str = "pk"
    lookup_url_kwarg: str | None = None

    # Behaviour flags; None means the CHANX setting.
    send_completion: bool | None = None
    send_message_immediately: bool | None = None
    send_authentication_message: bool | None = None
    log_received_message: bool | None = None
    log_sent_message: bool | None = None
    log_ignored_actions: Iterable[str] | None = None

    #: Telemetry for this class; None means the installed default.
    hooks: ClassVar[ConsumerHooks | None] = None

    groups: list[str]
    user: Any
    request: Any
    obj: Any
    conn: ConnectionInfo
    logger: Any

    _chanx_schema: ClassVar[ConsumerSchema | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._chanx_schema is None:
            raise TypeError(
                f"{type(self).__name__} is generic; subclass it with concrete types"
            )
        self.schema: ConsumerSchema = self._chanx_schema
        self.config: ConsumerConfig = resolve_config(type(self))
        # Copied: appending to self.groups must not change the class attribute.
        self.groups = list(type(self).groups or [])
        self.user = None
        self.request = None
        self.obj = None
        self._auth_state: AuthState = "pending"
        self._joined: list[str] = []
        self._hooks = resolve_hooks(type(self))

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route an ASGI or channel-layer message to its handler method.

        Unlike Channels, stale DB connections are closed at most once per
        ``CLOSE_OLD_CONNECTIONS_INTERVAL`` instead of before every frame.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await closer.maybe_close(self.config.close_old_connections_interval)
        await handler(message)

    async def send_message(self, message: BaseMessage) -> None:
        """Send a message to this connection's client."""
        await self._send_frame(message.model_dump(mode="json"), str(message.action))

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        """Send raw JSON to the client (through the codec: action key, camelCase)."""
        await self._send_frame(content, UNKNOWN)
        if close:
            await self.close()

    async def send_errors(self, errors: list[ErrorDetail]) -> None:
        """Send one ``error`` frame listing ``errors`` (``loc`` in wire key names)."""
        payload = self.config.codec.wire_errors(errors)
        await self.send_message(ErrorMessage(payload=payload))

    async def _send_frame(self, data: dict[str, Any], action: str) -> None:
        text = self.config.codec.encode(data)
        await self.send(text_data=text)
        self._hooks.message_sent(self.conn, action, utf8_size(text))
        config = self.config
        if config.log_sent_message and action not in config.log_ignored_actions:
            self.logger.info("message_sent", action=action)
        if config.send_message_immediately:
            # Lets the server flush this frame before the handler goes on.
            await asyncio.sleep(0)

    async def _complete(self) -> None:
        if self.config.send_completion:
            await self.send_message(CompleteMessage())
