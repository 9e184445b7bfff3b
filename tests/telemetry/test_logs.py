"""Structured logs: redaction, trace ids, JSON lines and per-connection context."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import logging.config
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog
from channels.routing import URLRouter
from django.test import override_settings
from django.urls import path
from opentelemetry.sdk.trace import TracerProvider
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from structlog.testing import LogCapture

from chanx.hooks import ConsumerHooks
from chanx.messages.incoming import PingMessage
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.logs import (
    FORMAT_ENV,
    REDACTED,
    LogContextHooks,
    add_trace_context,
    configure_logging,
    logging_config,
    redact,
)
from tests.app.consumers import SECRET, RoomConsumer
from tests.app.helpers import Factory, make_user, open_ws, token_header
from tests.app.messages import (
    EchoMessage,
    FailMessage,
    NotifyEvent,
    NotifyPayload,
    RoomEvent,
    RoomIncoming,
)

UseHooks = Callable[[ConsumerHooks], None]
Entry = Mapping[str, Any]

app_log = structlog.get_logger("tests.app.logs")

#: room -> (set when its handler waits, set by the test to let it go on).
GATES: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}


class LoggingConsumer(RoomConsumer):
    """Logs with the application's own logger, as user code would."""

    async def receive_message(self, message: RoomIncoming, **kwargs: Any) -> None:
        room = self.scope["url_route"]["kwargs"]["room"]
        app_log.info("app_handling", room=room)
        gate = GATES.get(room)
        if gate is not None:
            entered, release = gate
            entered.set()
            await release.wait()
            app_log.info("app_resumed", room=room)
        await super().receive_message(message, **kwargs)

    async def receive_event(self, event: RoomEvent) -> None:
        app_log.info("app_event", room=self.scope["url_route"]["kwargs"]["room"])
        await super().receive_event(event)


class LoggingTokenConsumer(LoggingConsumer):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]


@pytest.fixture
def chanx_router() -> Any:
    return URLRouter(
        [
            path("log/<str:room>/", LoggingConsumer.as_asgi()),
            path("log-token/<str:room>/", LoggingTokenConsumer.as_asgi()),
        ]
    )


pytestmark = pytest.mark.usefixtures("restore_logging")


@contextmanager
def root_handlers_kept() -> Iterator[None]:
    """``dictConfig`` replaces the root's handlers, pytest's own included."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        yield
    finally:
        root.handlers = handlers


@pytest.fixture
def captured() -> list[Entry]:
    """Structlog events with the context variables merged in."""
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    return capture.entries  # type: ignore[return-value]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty output line parsed as one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def named(lines: Sequence[Entry], event: str) -> list[Entry]:
    return [line for line in lines if line["event"] == event]


# Redaction -----------------------------------------------------------------------

KEYS = ["token", "password", "secret", "cookie", "authorization"]


def test_secret_keys_are_redacted_at_any_depth_without_touching_the_input() -> None:
    event = {
        "access_token": "t1",
        "HTTP_AUTHORIZATION": "Token t2",
        "headers": {"Set-Cookie": "sid=t3", "Accept": "text/html"},
        "items": [{"Password": "t4"}, ("ok", {"client_secret": "t5"})],
        "user": "alice",
    }
    before = copy.deepcopy(event)
    result = redact(KEYS)(None, "info", event)
    assert result == {
        "access_token": REDACTED,
        "HTTP_AUTHORIZATION": REDACTED,
        "headers": {"Set-Cookie": REDACTED, "Accept": "text/html"},
        "items": [{"Password": REDACTED}, ("ok", {"client_secret": REDACTED})],
        "user": "alice",
    }
    assert event == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ws/chat/?token=abc&x=1", f"/ws/chat/?token={REDACTED}&x=1"),
        ("/login?next=/a&Password=hunter2", f"/login?next=/a&Password={REDACTED}"),
        ("/ws/?next=/b?access_token=abc", f"/ws/?next=/b?access_token={REDACTED}"),
        (
            "Cookie: sessionid=abc; csrftoken=def",
            f"Cookie: {REDACTED}; csrftoken={REDACTED}",
        ),
        ("{'api_secret': 'abc', 'n': 1}", f"{{'api_secret': '{REDACTED}', 'n': 1}}"),
        ("Authorization: Bearer xyz", f"Authorization: {REDACTED}"),
        ("sent Bearer xyz upstream", f"sent Bearer {REDACTED} upstream"),
        (
            "header Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
            f"header Token {REDACTED}",
        ),
        ("Basic dXNlcjpwYXNzd29yZA==", f"Basic {REDACTED}"),
    ],
)
def test_secrets_inside_text_are_redacted(text: str, expected: str) -> None:
    assert redact(KEYS)(None, "info", {"event": text}) == {"event": expected}


@pytest.mark.parametrize(
    "text",
    ["token refresh failed", "/ws/query-token/<room>/", "basic setup", "a=b&c=d"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(KEYS)(None, "info", {"event": text}) == {"event": text}


def test_header_pairs_are_redacted_by_name() -> None:
    headers = [(b"authorization", b"Token abc"), (b"host", b"example.com")]
    result = redact(KEYS)(None, "info", {"scope_headers": headers})
    assert result["scope_headers"] == [
        (b"authorization", REDACTED),
        (b"host", b"example.com"),
    ]


def test_only_the_given_keys_are_secret() -> None:
    result = redact(["session"])(None, "info", {"session_id": "s", "token": "t"})
    assert result == {"session_id": REDACTED, "token": "t"}


# Trace context ------------------------------------------------------------------


def test_trace_ids_are_added_only_inside_an_active_span() -> None:
    assert add_trace_context(None, "info", {"event": "outside"}) == {"event": "outside"}
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("work") as span:
        event = add_trace_context(None, "info", {"event": "inside"})
    context = span.get_span_context()
    assert event["trace_id"] == format(context.trace_id, "032x")
    assert event["span_id"] == format(context.span_id, "016x")
    assert len(event["trace_id"]) == 32
    assert len(event["span_id"]) == 16


# Rendering ----------------------------------------------------------------------


def test_json_lines_have_the_standard_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True, redact_keys=["token"])
    structlog.get_logger("chanx.demo").info("thing_done", count=3, url="/?token=a1")
    logging.getLogger("django.request").warning("Not Found: %s", "/x?token=a2")
    out = capsys.readouterr().out
    structured, stdlib = json_lines(out)
    assert "a1" not in out
    assert "a2" not in out
    assert structured["event"] == "thing_done"
    assert (structured["level"], structured["logger"]) == ("info", "chanx.demo")
    assert (structured["count"], structured["url"]) == (3, f"/?token={REDACTED}")
    assert stdlib["event"] == f"Not Found: /x?token={REDACTED}"
    assert (stdlib["level"], stdlib["logger"]) == ("warning", "django.request")
    for line in (structured, stdlib):
        assert line["timestamp"].endswith("Z")
        stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() == timedelta(0)


def test_json_lines_inside_a_span_carry_its_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True)
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("work") as span:
        structlog.get_logger("chanx.demo").info("inside")
        logging.getLogger("opentelemetry.demo").warning("stdlib inside")
    structlog.get_logger("chanx.demo").info("outside")
    inside, stdlib, outside = json_lines(capsys.readouterr().out)
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert inside["trace_id"] == stdlib["trace_id"] == trace_id
    assert "trace_id" not in outside
    assert "span_id" not in outside


def test_tracebacks_are_text_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    try:
        raise ConnectionError("GET /ws/?token=abc123 failed")
    except ConnectionError:
        structlog.get_logger("chanx.demo").exception("upstream_failed")
        logging.getLogger("django.demo").exception("stdlib failed")
    out = capsys.readouterr().out
    assert "abc123" not in out
    for line in json_lines(out):
        assert line["level"] == "error"
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert f"ConnectionError: GET /ws/?token={REDACTED} failed" in line["exception"]


def test_level_drops_quieter_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="warning")
    structlog.get_logger("chanx.demo").info("quiet")
    structlog.get_logger("chanx.demo").warning("loud")
    logging.getLogger("django.demo").info("quiet stdlib")
    assert [line["event"] for line in json_lines(capsys.readouterr().out)] == ["loud"]


@pytest.mark.parametrize(
    ("json_arg", "env", "is_json"),
    [(False, None, False), (None, "console", False), (None, "json", True)],
)
def test_format_follows_the_argument_or_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    json_arg: bool | None,
    env: str | None,
    is_json: bool,
) -> None:
    if env is not None:
        monkeypatch.setenv(FORMAT_ENV, env)
    configure_logging(json=json_arg)
    structlog.get_logger("chanx.demo").info("thing_done", password="hunter2")
    out = capsys.readouterr().out
    assert "thing_done" in out
    assert REDACTED in out
    assert "hunter2" not in out
    assert out.lstrip().startswith("{") is is_json


def test_unknown_format_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORMAT_ENV, "xml")
    with pytest.raises(ValueError, match="CHANX_LOG_FORMAT"):
        configure_logging()


def test_redact_keys_default_to_the_telemetry_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = {"TELEMETRY": {"REDACT_KEYS": ["pin"]}, "SEND_COMPLETION": True}
    with override_settings(CHANX=telemetry):
        configure_logging(json=True)
    structlog.get_logger("chanx.demo").info("thing_done", pin_code="1234", tag="t")
    [line] = json_lines(capsys.readouterr().out)
    assert (line["pin_code"], line["tag"]) == (REDACTED, "t")


@pytest.mark.parametrize("setup", ["logging_config", "configure_logging"])
def test_uvicorn_access_lines_are_redacted(
    capsys: pytest.CaptureFixture[str], setup: str
) -> None:
    with root_handlers_kept():
        if setup == "logging_config":
            logging.config.dictConfig(logging_config(json=True))
        else:
            configure_logging(json=True)
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:50000",
            "GET",
            "/ws/chat/?token=abc123&x=1",
            "1.1",
            101,
        )
    out = capsys.readouterr().out
    [line] = json_lines(out)
    assert "abc123" not in out
    assert line["event"] == (
        f'127.0.0.1:50000 - "GET /ws/chat/?token={REDACTED}&x=1 HTTP/1.1" 101'
    )
    assert (line["logger"], line["level"]) == ("uvicorn.access", "info")


# Connection context -------------------------------------------------------------


async def test_lines_carry_the_connection_and_what_is_being_handled(
    chanx_communicator_factory: Factory, use_hooks: UseHooks, captured: list[Entry]
) -> None:
    use_hooks(LogContextHooks(TelemetryConfig()))
    ws = await open_ws(chanx_communicator_factory, "/log/ctx-1/")
    await ws.send_message(EchoMessage(payload="hi"))
    assert [f["action"] for f in await ws.receive_all_json()] == ["echo_reply"]
    await LoggingConsumer.asend_channel_event(
        "room_ctx-1", NotifyEvent(payload=NotifyPayload(content="news"))
    )
    assert [f["action"] for f in await ws.receive_all_json()] == ["event_received"]

    [handling] = named(captured, "app_handling")
    [event] = named(captured, "app_event")
    [authenticated] = named(captured, "connection_authenticated")
    for line in (handling, event):
        assert line["connection_id"] == authenticated["connection_id"]
        assert line["consumer"] == "LoggingConsumer"
        assert line["route"] == "/log/<room>/"
        assert "user_id" not in line  # anonymous
    assert handling["action"] == "echo"
    assert "handler" not in handling
    # The action was unbound when the message was done.
    assert event["handler"] == "notify"
    assert "action" not in event


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("log_user_id", [True, False])
async def test_user_id_is_bound_after_authentication_unless_disabled(
    chanx_communicator_factory: Factory,
    use_hooks: UseHooks,
    captured: list[Entry],
    log_user_id: bool,
) -> None:
    user, key = await make_user(f"log-user-{log_user_id}")
    use_hooks(LogContextHooks(TelemetryConfig(log_user_id=log_user_id)))
    ws = await open_ws(chanx_communicator_factory, "/log-token/u/", token_header(key))
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]
    [handling] = named(captured, "app_handling")
    [received] = named(captured, "message_received")
    for line in (handling, received):
        assert line["action"] == "ping"
        if log_user_id:
            assert line["user_id"] == str(user.pk)
        else:
            assert "user_id" not in line


async def test_interleaved_connections_keep_their_own_context(
    chanx_communicator_factory: Factory, use_hooks: UseHooks, captured: list[Entry]
) -> None:
    use_hooks(LogContextHooks(TelemetryConfig()))
    first = await open_ws(chanx_communicator_factory, "/log/il-a/")
    second = await open_ws(chanx_communicator_factory, "/log/il-b/")
    GATES.update(
        {room: (asyncio.Event(), asyncio.Event()) for room in ("il-a", "il-b")}
    )
    try:
        # Both handlers are mid-way at once; the second finishes first.
        await first.send_message(EchoMessage(payload="a"))
        await asyncio.wait_for(GATES["il-a"][0].wait(), timeout=5)
        await second.send_message(PingMessage())
        await asyncio.wait_for(GATES["il-b"][0].wait(), timeout=5)
        GATES["il-b"][1].set()
        assert [f["action"] for f in await second.receive_all_json()] == ["pong"]
        GATES["il-a"][1].set()
        assert [f["action"] for f in await first.receive_all_json()] == ["echo_reply"]
    finally:
        GATES.clear()

    ids = {
        line["path"]: line["connection_id"]
        for line in named(captured, "connection_authenticated")
    }
    assert len(set(ids.values())) == 2
    expected = {
        "il-a": (ids["/log/il-a/"], "echo"),
        "il-b": (ids["/log/il-b/"], "ping"),
    }
    app_lines = [line for line in captured if line["event"].startswith("app_")]
    assert len(app_lines) == 4
    for line in app_lines:
        assert (line["connection_id"], line["action"]) == expected[line["room"]]


async def test_handler_failure_is_one_json_line_with_its_traceback(
    capsys: pytest.CaptureFixture[str],
    chanx_communicator_factory: Factory,
    use_hooks: UseHooks,
) -> None:
    configure_logging(json=True)
    use_hooks(LogContextHooks(TelemetryConfig()))
    ws = await open_ws(chanx_communicator_factory, "/log/boom/")
    await ws.send_message(FailMessage())
    assert [f["action"] for f in await ws.receive_all_json()] == ["error"]
    lines = json_lines(capsys.readouterr().out)
    [handling] = named(lines, "app_handling")
    [failed] = named(lines, "message_handler_failed")
    assert (failed["level"], failed["logger"]) == ("error", "chanx.consumer")
    assert failed["action"] == "fail"
    assert failed["connection_id"] == handling["connection_id"]
    assert handling["route"] == "/log/<room>/"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert f"RuntimeError: {SECRET}" in failed["exception"]


# Stack info ---------------------------------------------------------------------


def test_stack_info_starts_at_the_caller(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    structlog.get_logger("chanx.demo").info("where", stack_info=True)
    [line] = json_lines(capsys.readouterr().out)
    assert "stack_info" not in line
    # The innermost frame is this test's call, not a chanx processor.
    *_, where, code = line["stack"].splitlines()
    assert where.endswith("in test_stack_info_starts_at_the_caller")
    assert code.strip().startswith('structlog.get_logger("chanx.demo")')
