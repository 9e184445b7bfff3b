"""Typed channel events: publish to a group, validate and handle on receipt.

Both sides use :mod:`chanx.events` for the payload. Events are validated
against the receiving consumer's ``Event`` union; an invalid one is logged and
reported to hooks, never raised into the consumer.
"""

from __future__ import annotations

from typing import Any

import structlog
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from chanx.carriers import carrier_of
from chanx.errors import FrameError
from chanx.events import ChannelEventPayload, build_event_payload
from chanx.faults import GroupSendError, layer_failed, layer_timeout, within
from chanx.generic.base import ConsumerBase, resolve_hooks
from chanx.messages.base import BaseChannelEvent
from chanx.schema import UNKNOWN

__all__ = ["ChannelEventsMixin"]

_log = structlog.get_logger("chanx.consumer")


class ChannelEventsMixin(ConsumerBase):
    """Event publishing (class side) and the event handler (connection side)."""

    async def receive_event(self, event: Any) -> None:
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
        carrier = carrier_of(payload)
        observation = self._hooks.deliver(self.conn, "event", handler, carrier)
        try:
            event = self.schema.validate_event(dict(payload["event"]))
        except FrameError as exc:
            self.logger.warning("event_invalid", handler=handler, errors=exc.errors)
            observation.finish("error", "validation")
            return
        try:
            await self.receive_event(event)
        except Exception as exc:
            self.logger.exception("event_handler_failed", handler=handler)
            observation.finish("error", "handler", exc)
        else:
            observation.finish("ok")
        await self._complete()

    @classmethod
    async def _publish_event(cls, group: str, event: Any) -> None:
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
        observation = resolve_hooks(cls).publish(None, "event", handler, [group], meta)
        payload = build_event_payload(event, meta)
        try:
            await within(layer.group_send(group, payload), layer_timeout())
        except Exception as exc:
            error_type = type(exc).__name__
            observation.finish("error", error_type, exc)
            _log.error("event_send_failed", handler=handler, error_type=error_type)
            layer_failed(layer)
            raise GroupSendError(error_type) from exc
        # No layer_succeeded() here: this may run on a short-lived loop
        # (async_to_sync from a script); consumers notice the recovery.
        observation.finish("ok")
