"""Channel events on the channel layer: one payload shape, sent and received here."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired

from chanx.carriers import carrier_text
from chanx.messages.base import BaseChannelEvent

__all__ = ["CHANNEL_EVENT_TYPE", "ChannelEventPayload", "build_event_payload"]

# Channels routes "chanx.channel_event" to the consumer method chanx_channel_event.
CHANNEL_EVENT_TYPE: Literal["chanx.channel_event"] = "chanx.channel_event"


class ChannelEventPayload(TypedDict):
    """What ``group_send`` carries for a channel event."""

    type: Literal["chanx.channel_event"]
    event: dict[str, Any]
    # What telemetry hooks wrote (e.g. W3C trace context), see chanx.carriers;
    # absent when they wrote nothing.
    meta: NotRequired[str]


def build_event_payload(
    event: BaseChannelEvent, meta: dict[str, str]
) -> ChannelEventPayload:
    """Assemble the channel-layer payload for ``event`` (JSON types only)."""
    payload: ChannelEventPayload = {
        "type": CHANNEL_EVENT_TYPE,
        "event": event.model_dump(mode="json"),
    }
    if meta:
        payload["meta"] = carrier_text(meta)
    return payload
