"""``AsyncJsonWebsocketConsumer``: lifecycle and dispatch of typed messages.

The class coordinates the steps a connection and a frame go through; each step
lives in its own module: authentication (:mod:`chanx.generic.authenticator`),
decoding (:mod:`chanx.codec`), validation (:mod:`chanx.schema`), channel-layer
payloads (:mod:`chanx.groups`, :mod:`chanx.events`) and telemetry
(:mod:`chanx.hooks`).
"""

from __future__ import annotations

import asyncio
import typing
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, Literal, get_args, get_origin

import structlog
from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from typing_extensions import TypeVar

from chanx.config import ConsumerConfig, resolve_config
from chanx.db import closer
from chanx.errors import ErrorDetail, FrameError, detail
from chanx.events import ChannelEventPayload, build_event_payload
from chanx.generic.authenticator import (
    AuthenticationResult,
    ChanxWebsocketAuthenticator,
    close_code_for,
)
from chanx.groups import GroupMessagePayload, build_group_payload, frame_for_recipient
from chanx.hooks import ConnectionInfo, ConsumerHooks, Observation, as_safe, get_hooks
from chanx.layers import check_channel_layer
from chanx.messages.base import BaseChannelEvent, BaseGroupMessage, BaseMessage
from chanx.messages.outgoing import (
    AuthenticationMessage,
    AuthenticationPayload,
    CompleteMessage,
    ErrorMessage,
    GroupCompleteMessage,
)
from chanx.routing import route_template
from chanx.schema import UNKNOWN, ConsumerSchema, build_schema, is_concrete

__all__ = ["AsyncJsonWebsocketConsumer"]

IC = TypeVar("IC")
Event = TypeVar("Event", default=None)
OG = TypeVar("OG", default=None)
M = TypeVar("M", default=None)

_log = structlog.get_logger("chanx.consumer")

_AuthState = Literal["pending", "ok", "failed"]
_HANDLER_ERROR = {"detail": "Failed to process message"}


def _generic_args(cls: type[Any], base: type[Any]) -> tuple[Any, ...] | None:
    """The ``[IC, Event, OG, M]`` a class gives ``base``, substituting through
    generic intermediate classes; ``None`` when the class gives none itself."""
    for alias in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(alias)
        if origin is base:
            return get_args(alias)
        if isinstance(origin, type) and issubclass(origin, base):
            inherited = _generic_args(origin, base)
            if inherited is None:
                continue
            mapping = dict(
                zip(
                    getattr(origin, "__parameters__", ()), get_args(alias), strict=False
                )
            )
            return tuple(mapping.get(a, a) for a in inherited)
    return None


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer, Generic[IC, Event, OG, M]):  # type: ignore[misc]
    """Base WebSocket consumer with typed messages and DRF authentication.

    Generic Parameters:
        IC: Incoming message type (required): a ``BaseMessage`` subclass or a
            ``|`` union of them.
        Event: Channel event type: a ``BaseChannelEvent`` subclass, a union, or None.
        OG: Outgoing group message type: a ``BaseGroupMessage`` subclass or None.
        M: Model type for object-level permissions: a ``Model`` subclass or None.

    Subclasses implement :meth:`receive_message` and, with events,
    :meth:`receive_event`. Flags left as ``None`` take the ``CHANX`` setting.
    """

    # DRF-style authentication; None means DRF's configured defaults.
    authentication_classes: ClassVar[Sequence[type[Any]] | None] = None
    permission_classes: ClassVar[Sequence[type[Any]] | None] = None
    queryset: ClassVar[QuerySet[Any] | None] = None
    auth_method: ClassVar[str] = "get"
    lookup_field: ClassVar[str] = "pk"
    lookup_url_kwarg: ClassVar[str | None] = None

    send_completion: ClassVar[bool | None] = None
    send_message_immediately: ClassVar[bool | None] = None
    send_authentication_message: ClassVar[bool | None] = None
    log_received_message: ClassVar[bool | None] = None
    log_sent_message: ClassVar[bool | None] = None
    log_ignored_actions: ClassVar[Iterable[str] | None] = None

    #: Telemetry for this class; None means the installed default.
    hooks: ClassVar[ConsumerHooks | None] = None

    groups: list[str]
    user: Any
    request: Any
    obj: M | None

    _chanx_schema: ClassVar[ConsumerSchema | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        args = _generic_args(cls, AsyncJsonWebsocketConsumer)
        if args is None:
            if cls._chanx_schema is None and not cls.__dict__.get("__parameters__"):
                raise TypeError(
                    f"{cls.__name__} must name its incoming message type; hint: "
                    f"class {cls.__name__}(AsyncJsonWebsocketConsumer[PingMessage]): ..."
                )
            return
        # A class that still has TypeVars is a generic base for other consumers.
        cls._chanx_schema = (
            build_schema(cls.__name__, args) if is_concrete(args) else None
        )

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
        self._auth_state: _AuthState = "pending"
        self._joined: list[str] = []
        cls_hooks = type(self).hooks
        self._hooks = as_safe(cls_hooks) if cls_hooks is not None else get_hooks()

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

    # Lifecycle ---------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Handle the handshake: run :meth:`connect` and report its outcome.

        Unlike Channels, ``groups`` are joined only after authentication.
        """
        kwargs = (self.scope.get("url_route") or {}).get("kwargs", {})
        path = self.scope.get("path", "")
        self.conn = ConnectionInfo(
            uuid.uuid4().hex, type(self).__name__, path, route_template(path, kwargs)
        )
        self.logger = _log.bind(
            connection_id=self.conn.connection_id,
            consumer=self.conn.consumer,
            path=path,
        )
        check_channel_layer(self.channel_layer)
        observation = self._hooks.connection_started(self.conn, self.scope)
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()
        except Exception as exc:
            self.logger.exception("connect_failed")
            observation.finish("error", type(exc).__name__, exc)
            await self.close(close_code_for(500))
            return
        if self._auth_state == "pending":
            # A user-defined connect() that did not call super() did its own checks.
            self._auth_state = "ok"
        status = self.conn.status_code or 200
        observation.finish(
            *(("accepted", None) if status == 200 else ("rejected", str(status)))
        )

    async def connect(self) -> None:
        """Accept, authenticate, join groups, then report the outcome to the client.

        Override to add work, calling ``await super().connect()``.
        """
        await self.accept()
        result = await self.authenticate()
        if result.is_authenticated:
            result = await self._start_session(result)
        await self._finish_handshake(result)

    async def authenticate(self) -> AuthenticationResult:
        """Run the DRF authentication, permission and object checks."""
        cls = type(self)
        authenticator = ChanxWebsocketAuthenticator(
            cls.authentication_classes,
            cls.permission_classes,
            cls.queryset,
            cls.auth_method,
            cls.lookup_field,
            cls.lookup_url_kwarg,
        )
        return await authenticator.authenticate(self.scope)

    async def _start_session(
        self, result: AuthenticationResult
    ) -> AuthenticationResult:
        self.user, self.request = result.user, result.request
        self.obj = typing.cast("M | None", result.obj)
        pk = getattr(self.user, "pk", None)
        self.conn.user_id = None if pk is None else str(pk)
        try:
            for group in await self.build_groups():
                if group not in self.groups:
                    self.groups.append(group)
            for group in self.groups:
                await self.channel_layer.group_add(group, self.channel_name)
                self._joined.append(group)
            await self.post_authentication()
        except Exception:
            self.logger.exception("session_start_failed", groups=len(self.groups))
            await self._leave_groups()
            return AuthenticationResult(500, {"detail": "Internal server error"})
        return result

    async def _finish_handshake(self, result: AuthenticationResult) -> None:
        self.conn.status_code = result.status_code
        self._auth_state = "ok" if result.is_authenticated else "failed"
        if self.config.send_authentication_message:
            payload = AuthenticationPayload(
                status_code=result.status_code,
                status_text=result.status_text,
                data=result.data,
            )
            await self.send_message(AuthenticationMessage(payload=payload))
        if result.is_authenticated:
            self.logger.info("connection_authenticated", user_id=self.conn.user_id)
        else:
            self.logger.info("authentication_failed", status_code=result.status_code)
            await self.close(close_code_for(result.status_code))

    async def build_groups(self) -> list[str]:
        """Groups to join after authentication, besides the ``groups`` attribute."""
        return []

    async def post_authentication(self) -> None:
        """Called after a successful authentication, once the groups are joined."""

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave groups, run :meth:`disconnect`, report the close and stop."""
        code = int(message.get("code", 1000))
        await self._leave_groups()
        try:
            await self.disconnect(code)
        except Exception:
            _log.exception("disconnect_failed", consumer=type(self).__name__)
        conn = getattr(self, "conn", None)
        if conn is not None:
            self._hooks.connection_closed(conn, code)
            self.logger.info("connection_closed", code=code)
        await aclose_old_connections()
        raise StopConsumer()

    async def _leave_groups(self) -> None:
        # As Channels does, also leave groups the consumer appended to
        # self.groups after joining them itself (the guide's join_group).
        extra = self.groups if self._auth_state == "ok" else []
        joined = list(dict.fromkeys([*self._joined, *extra]))
        self._joined = []
        for group in joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                _log.exception("group_discard_failed")

    # Incoming frames ----------------------------------------------------------

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Pass a text frame to :meth:`receive`; answer a binary one with an error."""
        if self._auth_state == "failed":
            self.logger.warning("frame_ignored", reason="unauthenticated")
            return
        text = message.get("text")
        if text is None:
            observation = self._hooks.message_received(
                self.conn, UNKNOWN, len(message.get("bytes") or b""), {}
            )
            error = detail(
                "frame_binary", "Binary frames are not supported; send JSON text"
            )
            await self._reject_frame(FrameError("decode", [error]), observation)
            return
        await self.receive(text_data=text)

    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        **kwargs: Any,
    ) -> None:
        """Decode, validate and handle one frame; errors go back as error frames."""
        text = text_data or ""
        try:
            content = self.config.codec.decode(text)
        except FrameError as exc:
            observation = self._hooks.message_received(
                self.conn, UNKNOWN, len(text), {}
            )
            await self._reject_frame(exc, observation)
            return
        action = self.schema.action_label(content)
        observation = self._hooks.message_received(
            self.conn, action, len(text), content
        )
        try:
            await self.receive_json(content, **kwargs)
        except FrameError as exc:
            await self._reject_frame(exc, observation)
            return
        except Exception as exc:
            self.logger.exception("message_handler_failed", action=action)
            observation.finish("error", "handler", exc)
            await self.send_message(ErrorMessage(payload=_HANDLER_ERROR))
        else:
            observation.finish("ok")
        await self._complete()

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Validate decoded content against ``IC`` and call :meth:`receive_message`."""
        message = self.schema.validate_message(content)
        action = str(message.action)
        if (
            self.config.log_received_message
            and action not in self.config.log_ignored_actions
        ):
            self.logger.info("message_received", action=action)
        await self.receive_message(typing.cast(IC, message), **kwargs)

    async def receive_message(self, message: IC, **kwargs: Any) -> None:
        """Handle a validated message. Override in every consumer."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement receive_message()"
        )

    async def _reject_frame(self, exc: FrameError, observation: Observation) -> None:
        self.logger.info(
            "message_rejected", error_type=exc.kind, errors=len(exc.errors)
        )
        observation.finish("error", exc.kind)
        await self.send_errors(exc.errors)
        await self._complete()

    async def send_errors(self, errors: list[ErrorDetail]) -> None:
        """Send one ``error`` frame listing ``errors`` (``loc`` in wire key names)."""
        await self.send_message(
            ErrorMessage(payload=self.config.codec.wire_errors(errors))
        )

    async def _complete(self) -> None:
        if self.config.send_completion:
            await self.send_message(CompleteMessage())

    # Outgoing frames ----------------------------------------------------------

    async def send_message(self, message: BaseMessage) -> None:
        """Send a message to this connection's client."""
        await self._send_frame(message.model_dump(mode="json"), str(message.action))

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        """Send raw JSON to the client (through the codec: action key, camelCase)."""
        await self._send_frame(content, UNKNOWN)
        if close:
            await self.close()

    async def _send_frame(self, data: dict[str, Any], action: str) -> None:
        text = self.config.codec.encode(data)
        await self.send(text_data=text)
        self._hooks.message_sent(self.conn, action, len(text))
        if (
            self.config.log_sent_message
            and action not in self.config.log_ignored_actions
        ):
            self.logger.info("message_sent", action=action)
        if self.config.send_message_immediately:
            # Lets the server flush this frame before the handler goes on.
            await asyncio.sleep(0)

    # Groups -------------------------------------------------------------------

    async def send_group_message(
        self,
        message: BaseGroupMessage,
        groups: Iterable[str] | None = None,
        *,
        exclude_current: bool = True,
    ) -> None:
        """Send a typed message to every member of ``groups`` (default: ``self.groups``).

        Each recipient gets ``is_mine`` (same user) and ``is_current`` (this
        connection); with ``exclude_current`` this connection gets nothing.
        """
        content = message.model_dump(mode="json", exclude={"is_mine", "is_current"})
        await self._publish(
            content, "message", str(message.action), groups, exclude_current
        )

    async def send_to_groups(
        self,
        content: dict[str, Any],
        groups: Iterable[str] | None = None,
        *,
        exclude_current: bool = True,
    ) -> None:
        """Send raw JSON to every member of ``groups`` (default: ``self.groups``)."""
        await self._publish(content, "json", UNKNOWN, groups, exclude_current)

    async def _publish(
        self,
        content: dict[str, Any],
        kind: Literal["message", "json"],
        action: str,
        groups: Iterable[str] | None,
        exclude_current: bool,
    ) -> None:
        targets = list(self.groups if groups is None else groups)
        meta: dict[str, str] = {}
        observation = self._hooks.publish(
            self.conn, "group_message", action, targets, meta
        )
        payload = build_group_payload(
            content,
            kind=kind,
            exclude_current=exclude_current,
            from_channel=self.channel_name,
            from_user_pk=self.conn.user_id,
            meta=meta,
        )
        try:
            for group in targets:
                await self.channel_layer.group_send(group, payload)
        except Exception as exc:
            observation.finish("error", type(exc).__name__, exc)
            self.logger.error(
                "group_send_failed", action=action, error_type=type(exc).__name__
            )
            raise
        observation.finish("ok")

    async def chanx_group_message(self, payload: GroupMessagePayload) -> None:
        """Relay a group message from the channel layer to this client."""
        if self._auth_state != "ok":
            self.logger.warning("group_message_dropped", reason="unauthenticated")
            return
        frame = frame_for_recipient(payload, self.channel_name, self.conn.user_id)
        if frame is None:
            return
        action = self.schema.group_label(frame)
        observation = self._hooks.deliver(
            self.conn, "group_message", action, payload.get("meta", {})
        )
        try:
            await self._send_frame(frame, action)
            if self.config.send_completion:
                await self.send_message(GroupCompleteMessage())
        except Exception as exc:
            self.logger.exception("group_message_delivery_failed", action=action)
            observation.finish("error", type(exc).__name__, exc)
            return
        observation.finish("ok")

    # Channel events -----------------------------------------------------------

    async def receive_event(self, event: Event) -> None:
        """Handle a validated channel event. Override when the consumer has events."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement receive_event()"
        )

    async def chanx_channel_event(self, payload: ChannelEventPayload) -> None:
        """Validate an event from the channel layer and call :meth:`receive_event`."""
        if self._auth_state != "ok":
            self.logger.warning("event_dropped", reason="unauthenticated")
            return
        handler = self.schema.handler_label(payload["event"])
        observation = self._hooks.deliver(
            self.conn, "event", handler, payload.get("meta", {})
        )
        try:
            event = self.schema.validate_event(dict(payload["event"]))
        except FrameError as exc:
            self.logger.warning("event_invalid", handler=handler, errors=exc.errors)
            observation.finish("error", "validation")
            return
        try:
            await self.receive_event(typing.cast(Event, event))
        except Exception as exc:
            self.logger.exception("event_handler_failed", handler=handler)
            observation.finish("error", "handler", exc)
        else:
            observation.finish("ok")
        await self._complete()

    @classmethod
    async def asend_channel_event(cls, group: str, event: Event) -> None:
        """Send ``event`` to every consumer in ``group`` (from async code)."""
        if not isinstance(event, BaseChannelEvent):
            raise TypeError(f"expected a BaseChannelEvent, got {type(event).__name__}")
        schema = cls._chanx_schema
        handler = schema.handler_label(event.model_dump()) if schema else UNKNOWN
        if handler == UNKNOWN:
            raise ValueError(
                f"{cls.__name__} does not declare the event {type(event).__name__}; "
                "hint: add it to the consumer's Event union"
            )
        layer = get_channel_layer(cls.channel_layer_alias)
        if layer is None:
            raise ImproperlyConfigured(
                "send_channel_event needs CHANNEL_LAYERS configured"
            )
        meta: dict[str, str] = {}
        hooks = as_safe(cls.hooks) if cls.hooks is not None else get_hooks()
        observation = hooks.publish(None, "event", handler, [group], meta)
        try:
            await layer.group_send(group, build_event_payload(event, meta))
        except Exception as exc:
            observation.finish("error", type(exc).__name__, exc)
            _log.error(
                "event_send_failed", handler=handler, error_type=type(exc).__name__
            )
            raise
        observation.finish("ok")

    @classmethod
    def send_channel_event(cls, group: str, event: Event) -> None:
        """Send ``event`` to every consumer in ``group`` (from sync code: views, tasks)."""
        async_to_sync(cls.asend_channel_event)(group, event)
