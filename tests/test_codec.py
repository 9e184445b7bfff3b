"""The frame codec's JSON: orjson where it agrees with json, json for the rest."""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from pydantic import BaseModel

from chanx.codec import Codec
from chanx.errors import FrameError
from chanx.messages.base import BaseMessage
from tests.strategies import json_values


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def _stdlib(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_values = json_values()


@pytest.mark.parametrize(
    "text",
    [
        '{"action":"ping"}',
        ' {"action" : "ping", "payload": {"n": [1, 2.5, -0.0, null, true]}} ',
        '{"a":1,"a":2}',  # the last duplicate wins in both
        '{"big":123456789012345678901234567890}',  # past 64 bits: json's int
        '{"x":NaN,"y":Infinity,"z":-Infinity}',  # json accepts these tokens
        '{"s":"\\ud800"}',  # a lone surrogate escape: json keeps it
        '{"s":"caf\\u00e9 \\u2028 \\ud83d\\ude00"}',
        '{"deep":' + "[" * 100 + "]" * 100 + "}",
    ],
)
def test_decode_gives_what_json_gives(text: str) -> None:
    decoded = Codec().decode(text)
    expected = json.loads(text)
    # NaN != NaN: compare the texts json writes for both.
    assert _stdlib(decoded) == _stdlib(expected)
    assert decoded.keys() == expected.keys()


@settings(max_examples=300, deadline=None)
@given(value=_values)
def test_any_json_decodes_as_json_decodes_it(value: Any) -> None:
    for text in (_stdlib({"v": value}), json.dumps({"v": value})):
        assert _stdlib(Codec().decode(text)) == _stdlib(json.loads(text))


@settings(max_examples=300, deadline=None)
@given(value=_values)
def test_any_json_value_encodes_to_the_same_value(value: Any) -> None:
    text = Codec().encode({"v": value})
    # Same JSON value (only an exponent's leading zero may be written apart).
    assert _stdlib(json.loads(text)) == _stdlib({"v": value})


@pytest.mark.parametrize(
    "text", ["", "{", '{"a":}', "[1,2]", '"text"', "{'a': 1}", '{"a":1}x']
)
def test_what_json_refuses_is_still_a_decode_error(text: str) -> None:
    with pytest.raises(FrameError) as caught:
        Codec().decode(text)
    assert caught.value.kind == "decode"


@pytest.mark.parametrize(
    "data",
    [
        {"action": "pong", "payload": {"text": "héllo \u2028 😀", "n": 3, "f": 0.1}},
        {"action": "x", "payload": [1.0, 1e16, 1e22, -0.0, None, True, False]},
        {"action": "x", "big": 2**70},  # orjson refuses: json writes it
        {"action": "x", "keys": {1: "one", None: "none"}},  # non-text keys
        {"action": Colour.RED, "level": Level.HIGH},  # subclasses: json's way
        {"action": "x", "ordered": OrderedDict(b=1, a=2)},
        {"action": "x", "control": '\x00\x1f\x7f"\\/'},
    ],
)
def test_encode_writes_what_json_writes(data: dict[str, Any]) -> None:
    assert Codec().encode(data) == _stdlib(data)


def test_encode_still_refuses_what_json_cannot_encode() -> None:
    with pytest.raises(TypeError):
        Codec().encode({"action": "x", "payload": object()})


def test_non_finite_floats_are_sent_as_valid_json() -> None:
    text = Codec().encode({"action": "x", "values": [math.nan, math.inf]})
    # json.dumps would write NaN/Infinity, which JSON parsers refuse.
    assert text == '{"action":"x","values":[null,null]}'
    assert json.loads(text) == {"action": "x", "values": [None, None]}


def test_action_key_and_camel_case_still_apply() -> None:
    pytest.importorskip("humps")
    codec = Codec(action_key="type", camelize=True)
    text = codec.encode({"action": "chat", "payload": {"room_id": 1}})
    assert json.loads(text) == {"type": "chat", "payload": {"roomId": 1}}
    assert codec.decode(text) == {"action": "chat", "payload": {"room_id": 1}}


class _Point(BaseModel):
    x_value: float
    label: str


class _Shape(BaseMessage):
    action: Literal["shape_drawn"] = "shape_drawn"
    payload: dict[str, Any]


class _Reading(BaseMessage):
    action: Literal["reading"] = "reading"
    payload: list[_Point]


_MESSAGES = [
    _Shape(payload={"name": "héllo \u2028 😀", "sides": 3, "big": 2**70}),
    _Shape(payload={"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}),
    _Reading(payload=[_Point(x_value=v, label="p") for v in (0.1, 1e16, 1.5e-7)]),
    _Reading(payload=[_Point(x_value=math.nan, label="n")]),
]


@pytest.mark.parametrize("message", _MESSAGES)
@pytest.mark.parametrize(
    "codec",
    [Codec(), Codec(action_key="type"), Codec(camelize=True)],
    ids=["plain", "action_key", "camel_case"],
)
def test_a_message_encodes_as_its_json_dump_does(
    codec: Codec, message: BaseMessage
) -> None:
    assert codec.encode_message(message) == codec.encode(
        message.model_dump(mode="json")
    )
