"""Group messages on the channel layer: one payload shape, sent and received here.

A group message travels as :class:`GroupMessagePayload` (msgpack-safe: only
JSON types). Each receiving consumer turns it into the frame for its own
client, adding ``is_mine`` and ``is_current`` for typed messages.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired

__all__ = [
    "GROUP_MESSAGE_TYPE",
    "GroupMessagePayload",
    "build_group_payload",
    "frame_for_recipient",
]

# Channels routes "chanx.group_message" to the consumer method chanx_group_message.
GROUP_MESSAGE_TYPE: Literal["chanx.group_message"] = "chanx.group_message"


class GroupMessagePayload(TypedDict):
    """What ``group_send`` carries for a group message."""

    type: Literal["chanx.group_message"]
    content: dict[str, Any]
    # "message": a typed group message, gets is_mine/is_current; "json": raw JSON.
    kind: Literal["message", "json"]
    exclude_current: bool
    from_channel: str
    from_user_pk: str | None
    # Written by telemetry hooks (e.g. W3C trace context); absent otherwise.
    meta: NotRequired[dict[str, str]]


def build_group_payload(
    content: dict[str, Any],
    *,
    kind: Literal["message", "json"],
    exclude_current: bool,
    from_channel: str,
    from_user_pk: str | None,
    meta: dict[str, str],
) -> GroupMessagePayload:
    """Assemble the channel-layer payload for ``content``."""
    payload: GroupMessagePayload = {
        "type": GROUP_MESSAGE_TYPE,
        "content": content,
        "kind": kind,
        "exclude_current": exclude_current,
        "from_channel": from_channel,
        "from_user_pk": from_user_pk,
    }
    if meta:
        payload["meta"] = meta
    return payload


def frame_for_recipient(
    payload: GroupMessagePayload, channel_name: str, user_pk: str | None
) -> dict[str, Any] | None:
    """The frame this recipient should send, or ``None`` if it is excluded."""
    is_current = payload["from_channel"] == channel_name
    if is_current and payload["exclude_current"]:
        return None
    content = payload["content"]
    if payload["kind"] != "message":
        return content
    sender = payload["from_user_pk"]
    is_mine = sender is not None and sender == user_pk
    return {**content, "is_mine": is_mine, "is_current": is_current}
