"""Property-based fuzzing of incoming frames against a realistic message union.

For every generated frame: a frame the schema rejects gets exactly one error
frame (counted once in ``chanx_message_errors_total``), a valid one is
handled; the error never echoes input or server internals; no exception
escapes the consumer; and a ping on the same connection still gets its pong.

CI runs a modest number of examples per family; a long run::

    CHANX_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/hardening/test_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chanx.codec import Codec, pop_trace_context, utf8_size
from chanx.errors import FrameError
from chanx.messages.incoming import PingMessage
from chanx.schema import ConsumerSchema
from tests.app.helpers import Factory, open_ws
from tests.hardening.app import FuzzConsumer

EXAMPLES = int(os.environ.get("CHANX_FUZZ_EXAMPLES", "100"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # The communicator factory is reused on purpose: each example opens and
    # closes its own connection with it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ACTIONS = ["ping", "echo", "add", "note", "post"]
#: What an error frame must never contain.
LEAKS = ("Traceback", 'File "', ".py", "/work", "SELECT", "sqlite", "Exception")

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
action_values = st.sampled_from(ACTIONS) | st.text(max_size=20) | json_values
messages = st.fixed_dictionaries(
    {},
    optional={
        "action": action_values,
        "payload": json_values,
        "traceparent": json_values,
    },
).flatmap(
    # Extra fields beside the known ones.
    lambda base: st.dictionaries(st.text(max_size=12), json_values, max_size=3).map(
        lambda extra: {**extra, **base}
    )
)


def _schema() -> ConsumerSchema:
    schema = FuzzConsumer._chanx_schema
    assert schema is not None
    return schema


def schema_accepts(text: str) -> bool:
    """The oracle: would the default limits and the schema let ``text`` through?"""
    if utf8_size(text) > 65536:
        return False
    try:
        content = Codec(max_depth=32).decode(text)
        pop_trace_context(content)
        _schema().validate_message(content)
    except FrameError:
        return False
    return True


def long_strings(value: Any) -> list[str]:
    """Strings in ``value`` long enough that an echo would not be a coincidence."""
    if isinstance(value, str):
        return [value] if len(value) >= 12 else []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in long_strings(k) + long_strings(v)]
    if isinstance(value, list):
        return [s for item in value for s in long_strings(item)]
    return []


async def exchange(
    factory: Factory,
    errors: Callable[[], float],
    frame: str | bytes,
    sent: Any = None,
) -> None:
    """Send ``frame`` on a fresh connection and check every promised property."""
    ws = await open_ws(factory, "/ws/fuzz/")
    before = errors()
    if isinstance(frame, bytes):
        await ws.send_to(bytes_data=frame)
    else:
        await ws.send_to(text_data=frame)
    replies = await ws.receive_all_json()
    valid = isinstance(frame, str) and schema_accepts(frame)
    if valid:
        assert replies, "a valid frame got no answer"
        assert all(r["action"] != "error" for r in replies), replies
        assert errors() == before
    else:
        assert [r["action"] for r in replies] == ["error"], replies
        payload = replies[0]["payload"]
        assert isinstance(payload, list)
        assert payload, "the error frame names at least one problem"
        assert all(set(entry) == {"type", "loc", "msg"} for entry in payload)
        text = json.dumps(replies[0], ensure_ascii=False)
        assert not [leak for leak in LEAKS if leak in text], text
        assert not [s for s in long_strings(sent) if s in text], text
        assert errors() == before + 1
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    assert not ws.future.done(), "the consumer stopped"
    await ws.disconnect()


@fuzz
@given(value=json_values)
async def test_any_json_value(
    chanx_communicator_factory: Factory, total_errors: Callable[[], float], value: Any
) -> None:
    await exchange(chanx_communicator_factory, total_errors, json.dumps(value), value)


@fuzz
@given(message=messages)
async def test_objects_with_wrong_types_unknown_actions_and_extra_fields(
    chanx_communicator_factory: Factory,
    total_errors: Callable[[], float],
    message: dict[str, Any],
) -> None:
    text = json.dumps(message, ensure_ascii=False)
    await exchange(chanx_communicator_factory, total_errors, text, message)


@fuzz
@given(
    size=st.integers(min_value=60_000, max_value=70_000),
    char=st.sampled_from(["a", "é", "\U0001f600", "\\n"]),
)
async def test_huge_strings(
    chanx_communicator_factory: Factory,
    total_errors: Callable[[], float],
    size: int,
    char: str,
) -> None:
    text = '{"action": "echo", "payload": "' + char * (size // len(char)) + '"}'
    await exchange(chanx_communicator_factory, total_errors, text)


@fuzz
@given(
    depth=st.integers(min_value=1, max_value=20_000),
    opener=st.sampled_from(["[", '{"a":', '[{"b":']),
)
async def test_deep_nesting(
    chanx_communicator_factory: Factory,
    total_errors: Callable[[], float],
    depth: int,
    opener: str,
) -> None:
    closer = "".join("]" if c == "[" else "}" for c in opener if c in "[{")[::-1]
    inner = opener * depth + "1" + closer * depth
    text = '{"action": "echo", "payload": ' + inner + "}"
    await exchange(chanx_communicator_factory, total_errors, text)


@fuzz
# The test communicator cannot send an empty binary frame.
@given(data=st.binary(min_size=1, max_size=4096))
async def test_binary_frames(
    chanx_communicator_factory: Factory, total_errors: Callable[[], float], data: bytes
) -> None:
    await exchange(chanx_communicator_factory, total_errors, data)


# Lone surrogates: what a server would hand over for text that is not UTF-8
# only if it skipped validation; the consumer must not choke on them either.
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@fuzz
@given(
    garbage=st.text(surrogates | st.characters(), min_size=1, max_size=50),
    wrap=st.booleans(),
)
async def test_text_that_is_not_valid_unicode(
    chanx_communicator_factory: Factory,
    total_errors: Callable[[], float],
    garbage: str,
    wrap: bool,
) -> None:
    text = '{"action": "echo", "payload": "' + garbage + '"}' if wrap else garbage
    await exchange(chanx_communicator_factory, total_errors, text)
