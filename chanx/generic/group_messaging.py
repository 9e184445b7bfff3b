"""Group messaging: publish to channel groups, relay to each member's client.

Both sides use :mod:`chanx.groups` for the payload, so what one process sends
is exactly what every receiving process reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from chanx.carriers import carrier_of
from chanx.codec import plain_json
from chanx.faults import (
    GroupSendError,
    layer_failed,
    layer_succeeded,
    layer_timeout,
    within,
)
from chanx.generic.base import ConsumerBase
from chanx.groups import (
    GroupMessagePayload,
    build_group_payload,
    frame_text,
    is_well_formed,
    recipient_flags,
)
from chanx.messages.base import BaseGroupMessage
from chanx.messages.outgoing import GroupCompleteMessage
from chanx.schema import UNKNOWN

__all__ = ["GroupMessagingMixin"]

# Set per recipient, so not part of what is published.
_RECIPIENT_FLAGS = {"is_mine", "is_current"}


class GroupMessagingMixin(ConsumerBase):
    """``send_group_message``, ``send_to_groups`` and the relay handler."""

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

        Raises:
            GroupSendError: The channel layer failed or took longer than
                ``CHANNEL_LAYER_TIMEOUT``. Raised out of ``receive_message``,
                it becomes an ``error`` frame of type ``group_send_failed``
                for this client; the connection stays open.
        """
        text = message.model_dump_json(exclude=_RECIPIENT_FLAGS)
        action = str(message.action)
        await self._publish(text, "message", action, groups, exclude_current)

    async def send_to_groups(
        self,
        content: dict[str, Any],
        groups: Iterable[str] | None = None,
        *,
        exclude_current: bool = True,
    ) -> None:
        """Send raw JSON to every member of ``groups`` (default: ``self.groups``).

        Raises:
            GroupSendError: As :meth:`send_group_message`.
            TypeError: ``content`` holds a value JSON has no type for (as
                :meth:`send_json` would raise); nothing was sent.
        """
        action = content.get("action") if isinstance(content, dict) else None
        await self._publish(
            plain_json(content),
            "json",
            action if isinstance(action, str) else None,
            groups,
            exclude_current,
        )

    async def _publish(
        self,
        text: str,
        kind: Literal["message", "json"],
        action: str | None,
        groups: Iterable[str] | None,
        exclude_current: bool,
    ) -> None:
        targets = list(self.groups if groups is None else groups)
        meta: dict[str, str] = {}
        label = action if kind == "message" and action is not None else UNKNOWN
        observation = self._hooks.publish(
            self.conn, "group_message", label, targets, meta
        )
        payload = build_group_payload(
            text,
            action=action,
            kind=kind,
            exclude_current=exclude_current,
            from_channel=self.channel_name,
            from_user_pk=self.conn.user_id,
            meta=meta,
        )
        layer, timeout = self.channel_layer, layer_timeout()
        try:
            for group in targets:
                await within(layer.group_send(group, payload), timeout)
        except Exception as exc:
            error_type = type(exc).__name__
            observation.finish("error", error_type, exc)
            self.logger.error(
                "group_send_failed",
                action=label,
                error_type=error_type,
                groups=len(targets),
            )
            layer_failed(layer)
            raise GroupSendError(error_type) from exc
        observation.finish("ok")
        layer_succeeded(layer)

    async def chanx_group_message(self, payload: GroupMessagePayload) -> None:
        """Relay a group message from the channel layer to this client."""
        if self._auth_state != "ok":
            self.logger.warning("group_message_dropped", reason="unauthenticated")
            return
        if not is_well_formed(payload):
            self.logger.warning("group_message_dropped", reason="malformed")
            return
        flags = recipient_flags(payload, self.channel_name, self.conn.user_id)
        if flags is None:
            return
        action = self.schema.group_label(payload.get("action"))
        carrier = carrier_of(payload)
        observation = self._hooks.deliver(self.conn, "group_message", action, carrier)
        try:
            text = frame_text(payload, self.config.codec, *flags)
            await self._send_encoded(text, action)
            if self.config.send_completion:
                await self.send_message(GroupCompleteMessage())
        except Exception as exc:
            self.logger.exception("group_message_delivery_failed", action=action)
            observation.finish("error", type(exc).__name__, exc)
            return
        observation.finish("ok")
