"""The per-line fast paths of JSON logs: same fields, values and redaction."""

from __future__ import annotations

import contextvars
import enum
import json
import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from chanx.hooks import ConnectionInfo
from chanx.telemetry import rendering
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.log_chain import EventChain
from chanx.telemetry.logs import (
    REDACTED,
    EventProcessor,
    LogContextHooks,
    add_trace_context,
    redact,
)
from chanx.telemetry.rendering import json_renderer

KEYS = ["token", "password", "secret", "cookie", "authorization"]


def test_the_text_fast_path_hides_what_the_case_insensitive_search_finds() -> None:
    redactor = redact(KEYS)
    # "\u212a" (Kelvin sign) is a "k" to a case-insensitive search, and
    # "\u017f" (long s) an "s": non-ASCII text keeps the full search.
    for text in ("to\u212aen=abc", "pa\u017f\u017fword=abc", "TOKEN=abc"):
        name = text.split("=")[0]
        assert redactor(None, "info", {"event": text}) == {
            "event": f"{name}={REDACTED}"
        }


def test_repeated_texts_are_redacted_every_time() -> None:
    # Clean texts are remembered; a text with a secret must never be.
    redactor = redact(KEYS)
    for _ in range(3):
        assert redactor(None, "info", {"event": "message_received"}) == {
            "event": "message_received"
        }
        assert redactor(None, "info", {"event": "/ws/?token=abc"}) == {
            "event": f"/ws/?token={REDACTED}"
        }


def test_many_distinct_texts_leave_redaction_unchanged() -> None:
    redactor = redact(KEYS)
    for index in range(3000):  # more than the redactor remembers
        assert redactor(None, "info", {"event": f"event_{index}"}) == {
            "event": f"event_{index}"
        }
    assert redactor(None, "info", {"event": "password=x"}) == {
        "event": f"password={REDACTED}"
    }


class Color(enum.Enum):
    RED = 1


class Shown:
    def __structlog__(self) -> str:
        return "shown"


@pytest.mark.parametrize(
    "event",
    [
        {"event": "plain", "count": 3, "ok": True, "none": None},
        {"event": "caf\u00e9 \u2603", "n": 1},  # non-ASCII: escaped as \uXXXX
        {"event": "odd", "color": Color.RED, "id": uuid.UUID(int=1)},  # repr
        {"event": "float", "ratio": 0.5, "nan": math.nan},
        {"event": "shown", "value": Shown()},
        {"event": "nested", "items": [1, {"a": "b"}], "pair": ("x", 2)},
        {"event": "big", "n": 2**70},
        {"event": "keys", 1: "one", None: "none"},
    ],
)
def test_json_lines_render_every_value_as_the_json_module_does(
    event: dict[Any, Any],
) -> None:
    def fallback(value: Any) -> Any:
        try:
            return value.__structlog__()
        except AttributeError:
            return repr(value)

    expected = json.dumps(event, separators=(",", ":"), default=fallback)
    assert json_renderer(None, "info", event) == expected


def _failed_event(steps: Sequence[EventProcessor]) -> Any:
    """An ``exception`` event run through ``steps`` inside a span."""
    logger = structlog.WriteLogger()
    logger.name = "chanx.demo"  # type: ignore[attr-defined]
    event: Any = {"event": "x", "action": "echo", "exc_info": True}
    with TracerProvider().get_tracer("tests").start_as_current_span("work"):
        try:
            raise ValueError("token=abc")
        except ValueError:
            for step in steps:
                event = step(logger, "exception", event)
    return event


def test_the_event_chain_gives_the_fields_structlog_processors_give() -> None:
    stock: list[EventProcessor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_trace_context,
        structlog.processors.format_exc_info,
        redact(KEYS),
    ]
    tokens = structlog.contextvars.bind_contextvars(action="ping", user_id="7")
    try:
        expected = _failed_event(stock)
        actual = _failed_event([EventChain(redact(KEYS))])
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    assert actual.pop("timestamp").endswith("Z")
    # Different spans, otherwise the same; the call's "action" wins.
    assert len(actual.pop("trace_id")) == len(expected.pop("trace_id")) == 32
    assert len(actual.pop("span_id")) == len(expected.pop("span_id")) == 16
    actual["exception"] = actual["exception"].splitlines()[-1]
    expected["exception"] = expected["exception"].splitlines()[-1]
    assert actual == expected
    assert actual["level"] == "error"
    assert (actual["action"], actual["user_id"]) == ("echo", "7")
    assert actual["exception"] == f"ValueError: token={REDACTED}"


def test_log_context_binds_and_restores_what_structlog_sees() -> None:
    hooks = LogContextHooks(TelemetryConfig())
    conn = ConnectionInfo("c1", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")
    outer = hooks.message_received(conn, "join", 10, {})
    inner = hooks.deliver(conn, "group", "chat", {})
    event = hooks.deliver(conn, "event", "notify", {})
    assert structlog.contextvars.get_contextvars() == {
        "action": "chat",
        "handler": "notify",
    }
    event.finish("ok")
    inner.finish("ok")
    inner.finish("ok")  # a second finish changes nothing
    assert structlog.contextvars.get_contextvars() == {"action": "join"}
    outer.finish("ok")
    assert structlog.contextvars.get_contextvars() == {}


def test_log_context_finished_in_another_context_is_dropped() -> None:
    hooks = LogContextHooks(TelemetryConfig())
    conn = ConnectionInfo("c1", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")
    observation = hooks.message_received(conn, "ping", 10, {})
    contextvars.copy_context().run(observation.finish, "ok")
    # The other context dropped the key there; here it is still bound.
    assert structlog.contextvars.get_contextvars() == {"action": "ping"}
    observation = hooks.message_received(conn, "echo", 10, {})
    observation.finish("ok")
    assert structlog.contextvars.get_contextvars() == {"action": "ping"}
    structlog.contextvars.unbind_contextvars("action")


def test_json_lines_are_the_same_without_orjson(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = {"event": "plain", "count": 3, "ok": True, "none": None, "t": 'a"b\n'}
    with_orjson = json_renderer(None, "info", event)
    monkeypatch.setattr(rendering, "_dumps", None)
    assert json_renderer(None, "info", event) == with_orjson
    assert json.loads(with_orjson) == event


@pytest.mark.parametrize(
    "nanos",
    [
        0,
        999,
        1_000,
        5_000,
        123_456_789,
        999_999_999,
        1_764_410_400_000_001_000,
        1_764_410_400_999_999_999,
        1_764_410_401_000_000_000,
    ],
)
def test_timestamps_have_the_second_and_six_digits_of_microseconds(
    monkeypatch: pytest.MonkeyPatch, nanos: int
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: nanos)
    seconds, rest = divmod(nanos, 1_000_000_000)
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    expected = f"{second}.{rest // 1000:06d}Z"
    stamp = rendering.IsoTimestamp()
    assert stamp.now() == expected
    assert stamp.now() == expected  # the second's text, now from the cache
