"""What every chanx consumer has: class options, per-connection state, sending.

The handshake, group messaging and channel events build on this in their own
modules; :mod:`chanx.generic.websocket` puts them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import Awaitable, Generator, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import structlog
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db.models import QuerySet

from chanx.codec import utf8_size
from chanx.config import ConsumerConfig, resolve_config
from chanx.db import closer
from chanx.dispatch import dispatch_messages
from chanx.drain import register, unregister
from chanx.errors import ErrorDetail
from chanx.faults import (
    CLIENT_GONE_CODE,
    SEND_TIMEOUT_CLOSE_CODE,
    ConnectionDropped,
    seconds_setting,
    within,
)
from chanx.hooks import ConnectionInfo, ConsumerHooks, as_safe, get_hooks
from chanx.limits import connection_slots
from chanx.messages.base import BaseMessage
from chanx.messages.outgoing import CompleteMessage, ErrorMessage
from chanx.schema import UNKNOWN, ConsumerSchema

__all__ = ["AuthState", "ConsumerBase"]

AuthState = Literal["pending", "ok", "failed"]

_log = structlog.get_logger("chanx.consumer")


@types.coroutine
def pass_turn() -> Generator[None, None, None]:
    """What ``await asyncio.sleep(0)`` does (the task yields to the loop once),
    without building the ``sleep`` coroutine: once per frame sent."""
    yield


# Handler names by message type: a few types (websocket.receive, the group
# and event types) arrive on every connection; the cap guards odd senders.
_handler_names: dict[str, str] = {}
_MAX_HANDLER_NAMES = 256


def _handler_name(message: dict[str, Any]) -> str:
    """Channels' ``get_handler_name(message)``, remembered per type."""
    kind = message.get("type")
    name = _handler_names.get(kind) if kind.__class__ is str else None
    if name is None:
        name = get_handler_name(message)  # raises for a malformed type
        if kind.__class__ is str and len(_handler_names) < _MAX_HANDLER_NAMES:
            _handler_names[kind] = name
    return name


def sends_like_channels(consumer: type[Any]) -> bool:
    """Whether ``consumer.send`` is Channels' own, down to ``base_send``."""
    owners = [klass for klass in consumer.__mro__ if "send" in vars(klass)]
    return owners == [AsyncWebsocketConsumer, AsyncConsumer]


def resolve_hooks(consumer: type[Any]) -> ConsumerHooks:
    """The class's own ``hooks`` (made failsafe), else the installed default."""
    own: ConsumerHooks | None = consumer.hooks
    return as_safe(own) if own is not None else get_hooks()


class ConsumerBase(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Options, per-connection state and the send path of a chanx consumer."""

    # Per-connection state in slots, out of the instance dict: with many
    # handshakes in flight, CPython (3.11) often gives each instance its own
    # full dict instead of the class's shared keys, ~0.8 KB per connection.
    # The dict stays for Channels' ``groups`` and subclasses' own attributes.
    __slots__ = (
        "_auth_state",
        "_closing",
        "_guard",
        "_handling",
        "_holds_slot",
        "_hooks",
        "_joined",
        "_send_timeout",
        "base_send",
        "channel_layer",
        "channel_name",
        "config",
        "conn",
        "logger",
        "obj",
        "request",
        "schema",
        "scope",
        "user",
    )

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

    # Input limits (chanx.limits); None means the CHANX setting, 0/False: off.
    max_frame_bytes: int | None = None
    max_json_depth: int | None = None
    rate_limit: Mapping[str, Any] | Literal[False] | None = None

    #: Telemetry for this class; None means the installed default.
    hooks: ClassVar[ConsumerHooks | None] = None

    groups: list[str]
    user: Any
    request: Any
    obj: Any
    conn: ConnectionInfo
    logger: Any

    _chanx_schema: ClassVar[ConsumerSchema | None] = None
    # Whether frames may go to base_send directly (see _sending).
    _chanx_direct_send: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._chanx_direct_send = sends_like_channels(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._chanx_schema is None:
            raise TypeError(
                f"{type(self).__name__} is generic; subclass it with concrete types"
            )
        self.schema: ConsumerSchema = self._chanx_schema
        self.config: ConsumerConfig = resolve_config(type(self))
        # Copied: appending to self.groups must not change the class attribute.
        # In the instance dict Channels' base class provides, not a slot.
        self.groups = list(type(self).groups or [])  # type: ignore[misc]
        self.user = None
        self.request = None
        self.obj = None
        self._auth_state: AuthState = "pending"
        self._joined: list[str] = []
        self._hooks = resolve_hooks(type(self))
        self._send_timeout = seconds_setting("SEND_TIMEOUT")
        # Held while a message is handled, so a graceful close waits for it.
        self._handling = asyncio.Lock()
        self._closing = False
        self._guard = self.config.limits.guard()
        #: Whether this connection counts against ``MAX_CONNECTIONS``.
        self._holds_slot = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the connection: Channels' dispatch loop, fault-tolerant.

        Unlike Channels, a channel-layer receive error does not end the
        connection (see :func:`chanx.faults.receive_from_layer`), ending
        the connection loses no other connection's message
        (:mod:`chanx.dispatch`), a client that stops reading is dropped
        (``SEND_TIMEOUT``), and the consumer is registered for graceful
        shutdown (:mod:`chanx.drain`).
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
        register(self)
        try:
            await dispatch_messages(self, receive)
        except StopConsumer:
            pass
        except ConnectionDropped as dropped:
            await self._end_dropped(dropped.code)
        finally:
            unregister(self)
            # Also when the connection ends without websocket_disconnect (an
            # exception escaped a handler): a leaked slot would be lost for good.
            self._release_slot()

    def _release_slot(self) -> None:
        """Give back the ``MAX_CONNECTIONS`` slot (once; safe to call again)."""
        if self._holds_slot:
            self._holds_slot = False
            connection_slots.release()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route an ASGI or channel-layer message to its handler method.

        Unlike Channels, stale DB connections are closed at most once per
        ``CLOSE_OLD_CONNECTIONS_INTERVAL`` instead of before every frame.
        """
        handler = getattr(self, _handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        # A check before a coroutine: most frames have nothing to close.
        if closer.due(self.config.close_old_connections_interval):
            await closer.close()
        # async with, without its two coroutines per message.
        handling = self._handling
        await handling.acquire()
        try:
            if self._closing and message["type"] != "websocket.disconnect":
                # Draining or dropped: what arrived after the close would
                # answer into a closed socket. The client reconnects.
                self._any_logger().info(
                    "message_skipped", reason="closing", type=message["type"]
                )
                return
            await handler(message)
        finally:
            handling.release()

    def _any_logger(self) -> Any:
        """The connection's bound logger, or the module's before the handshake bound it."""
        return getattr(self, "logger", _log)

    async def close(
        self, code: int | bool | None = None, reason: str | None = None
    ) -> None:
        """Close the connection from the server, as Channels does.

        A client that already left is not an error: uvicorn raises
        ``ClientDisconnected`` (an ``OSError``) for the close frame, and
        there is nothing left to close.
        """
        try:
            await super().close(code, reason)
        except OSError:
            self._any_logger().info("client_gone", phase="close")

    async def close_gracefully(self, code: int) -> None:
        """Close with ``code`` once the message being handled is finished."""
        async with self._handling:
            if not self._closing:
                self._closing = True
                await self.close(code)

    def joined_groups(self) -> list[str]:
        """The channel-layer groups this connection is in (to re-join after an outage)."""
        extra = self.groups if self._auth_state == "ok" else []
        return list(dict.fromkeys([*self._joined, *extra]))

    async def send_message(self, message: BaseMessage) -> None:
        """Send a message to this connection's client."""
        text = self.config.codec.encode_message(message)
        await self._send_encoded(text, str(message.action))

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
        await self._send_encoded(self.config.codec.encode(data), action)

    async def _send_encoded(self, text: str, action: str) -> None:
        if self._closing:
            # E.g. a background task of the consumer's; uvicorn would raise.
            self._any_logger().info("frame_not_sent", reason="closing", action=action)
            return
        # uvicorn waits while the socket's write buffer is full, i.e. while the
        # client does not read. Unbounded, the connection would linger while
        # the channel layer drops what no longer fits its per-channel
        # capacity, unnoticed; a drop (4408) tells the client to resync.
        try:
            await within(self._sending(text), self._send_timeout)
        except (TimeoutError, OSError) as exc:
            raise self._dropped(exc) from None
        self._hooks.message_sent(self.conn, action, utf8_size(text))
        config = self.config
        if config.log_sent_message and action not in config.log_ignored_actions:
            self.logger.info("message_sent", action=action)
        if config.send_message_immediately:
            # Lets the server flush this frame before the handler goes on.
            await pass_turn()

    def _sending(self, text: str) -> Awaitable[None]:
        """What sends ``text`` to the client, to be awaited."""
        if self._chanx_direct_send and "send" not in self.__dict__:
            # What Channels' send() passes on, without its two coroutines:
            # on every frame's path. A class or instance with its own send()
            # goes through it.
            sending: Awaitable[None] = self.base_send(
                {"type": "websocket.send", "text": text}
            )
            return sending
        return self.send(text_data=text)  # type: ignore[no-any-return]

    def _dropped(self, exc: BaseException) -> ConnectionDropped:
        """The drop a failed send (timeout or a gone client) ends the connection with."""
        if isinstance(exc, TimeoutError):
            self.logger.warning("slow_client_dropped", timeout=self._send_timeout)
            return ConnectionDropped(SEND_TIMEOUT_CLOSE_CODE)
        # The client left while we were answering (uvicorn raises
        # ClientDisconnected): its disconnect is news, not a handler bug.
        self.logger.info("client_gone")
        return ConnectionDropped(CLIENT_GONE_CODE)

    async def _end_dropped(self, code: int) -> None:
        # The close frame waits for the same full buffer: try briefly, then
        # end anyway; uvicorn closes the socket once the app returns.
        if not self._closing:
            self._closing = True
            if code != CLIENT_GONE_CODE:
                with contextlib.suppress(TimeoutError, OSError):
                    await within(self.close(code), 1.0)
        with contextlib.suppress(StopConsumer):
            await self.websocket_disconnect(
                {"type": "websocket.disconnect", "code": code}
            )

    async def _complete(self) -> None:
        if self.config.send_completion:
            await self.send_message(CompleteMessage())
