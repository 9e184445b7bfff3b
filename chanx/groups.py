"""Group messages on the channel layer: one payload shape, sent and received here.

A group message travels as :class:`GroupMessagePayload`, its content already
JSON text (msgpack-safe, and cheap for the in-memory layer to copy once per
member; see :mod:`chanx.carriers` for why the payload holds no containers). The text is codec-independent: keys as the models name them and
the type key ``action``. Each receiving consumer makes its client's frame
from it, adding ``is_mine`` and ``is_current`` for typed messages; with the
default codec that is a splice of text, with any other the text is parsed
and encoded by the receiver's codec.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, cast

from typing_extensions import NotRequired

from chanx.carriers import carrier_text
from chanx.codec import Codec, parse_plain_json, plain_json

__all__ = [
    "GROUP_MESSAGE_TYPE",
    "GroupMessagePayload",
    "build_group_payload",
    "frame_text",
    "is_well_formed",
    "recipient_flags",
    "splice_flags",
]

# Channels routes "chanx.group_message" to the consumer method chanx_group_message.
GROUP_MESSAGE_TYPE: Literal["chanx.group_message"] = "chanx.group_message"


class GroupMessagePayload(TypedDict):
    """What ``group_send`` carries for a group message."""

    type: Literal["chanx.group_message"]
    # The content as a JSON object, written by chanx's codec-independent
    # encoder (model field names, type key "action").
    text: str
    # The content's "action" when it is a string (the relayed frame's label).
    action: str | None
    # "message": a typed group message, gets is_mine/is_current; "json": raw JSON.
    kind: Literal["message", "json"]
    exclude_current: bool
    from_channel: str
    from_user_pk: str | None
    # What telemetry hooks wrote (e.g. W3C trace context), see chanx.carriers;
    # absent when they wrote nothing.
    meta: NotRequired[str]


class _ImmutableValues(dict[str, Any]):
    """A payload whose values are all immutable: text, flags, None.

    The in-memory channel layer deep-copies a message once per member; for
    such values a new dict is that deep copy, made without ``deepcopy``'s
    walk over every key and value. Redis (msgpack) and pickle see a dict.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return dict(self)


def build_group_payload(
    text: str,
    *,
    action: str | None,
    kind: Literal["message", "json"],
    exclude_current: bool,
    from_channel: str,
    from_user_pk: str | None,
    meta: dict[str, str],
) -> GroupMessagePayload:
    """Assemble the channel-layer payload for the JSON object ``text``."""
    values = _ImmutableValues(
        type=GROUP_MESSAGE_TYPE,
        text=text,
        action=action,
        kind=kind,
        exclude_current=exclude_current,
        from_channel=from_channel,
        from_user_pk=from_user_pk,
    )
    if meta:
        values["meta"] = carrier_text(meta)
    return cast(GroupMessagePayload, values)


def is_well_formed(payload: GroupMessagePayload) -> bool:
    """Whether ``payload`` has what a recipient reads, with the right types
    (another chanx version, or a hand-made payload, may not): a typed
    message's text must be an object, which the flags are spliced into."""
    text = payload.get("text")
    if not isinstance(text, str) or not isinstance(payload.get("from_channel"), str):
        return False
    kind = payload.get("kind")
    if kind == "message":
        return text.startswith("{") and text.endswith("}")
    return kind == "json"


def recipient_flags(
    payload: GroupMessagePayload, channel_name: str, user_pk: str | None
) -> tuple[bool, bool] | None:
    """``(is_mine, is_current)`` for this recipient, or ``None`` if excluded."""
    is_current = payload["from_channel"] == channel_name
    if is_current and payload.get("exclude_current"):
        return None
    sender = payload.get("from_user_pk")
    return sender is not None and sender == user_pk, is_current


# What follows a typed message's last key: its two flags, as the default
# codec writes them, and the closing brace.
_TAILS = {
    (mine, current): plain_json({"is_mine": mine, "is_current": current})[1:]
    for mine in (False, True)
    for current in (False, True)
}


def splice_flags(text: str, is_mine: bool, is_current: bool) -> str:
    """``text`` (a compact JSON object) with ``is_mine``/``is_current`` appended.

    The same text as encoding ``{**content, "is_mine": ..., "is_current": ...}``
    when ``text`` is ``content`` compactly encoded.
    """
    tail = _TAILS[is_mine, is_current]
    if text == "{}":
        return "{" + tail
    return f"{text[:-1]},{tail}"


def frame_text(
    payload: GroupMessagePayload, codec: Codec, is_mine: bool, is_current: bool
) -> str:
    """The frame text for a recipient whose consumer encodes with ``codec``."""
    text = payload["text"]
    typed = payload["kind"] == "message"
    if codec.plain:
        return splice_flags(text, is_mine, is_current) if typed else text
    content: Any = parse_plain_json(text)
    if typed:
        content = {**content, "is_mine": is_mine, "is_current": is_current}
    return codec.encode(content)
