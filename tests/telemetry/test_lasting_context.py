"""What a server keeps from the accept: the log context and span ids, not the span.

uvicorn arms its keepalive timer while it handles ``websocket.accept`` and
re-arms it from that timer's context until the connection closes, so the
context of the accept lives as long as the connection. The servers below do
what uvicorn does: they keep ``contextvars.copy_context()`` of that moment.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from channels.routing import URLRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from chanx.hooks import ConsumerHooks, NoopHooks
from chanx.messages.incoming import PingMessage
from chanx.telemetry.composite import TelemetryHooks
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.install import build_hooks
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, open_ws
from tests.app.routing import websocket_urlpatterns

UseHooks = Callable[[ConsumerHooks], None]

#: Set by the consumer before it accepts: the server must see it.
USER_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("user_var")


class MarkingConsumer(RoomConsumer):
    """Sets a context variable of its own, then accepts as usual."""

    async def connect(self) -> None:
        USER_VAR.set("set in connect")
        await super().connect()


class KeepingServer:
    """Keeps the context each ``websocket.accept`` was sent in, as uvicorn does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.kept: list[contextvars.Context] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def keeping_send(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.accept":
                self.kept.append(contextvars.copy_context())
            await send(message)

        await self.app(scope, receive, keeping_send)


@pytest.fixture
def server() -> KeepingServer:
    from django.urls import path

    return KeepingServer(
        URLRouter(
            [
                path("ws/marking/<str:room>/", MarkingConsumer.as_asgi()),
                *websocket_urlpatterns,
            ]
        )
    )


@pytest.fixture
def chanx_router(server: KeepingServer) -> Any:
    return server


def _telemetry(provider: TracerProvider) -> TelemetryHooks:
    hooks = build_hooks(
        TelemetryConfig(), registry=CollectorRegistry(), tracer_provider=provider
    )
    assert hooks is not None
    return hooks


def _in(context: contextvars.Context) -> tuple[trace.Span, dict[str, Any]]:
    """The current span and structlog's bound values in ``context``."""
    return context.run(
        lambda: (trace.get_current_span(), structlog.contextvars.get_contextvars())
    )


async def _open_settled(factory: Factory, path: str) -> None:
    ws = await open_ws(factory, path)
    # One message at a time: the pong means the handshake is over.
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


def _connect_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("connect")]
    return span


async def test_the_kept_context_has_the_connect_span_ids_but_not_the_span(
    chanx_communicator_factory: Factory,
    use_hooks: UseHooks,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    server: KeepingServer,
) -> None:
    use_hooks(_telemetry(provider))
    await _open_settled(chanx_communicator_factory, "/ws/room/kept/")

    connect = _connect_span(exporter)
    [kept] = server.kept
    span, bound = _in(kept)
    # Lines the server logs there, and spans it starts there, still point at
    # the handshake's span...
    assert span.get_span_context() == connect.get_span_context()
    attributes = dict(connect.attributes or {})
    assert bound["connection_id"] == attributes["chanx.connection_id"]
    assert bound["route"] == "/ws/room/<room>/"
    # ...but the ended span and what it recorded are not held for the
    # connection's whole life.
    assert not isinstance(span, ReadableSpan)
    assert not span.is_recording()


async def test_the_kept_context_has_what_the_consumer_set_before_accepting(
    chanx_communicator_factory: Factory,
    use_hooks: UseHooks,
    provider: TracerProvider,
    server: KeepingServer,
) -> None:
    use_hooks(_telemetry(provider))
    await open_ws(chanx_communicator_factory, "/ws/marking/user-var/")

    [kept] = server.kept
    assert kept.run(USER_VAR.get) == "set in connect"


async def test_without_telemetry_the_accept_runs_in_the_consumer_context(
    chanx_communicator_factory: Factory, server: KeepingServer
) -> None:
    await open_ws(chanx_communicator_factory, "/ws/marking/no-telemetry/")

    [kept] = server.kept
    assert kept.run(USER_VAR.get) == "set in connect"
    assert _in(kept)[0] is trace.INVALID_SPAN


class _BrokenLastingHooks(NoopHooks):
    def lasting_context(self) -> contextvars.Context:
        raise RuntimeError("lasting context exploded")


async def test_failing_hooks_leave_the_accept_in_the_consumer_context(
    chanx_communicator_factory: Factory, use_hooks: UseHooks, server: KeepingServer
) -> None:
    use_hooks(_BrokenLastingHooks())
    with capture_logs() as logs:
        await open_ws(chanx_communicator_factory, "/ws/marking/broken/")

    [kept] = server.kept
    assert kept.run(USER_VAR.get) == "set in connect"
    failed = [e for e in logs if e["event"] == "telemetry_hook_failed"]
    assert [e["hook"] for e in failed] == ["lasting_context"]


async def test_a_failing_lasting_context_is_counted_against_traces(
    chanx_communicator_factory: Factory, use_hooks: UseHooks, server: KeepingServer
) -> None:
    errors: list[str] = []

    def explode() -> contextvars.Context:
        raise RuntimeError("lasting context exploded")

    use_hooks(TelemetryHooks([], errors.append, explode))
    await open_ws(chanx_communicator_factory, "/ws/marking/counted/")

    assert errors == ["traces"]
    [kept] = server.kept
    assert kept.run(USER_VAR.get) == "set in connect"


def test_without_traces_there_is_no_lasting_context() -> None:
    config = TelemetryConfig(traces=False)
    hooks = build_hooks(config, registry=CollectorRegistry())
    assert hooks is not None
    assert hooks.lasting_context() is None
