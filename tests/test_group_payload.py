"""The group-message payload: encoded once by the sender, framed per recipient.

Each recipient's frame must be exactly what encoding the content with the
recipient's flags through its own codec gives, whichever codec the sender
used: these tests compare the two for generated content.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chanx.codec import Codec, parse_plain_json, plain_json
from chanx.groups import (
    GroupMessagePayload,
    build_group_payload,
    frame_text,
    recipient_flags,
    splice_flags,
)
from chanx.messages.base import BaseGroupMessage
from tests.strategies import json_values

# Content as a typed message dumps it: never the recipient's own keys.
_content = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in {"is_mine", "is_current"}),
    json_values(max_size=3, max_leaves=10),
    max_size=5,
)
_CODECS = {
    "default": Codec(),
    "camel": Codec(camelize=True),
    "type key": Codec(action_key="type"),
    "camel key": Codec(action_key="messageType", camelize=True),
}


def payload(
    text: str,
    kind: Literal["message", "json"] = "message",
    *,
    exclude_current: bool = False,
    sender: str | None = "7",
) -> GroupMessagePayload:
    return build_group_payload(
        text,
        action=None,
        kind=kind,
        exclude_current=exclude_current,
        from_channel="sender",
        from_user_pk=sender,
        meta={},
    )


@given(content=_content, mine=st.booleans(), current=st.booleans())
def test_splicing_the_flags_writes_what_encoding_them_writes(
    content: dict[str, Any], mine: bool, current: bool
) -> None:
    expected = plain_json({**content, "is_mine": mine, "is_current": current})
    assert splice_flags(plain_json(content), mine, current) == expected


@pytest.mark.parametrize("codec_name", list(_CODECS))
@given(content=_content, mine=st.booleans(), current=st.booleans())
def test_each_codec_frames_a_typed_message_as_it_encodes_it(
    codec_name: str, content: dict[str, Any], mine: bool, current: bool
) -> None:
    codec = _CODECS[codec_name]
    content = {"action": "chat", **content}
    expected = codec.encode({**content, "is_mine": mine, "is_current": current})
    assert frame_text(payload(plain_json(content)), codec, mine, current) == expected


@pytest.mark.parametrize("codec_name", list(_CODECS))
@given(content=_content)
def test_raw_json_gets_no_flags_and_the_recipients_keys(
    codec_name: str, content: dict[str, Any]
) -> None:
    codec = _CODECS[codec_name]
    framed = frame_text(payload(plain_json(content), "json"), codec, True, True)
    assert framed == codec.encode(content)


class Shout(BaseGroupMessage):
    action: Literal["shout"] = "shout"
    payload: dict[str, Any]


def flagged(message: Shout, codec: Codec, mine: bool, current: bool) -> str:
    text = message.model_dump_json(exclude={"is_mine", "is_current"})
    return frame_text(payload(text), codec, mine, current)


@pytest.mark.parametrize("body", [{}, {"text": "héllo ✓", "nested": {"a": [1.5]}}])
def test_a_typed_message_arrives_as_its_recipient_codec_would_send_it(
    body: dict[str, Any],
) -> None:
    message = Shout(payload=body)
    dumped = message.model_dump(mode="json", exclude={"is_mine", "is_current"})
    for codec in _CODECS.values():
        expected = codec.encode({**dumped, "is_mine": False, "is_current": True})
        assert flagged(message, codec, False, True) == expected


def test_big_integers_and_small_floats_keep_their_values() -> None:
    # Written as send_message writes them (1e-7, where json.dumps has 1e-07).
    message = Shout(payload={"n": 10**20, "x": 1e-7})
    for codec in _CODECS.values():
        frame = codec.decode(flagged(message, codec, True, False))
        assert frame["payload"] == {"n": 10**20, "x": 1e-7}
        assert frame["is_mine"] is True


def test_an_empty_object_gets_the_flags_without_a_stray_comma() -> None:
    assert parse_plain_json(splice_flags("{}", True, False)) == {
        "is_mine": True,
        "is_current": False,
    }


def test_the_sender_is_excluded_only_when_asked() -> None:
    sent = payload("{}")
    assert recipient_flags(sent, "sender", "7") == (True, True)
    assert recipient_flags(sent, "other", "7") == (True, False)
    assert recipient_flags(sent, "other", "8") == (False, False)
    excluding = payload("{}", exclude_current=True)
    assert recipient_flags(excluding, "sender", "7") is None
    assert recipient_flags(excluding, "other", "7") == (True, False)
    anonymous = payload("{}", sender=None)
    assert recipient_flags(anonymous, "other", None) == (False, False)


def test_content_json_cannot_encode_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(TypeError):
        plain_json({"when": object()})


def test_each_member_gets_its_own_copy_of_every_value() -> None:
    # The in-memory layer deep-copies a message per member; Redis packs it.
    original = build_group_payload(
        '{"action":"chat","payload":{"tags":["a"]}}',
        action="chat",
        kind="message",
        exclude_current=True,
        from_channel="sender",
        from_user_pk=None,
        meta={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    copied = copy.deepcopy(original)
    assert copied == original
    assert copied is not original
    copied["text"] = "{}"
    assert original["text"] == '{"action":"chat","payload":{"tags":["a"]}}'
    # Why a copy of the dict is a deep copy: nothing in it can change.
    assert {type(value) for value in original.values()} <= {str, bool, type(None)}
    assert msgpack.unpackb(msgpack.packb(original)) == dict(original)
