"""Input limits: frame size, JSON depth, rate, connections per process."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from chanx.config import resolve_config
from chanx.limits import (
    FrameLimits,
    RateLimit,
    TokenBucket,
    build_limits,
    connection_slots,
    json_too_deep,
)
from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.app.helpers import Factory, open_ws
from tests.hardening.app import CRASHING, DefaultLimitsConsumer, TightConsumer
from tests.hardening.test_fuzz import json_values

PONG = [{"action": "pong", "payload": None}]


async def assert_still_serving(ws: WebsocketCommunicator) -> None:
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == PONG


def nested(depth: int) -> str:
    """A valid echo-less frame whose payload nests ``depth`` levels in all."""
    inner: Any = "x"
    for _ in range(depth - 1):
        inner = [inner]
    return json.dumps({"action": "echo", "payload": inner})


def error_types(frames: list[dict[str, Any]]) -> list[str]:
    assert [f["action"] for f in frames] == ["error"], frames
    return [entry["type"] for entry in frames[0]["payload"]]


# Pure functions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        (nested(4), 4, False),
        (nested(5), 4, True),
        ('{"a": "[[[[[[[[[[[[[["}', 2, False),  # brackets inside strings
        ('{"a": "\\"[[[[[[[[[[[["}', 2, False),  # after an escaped quote
        ('[{"a": [{"b": []}]}]', 5, False),
        ('[{"a": [{"b": []}]}]', 4, True),
        ("[]" * 50, 1, False),  # many siblings, no depth
        ("[" * 100_000, 32, True),
        ("[1," * 40 + "1" + "]" * 40, 32, True),  # no run of openers
        ("[" * 40 + "1", 32, True),  # unclosed, yet too deep to parse
        ("]]]][[", 2, False),  # unbalanced and shallow: json.loads reports it
    ],
)
def test_depth_is_measured_on_the_raw_text(
    text: str, limit: int, expected: bool
) -> None:
    assert json_too_deep(text, limit) is expected


def value_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(value_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(value_depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None, database=None)
@given(value=json_values, limit=st.integers(min_value=0, max_value=6))
def test_depth_scan_agrees_with_the_parsed_value(value: Any, limit: int) -> None:
    # json_values' strings hold brackets, quotes and backslashes too.
    text = json.dumps(value, ensure_ascii=False)
    assert json_too_deep(text, limit) is (value_depth(value) > limit)


def test_token_bucket_allows_bursts_refills_and_forgives_a_backed_off_client() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.strikes == 1
    now[0] += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    assert bucket.strikes == 2
    now[0] += 10  # quiet long enough to fill the bucket again
    assert bucket.take()
    assert bucket.strikes == 0


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({"MAX_FRAME_BYTES": "64k"}, "MAX_FRAME_BYTES"),
        ({"MAX_JSON_DEPTH": -1}, "MAX_JSON_DEPTH"),
        ({"RATE_LIMIT": 20}, "must be a dict like"),
        ({"RATE_LIMIT": {"RATE": 0}}, "RATE"),
        ({"RATE_LIMIT": {"BURST": 0.5}}, "BURST"),
        ({"RATE_LIMIT": {"PER_SECOND": 5}}, "known keys are"),
        ({"MAX_CONNECTIONS": True}, "MAX_CONNECTIONS"),
    ],
)
def test_bad_limit_settings_fail_with_a_hint(
    settings: dict[str, Any], hint: str
) -> None:
    with (
        override_settings(CHANX=settings),
        pytest.raises(ImproperlyConfigured, match=hint),
    ):
        resolve_config(DefaultLimitsConsumer)


def test_defaults_and_per_class_overrides() -> None:
    assert resolve_config(DefaultLimitsConsumer).limits == FrameLimits(
        max_frame_bytes=65536,
        max_json_depth=32,
        rate_limit=RateLimit(rate=20.0, burst=40, close_after=50),
        max_connections=None,
    )
    # Class attributes win over the settings; a partial RATE_LIMIT keeps defaults.
    with override_settings(CHANX={"MAX_FRAME_BYTES": 10, "RATE_LIMIT": {"RATE": 1}}):
        assert resolve_config(TightConsumer).limits.max_frame_bytes == 512
        assert resolve_config(DefaultLimitsConsumer).limits.rate_limit == RateLimit(
            1.0, 40, 50
        )
    assert build_limits(0, None, False, 0) == FrameLimits()


# Through a consumer -----------------------------------------------------------


async def test_oversized_frame_gets_an_error_and_is_counted(
    chanx_communicator_factory: Factory, errors: Callable[[str], float]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/tight/")
    # 300 two-byte characters: 600 bytes on the wire though 300 characters.
    with capture_logs() as logs:
        await ws.send_to(
            text_data=json.dumps(
                {"action": "echo", "payload": "é" * 300}, ensure_ascii=False
            )
        )
        assert error_types(await ws.receive_all_json()) == ["frame_too_large"]
    [rejected] = [e for e in logs if e["event"] == "message_rejected"]
    assert rejected["error_type"] == "frame_too_large"
    await ws.send_to(bytes_data=b"\0" * 1000)
    assert error_types(await ws.receive_all_json()) == ["frame_too_large"]
    # Just under the limit: handled.
    await ws.send_to(
        text_data=json.dumps(
            {"action": "echo", "payload": "é" * 200}, ensure_ascii=False
        )
    )
    assert await ws.receive_all_json() == [{"action": "ack", "payload": "echo"}]
    assert errors("frame_too_large") == 2


async def test_too_deep_frame_gets_an_error_and_is_counted(
    chanx_communicator_factory: Factory, errors: Callable[[str], float]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/default/")
    await ws.send_to(text_data=nested(33))
    assert error_types(await ws.receive_all_json()) == ["json_too_deep"]
    await ws.send_to(text_data=nested(32))
    # Within the depth limit it reaches validation (a list is no string).
    assert error_types(await ws.receive_all_json()) == ["string_type"]
    await assert_still_serving(ws)
    assert errors("too_deep") == 1
    assert errors("validation") == 1


async def test_default_frame_size_limit(
    chanx_communicator_factory: Factory, errors: Callable[[str], float]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/default/")
    frame = json.dumps({"action": "echo", "payload": ""})
    fits = frame.replace('""', '"' + "a" * (65536 - len(frame)) + '"')
    assert len(fits) == 65536
    await ws.send_to(text_data=fits)
    assert await ws.receive_all_json() == [{"action": "ack", "payload": "echo"}]
    await ws.send_to(text_data=fits.replace('"a', '"aa'))
    assert error_types(await ws.receive_all_json()) == ["frame_too_large"]
    assert errors("frame_too_large") == 1


async def test_flooding_client_gets_errors_then_close_4429(
    chanx_communicator_factory: Factory,
    errors: Callable[[str], float],
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/tight/")
    with capture_logs() as logs:
        for _ in range(5):  # the burst
            await assert_still_serving(ws)
        for _ in range(2):
            await ws.send_message(PingMessage())
            assert error_types(await ws.receive_all_json()) == ["rate_limited"]
        await ws.send_message(PingMessage())
        # The third refusal closes: the error frame, then 4429.
        assert error_types([await ws.receive_frame()]) == ["rate_limited"]
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4429}
    events = [entry["event"] for entry in logs]
    # One line when the flood starts and one at the close, not one per frame.
    assert events.count("rate_limited") == 1
    assert events.count("rate_limit_close") == 1
    assert errors("rate_limited") == 3


async def test_rate_limit_from_settings(chanx_communicator_factory: Factory) -> None:
    limit = {"RATE": 0.001, "BURST": 2, "CLOSE_AFTER": None}
    with override_settings(CHANX={"SEND_COMPLETION": True, "RATE_LIMIT": limit}):
        ws = await open_ws(chanx_communicator_factory, "/ws/default/")
        await assert_still_serving(ws)
        await assert_still_serving(ws)
        for _ in range(10):  # never closed without CLOSE_AFTER
            await ws.send_message(PingMessage())
            assert error_types(await ws.receive_all_json()) == ["rate_limited"]


async def test_max_connections_per_process(
    chanx_communicator_factory: Factory, registry: CollectorRegistry
) -> None:
    room = {"consumer": "DefaultLimitsConsumer"}
    limit = connection_slots.active + 2
    with override_settings(CHANX={"SEND_COMPLETION": True, "MAX_CONNECTIONS": limit}):
        first = await open_ws(chanx_communicator_factory, "/ws/default/")
        await open_ws(chanx_communicator_factory, "/ws/default/")
        refused = await chanx_communicator_factory(path="/ws/default/")
        connected, _ = await refused.connect()
        assert connected  # accepted only to tell the client why it is closed
        assert await refused.receive_output() == {
            "type": "websocket.close",
            "code": 4503,
        }
        await refused.send_message(PingMessage())
        assert await refused.receive_nothing()
        assert (
            registry.get_sample_value(
                "chanx_connections_rejected_total", {**room, "reason": "503"}
            )
            == 1
        )
        await first.disconnect()
        # The closed connection gave its slot back.
        await open_ws(chanx_communicator_factory, "/ws/default/")


async def test_a_crashed_connection_gives_its_slot_back(
    chanx_communicator_factory: Factory,
) -> None:
    limit = connection_slots.active + 1
    with override_settings(CHANX={"SEND_COMPLETION": True, "MAX_CONNECTIONS": limit}):
        ws = await open_ws(chanx_communicator_factory, "/ws/crashing/")
        layer = get_channel_layer()
        assert layer is not None
        await layer.send(CRASHING[-1], {"type": "crash"})
        with pytest.raises(RuntimeError, match="crashed on purpose"):
            await ws.wait(timeout=5)
        # No websocket_disconnect ran, and still the one slot is free again.
        await open_ws(chanx_communicator_factory, "/ws/default/")
