"""chanx's bound logger writes exactly the lines structlog's own would."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN, use_span

from chanx.telemetry.line_templates import MAX_LINES
from chanx.telemetry.log_chain import EventChain
from chanx.telemetry.logs import REDACTED, configure_logging, redact
from chanx.telemetry.rendering import json_renderer

pytestmark = pytest.mark.usefixtures("restore_logging")

Call = Callable[[Any], None]


def _failed(log: Any) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("handler_failed", action="chat")


CALLS: list[Call] = [
    lambda log: log.info("message_sent", action="pong"),
    lambda log: log.info("message_received", action="ping", size=12, ok=True),
    lambda log: log.warning("rate_limited", refused=3),
    lambda log: log.error("group_send_failed", groups=["a", "b"]),
    lambda log: log.critical("down", reason=None),
    lambda log: log.info("user %s sent %d frames", "ann", 3),
    lambda log: log.info("login", token="abc123", path="/ws/?token=abc123"),
    lambda log: log.debug("below_the_level"),
    lambda log: log.info("event", event_kind="override", connection_id="mine"),
    lambda log: log.info(None, action="no_event"),
    _failed,
]


def without_timestamp(text: str) -> list[list[tuple[str, Any]]]:
    """Each line's fields in order, the timestamp left out (it moves on)."""
    return [
        [(k, v) for k, v in json.loads(line).items() if k != "timestamp"]
        for line in text.splitlines()
    ]


def loggers(stream: io.StringIO) -> tuple[Any, Any]:
    """chanx's bound logger, and structlog's own class on the same pipeline."""
    configure_logging(json=True, stream=stream, redact_keys=["token"])
    context = {"connection_id": "c" * 32, "consumer": "RoomConsumer"}
    ours = structlog.get_logger("chanx.consumer").bind(**context)
    config = structlog.get_config()
    stock_class: Any = structlog.make_filtering_bound_logger(logging.INFO)
    stock = stock_class(
        config["logger_factory"]("chanx.consumer"), config["processors"], context
    )
    return ours, stock


@pytest.mark.parametrize("in_span", [False, True], ids=["no-span", "in-span"])
def test_every_line_is_the_one_structlog_writes(in_span: bool) -> None:
    stream = io.StringIO()
    ours, stock = loggers(stream)
    assert type(ours).__name__.startswith("ChanxLineLogger")
    structlog.contextvars.bind_contextvars(route="/ws/room/<room>/", action="chat")
    span = TracerProvider().get_tracer("t").start_span("receive chat")
    try:
        for call in CALLS:
            with use_span(span if in_span else INVALID_SPAN, end_on_exit=False):
                for log in (ours, stock):
                    call(log)
    finally:
        structlog.contextvars.clear_contextvars()
    lines = without_timestamp(stream.getvalue())
    assert len(lines) == 2 * (len(CALLS) - 1)  # debug is below the level
    assert lines[0::2] == lines[1::2]
    fields = [dict(line) for line in lines]
    assert fields[0]["event"] == "message_sent"
    assert ("trace_id" in fields[0]) is in_span
    assert fields[10]["event"] == "user ann sent 3 frames"
    assert fields[12]["token"] == REDACTED
    assert fields[14]["connection_id"] == "mine"
    assert "event" not in fields[16]
    assert "ValueError: boom" in fields[-1]["exception"]


def test_capture_logs_sees_lines_of_loggers_bound_before() -> None:
    stream = io.StringIO()
    ours, _ = loggers(stream)
    merge = structlog.contextvars.merge_contextvars
    structlog.contextvars.bind_contextvars(route="/ws/room/<room>/")
    try:
        with structlog.testing.capture_logs(processors=[merge]) as captured:
            ours.info("message_sent", action="pong")
            ours.warning("rate_limited")
    finally:
        structlog.contextvars.clear_contextvars()
    assert captured == [
        {
            "event": "message_sent",
            "action": "pong",
            "log_level": "info",
            "connection_id": "c" * 32,
            "consumer": "RoomConsumer",
            "route": "/ws/room/<room>/",
        },
        {
            "event": "rate_limited",
            "log_level": "warning",
            "connection_id": "c" * 32,
            "consumer": "RoomConsumer",
            "route": "/ws/room/<room>/",
        },
    ]
    ours.info("after")
    assert [dict(line)["event"] for line in without_timestamp(stream.getvalue())] == [
        "after"
    ]


def test_the_console_view_stays_a_console_view() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    structlog.get_logger("chanx.consumer").info("message_sent", action="pong")
    [line] = stream.getvalue().splitlines()
    assert not line.startswith("{")
    assert "message_sent" in line
    assert "action" in line


def test_a_processor_may_drop_a_line() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)

    def drop_pings(logger: Any, name: str, event_dict: Any) -> Any:
        if event_dict.get("action") == "ping":
            raise structlog.DropEvent
        return event_dict

    structlog.configure(processors=[drop_pings, json_renderer])
    log = structlog.get_logger("chanx.consumer")
    log.info("message_received", action="ping")
    log.info("message_received", action="chat")
    assert without_timestamp(stream.getvalue()) == [
        [("action", "chat"), ("event", "message_received")]
    ]


# Lines a connection repeats; some must never come from a rendered template.
REPEATED: list[Call] = [
    lambda log: log.info("message_received", action="ping"),
    lambda log: log.info("message_sent", action="pong"),
    lambda log: log.info("count", n=1),
    lambda log: log.info("count", n=True),  # a key equal to n=1's
    lambda log: log.info("count", n="1"),
    lambda log: log.info("count", m=1),  # n=1's value under another name
    lambda log: log.info("ratio", r=0.0),
    lambda log: log.info("ratio", r=-0.0),  # a key equal to r=0.0's, same type
    lambda log: log.info("pair", p=(0.0, 1)),
    lambda log: log.info("pair", p=(-0.0, 1)),
    lambda log: log.info("groups", groups=["a", "b"]),  # no key: unhashable
    lambda log: log.info("stand-in", text="\x00chanx-timestamp\x00"),
    lambda log: log.info("own_ids", trace_id="f" * 32),
    lambda log: log.info("login", token="abc123"),
    lambda log: log.warning("rate_limited", refused=3),
    _failed,
]


@pytest.mark.parametrize("in_span", [False, True], ids=["no-span", "in-span"])
def test_repeated_lines_are_the_ones_structlog_writes(in_span: bool) -> None:
    stream = io.StringIO()
    ours, stock = loggers(stream)
    tracer = TracerProvider().get_tracer("t")
    try:
        for round_ in range(3):
            # Context variables and the span change between rounds; a
            # repeated line must follow both.
            structlog.contextvars.bind_contextvars(action=f"chat{round_ % 2}")
            span = tracer.start_span("receive chat") if in_span else INVALID_SPAN
            with use_span(span, end_on_exit=True):
                for call in REPEATED:
                    # Seen, then rendered and kept, then written from the
                    # halves (where a key allows) within the round.
                    for _ in range(3):
                        for log in (ours, stock):
                            call(log)
    finally:
        structlog.contextvars.clear_contextvars()
    text = re.sub(r'"timestamp":"[^"]*"', "", stream.getvalue())
    # As text: parsed, 1 and true would compare equal.
    assert text.splitlines()[0::2] == text.splitlines()[1::2]
    lines = without_timestamp(stream.getvalue())
    assert len(lines) == 2 * 3 * 3 * len(REPEATED)
    # Our lines, the last of each call's three.
    first = [dict(line) for line in lines[0::2]][2::3]
    rounds = [first[i : i + len(REPEATED)] for i in range(0, len(first), len(REPEATED))]
    assert [r[0]["action"] for r in rounds] == ["ping", "ping", "ping"]
    assert [r[2]["n"] for r in rounds] == [1, 1, 1]
    assert [r[3]["n"] is True for r in rounds] == [True, True, True]
    assert [r[5]["m"] for r in rounds] == [1, 1, 1]
    assert [r[13]["token"] for r in rounds] == [REDACTED] * 3
    span_ids = {r[0].get("span_id") for r in rounds}
    assert span_ids == {None} if not in_span else len(span_ids - {None}) == 3


def test_lines_follow_the_timestamp() -> None:
    stream = io.StringIO()
    ours, _ = loggers(stream)
    for _ in range(3):
        ours.info("message_sent", action="pong")
    stamps = [json.loads(line)["timestamp"] for line in stream.getvalue().splitlines()]
    assert stamps == sorted(stamps)
    assert all(len(stamp) == len("2026-01-31T12:00:00.123456Z") for stamp in stamps)


def test_a_chain_swapped_in_place_applies_to_lines_already_repeated() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream, redact_keys=["token"])
    log = structlog.get_logger("chanx.consumer").bind(connection_id="c" * 32)
    for _ in range(3):
        log.info("login", secret="abc123")
    # What structlog's capture_logs does: swap within the list loggers hold.
    log._processors[0] = EventChain(redact(["secret"]))
    for _ in range(3):
        log.info("login", secret="abc123")
    secrets = [json.loads(line)["secret"] for line in stream.getvalue().splitlines()]
    assert secrets == ["abc123"] * 3 + [REDACTED] * 3


def kept_lines(log: Any) -> int | None:
    """How many rendered lines a bound logger keeps (None: not even a dict)."""
    lines = log._chanx_lines
    return None if lines is None else len(lines)


def test_only_repeated_lines_are_kept_rendered_and_only_a_few() -> None:
    ours, _ = loggers(io.StringIO())
    # An idle connection: a few distinct lines, nothing kept but a bit each.
    ours.info("connection_opened")
    ours.info("connection_authenticated", user_id=7)
    ours.info("message_sent", action="authentication")
    assert kept_lines(ours) is None
    for size in range(200):  # repeated lines, each with another value
        for _ in range(2):
            ours.info("message_received", action="chat", size=size)
    assert 0 < (kept_lines(ours) or 0) <= MAX_LINES
