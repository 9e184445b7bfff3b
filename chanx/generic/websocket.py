"""``AsyncJsonWebsocketConsumer``: typed messages in, typed messages out.

This module holds the generic class and the path of an incoming frame; each
other step lives in its own module: the handshake
(:mod:`chanx.generic.handshake`), group messaging
(:mod:`chanx.generic.group_messaging`), channel events
(:mod:`chanx.generic.channel_events`), per-connection state and sending
(:mod:`chanx.generic.base`), decoding (:mod:`chanx.codec`), validation
(:mod:`chanx.schema`) and telemetry (:mod:`chanx.hooks`).
"""

from __future__ import annotations

import typing
from typing import Any, Generic, get_args, get_origin

from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from typing_extensions import TypeVar

from chanx.codec import pop_trace_context, utf8_size
from chanx.errors import FrameError, detail
from chanx.generic.channel_events import ChannelEventsMixin
from chanx.generic.group_messaging import GroupMessagingMixin
from chanx.generic.handshake import HandshakeMixin
from chanx.hooks import Observation
from chanx.limits import RATE_LIMIT_CLOSE_CODE, RATE_LIMITED, build_limits
from chanx.messages.outgoing import ErrorMessage
from chanx.schema import UNKNOWN, build_schema, is_concrete

__all__ = ["AsyncJsonWebsocketConsumer"]

IC = TypeVar("IC")
Event = TypeVar("Event", default=None)
OG = TypeVar("OG", default=None)
M = TypeVar("M", default=None)

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
            params = getattr(origin, "__parameters__", ())
            mapping = dict(zip(params, get_args(alias), strict=False))
            return tuple(mapping.get(a, a) for a in inherited)
    return None


_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})


def _check_options(cls: type[Any]) -> None:
    """Catch option mistakes when the class is defined, not at the first connect."""
    if isinstance(cls.groups, str):
        raise TypeError(
            f"{cls.__name__}.groups must be a list of group names, not a string; "
            f'hint: groups = ["{cls.groups}"]'
        )
    if str(cls.auth_method).lower() not in _HTTP_METHODS:
        raise TypeError(
            f"{cls.__name__}.auth_method {cls.auth_method!r} is not an HTTP method; "
            f"hint: one of {sorted(_HTTP_METHODS)}"
        )
    # Limits set on the class are checked now; None defers to CHANX, which is
    # read (and checked) per connection so override_settings applies.
    try:
        build_limits(cls.max_frame_bytes, cls.max_json_depth, cls.rate_limit)
    except ImproperlyConfigured as exc:
        raise TypeError(f"{cls.__name__}: {exc}") from None


class AsyncJsonWebsocketConsumer(
    HandshakeMixin, GroupMessagingMixin, ChannelEventsMixin, Generic[IC, Event, OG, M]
):
    """Base WebSocket consumer with typed messages and DRF authentication.

    Generic Parameters:
        IC: Incoming message type (required): a ``BaseMessage`` subclass or a
            ``|`` union of them.
        Event: Channel event type: a ``BaseChannelEvent`` subclass, a union, or None.
        OG: Outgoing group message type: a ``BaseGroupMessage`` subclass or None.
        M: Model type for object-level permissions: a ``Model`` subclass or None.

    Subclasses implement :meth:`receive_message` and, with events,
    :meth:`receive_event`. Class options (``authentication_classes``,
    ``permission_classes``, ``queryset``, ``auth_method``, ``lookup_field``,
    ``lookup_url_kwarg``, ``groups``) behave as in DRF views and Channels;
    behaviour flags left as ``None`` take the ``CHANX`` setting.
    """

    obj: M | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_options(cls)
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

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Pass a text frame to :meth:`receive`; answer a binary one with an error."""
        if self._auth_state == "failed":
            self.logger.warning("frame_ignored", reason="unauthenticated")
            return
        if self._guard.closing:
            return  # queued behind a rate-limit close
        text = message.get("text")
        if text is None:
            size = len(message.get("bytes") or b"")
            refusal = self._guard.admit(size)
            if refusal is not None:
                await self._refuse(size, refusal)
                return
            observation = self._hooks.message_received(self.conn, UNKNOWN, size, {})
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
        size = utf8_size(text)
        # The guard's check first: a coroutine only for a refused frame.
        refusal = self._guard.admit(size)
        if refusal is not None:
            await self._refuse(size, refusal)
            return
        try:
            content = self.config.codec.decode(text)
        except FrameError as exc:
            observation = self._hooks.message_received(self.conn, UNKNOWN, size, {})
            await self._reject_frame(exc, observation)
            return
        action = self.schema.action_label(content)
        carrier = pop_trace_context(content)
        observation = self._hooks.message_received(self.conn, action, size, carrier)
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
        if self.config.send_completion:
            await self._complete()

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Validate decoded content against ``IC`` and call :meth:`receive_message`."""
        message = self.schema.validate_message(content)
        action = str(message.action)
        config = self.config
        if config.log_received_message and action not in config.log_ignored_actions:
            self.logger.info("message_received", action=action)
        await self.receive_message(typing.cast(IC, message), **kwargs)

    async def receive_message(self, message: IC, **kwargs: Any) -> None:
        """Handle a validated message. Override in every consumer."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement receive_message()"
        )

    async def _refuse(self, size: int, error: FrameError) -> None:
        """Answer a frame of ``size`` bytes the limits refused (``error``)."""
        observation = self._hooks.message_received(self.conn, UNKNOWN, size, {})
        if error.kind != RATE_LIMITED:
            await self._reject_frame(error, observation)
            return
        observation.finish("error", RATE_LIMITED)
        guard = self._guard
        if guard.abusive():
            guard.closing = True
            self.logger.warning("rate_limit_close", refused=guard.strikes)
            await self.send_errors(error.errors)
            await self.close(RATE_LIMIT_CLOSE_CODE)
            return
        if guard.strikes == 1:
            # One line per flood, not one per frame: a flood must not flood the logs.
            self.logger.warning("rate_limited")
        await self.send_errors(error.errors)
        await self._complete()

    async def _reject_frame(self, exc: FrameError, observation: Observation) -> None:
        self.logger.info(
            "message_rejected", error_type=exc.kind, errors=len(exc.errors)
        )
        observation.finish("error", exc.kind)
        await self.send_errors(exc.errors)
        await self._complete()

    async def receive_event(self, event: Event) -> None:
        """Handle a validated channel event. Override when the consumer has events."""
        await super().receive_event(event)

    @classmethod
    async def asend_channel_event(cls, group: str, event: Event) -> None:
        """Send ``event`` to every consumer in ``group`` (from async code)."""
        await cls._publish_event(group, event)

    @classmethod
    def send_channel_event(cls, group: str, event: Event) -> None:
        """Send ``event`` to every consumer in ``group`` (from sync code: views, tasks)."""
        async_to_sync(cls._publish_event)(group, event)
