"""The composite: every signal gets every call; one failing signal costs no other."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from chanx.hooks import ConnectionInfo, NoopHooks, Observation
from chanx.telemetry.composite import TelemetryHooks
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.metric_hooks import MetricsHooks
from chanx.telemetry.metrics import get_metrics
from chanx.testing import WebsocketCommunicator
from tests.app.asgi import application
from tests.app.hooks import RaisingHooks, RecordingHooks


def _conn() -> ConnectionInfo:
    return ConnectionInfo("c1", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")


def test_calls_reach_every_part_and_finish_in_reverse_order() -> None:
    order: list[str] = []

    class Part(RecordingHooks):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def message_received(self, *args: Any) -> Any:
            name = self.name

            class Obs:
                def finish(self, *a: Any) -> None:
                    order.append(name)

            order.append("begin " + name)
            return Obs()

    hooks = TelemetryHooks([("traces", Part("traces")), ("metrics", Part("metrics"))])
    hooks.message_received(_conn(), "ping", 10, {}).finish("ok")
    assert order == ["begin traces", "begin metrics", "metrics", "traces"]


def test_parts_that_override_only_some_hooks_get_those_calls() -> None:
    calls: list[str] = []

    class OnlyDeliver(NoopHooks):
        def deliver(self, *args: Any) -> Observation:
            calls.append("deliver")
            return super().deliver(*args)

    patched = NoopHooks()
    # A method set on the instance counts too (as test doubles do).
    patched.message_sent = lambda *args: calls.append("message_sent")  # type: ignore[method-assign]
    hooks = TelemetryHooks([("logs", OnlyDeliver()), ("metrics", patched)])
    hooks.deliver(_conn(), "group_message", "chat", {}).finish("ok")
    hooks.message_sent(_conn(), "chat", 20)
    hooks.message_received(_conn(), "ping", 10, {}).finish("ok")
    assert calls == ["deliver", "message_sent"]


def test_a_raising_part_is_logged_counted_and_the_others_still_record() -> None:
    counted: list[str] = []
    recorder = RecordingHooks()
    hooks = TelemetryHooks(
        [("traces", RaisingHooks()), ("metrics", recorder)], on_error=counted.append
    )
    with capture_logs() as logs:
        hooks.message_received(_conn(), "ping", 10, {}).finish("ok")
        hooks.message_sent(_conn(), "pong", 20)
    assert recorder.calls == [
        ("message_received", "ping", 10),
        ("message_sent", "c1", "pong"),
    ]
    assert recorder.finished == [("message", "ping", "ok", None, None)]
    assert counted == ["traces", "traces"]
    failures = [e for e in logs if e["event"] == "telemetry_hook_failed"]
    assert [(e["signal"], e["hook"]) for e in failures] == [
        ("traces", "message_received"),
        ("traces", "message_sent"),
    ]


def test_a_part_failing_to_finish_is_named_and_the_parts_before_it_finish() -> None:
    counted: list[str] = []
    traces, logs_part = RecordingHooks(), RecordingHooks()
    hooks = TelemetryHooks(
        [
            ("traces", traces),
            ("metrics", RaisingHooks(in_finish=True)),
            ("logs", logs_part),
        ],
        on_error=counted.append,
    )
    with capture_logs() as logs:
        hooks.deliver(_conn(), "group_message", "chat", {}).finish("ok")
    assert counted == ["metrics"]
    failures = [e for e in logs if e["event"] == "telemetry_hook_failed"]
    assert [(e["signal"], e["hook"]) for e in failures] == [
        ("metrics", "deliver.finish")
    ]
    # Reverse order: logs first, then (after metrics failed) traces.
    assert logs_part.finished == [("deliver", "chat", "ok", None, None)]
    assert traces.finished == [("deliver", "chat", "ok", None, None)]


def test_a_part_that_failed_to_begin_leaves_the_later_parts_named_right() -> None:
    counted: list[str] = []
    recorder = RecordingHooks()
    hooks = TelemetryHooks(
        [
            ("traces", RaisingHooks()),
            ("metrics", RaisingHooks(in_finish=True)),
            ("logs", recorder),
        ],
        on_error=counted.append,
    )
    with capture_logs() as logs:
        hooks.message_received(_conn(), "ping", 10, {}).finish("ok")
    # traces failed to begin (nothing of its to finish); metrics began and
    # failed to finish: each failure under its own signal's name.
    assert counted == ["traces", "metrics"]
    failures = [e for e in logs if e["event"] == "telemetry_hook_failed"]
    assert [(e["signal"], e["hook"]) for e in failures] == [
        ("traces", "message_received"),
        ("metrics", "message_received.finish"),
    ]
    assert recorder.finished == [("message", "ping", "ok", None, None)]


async def test_a_raising_signal_leaves_the_consumer_and_metrics_working(
    use_hooks: Any,
) -> None:
    registry = CollectorRegistry()
    metrics = get_metrics(registry)
    hooks = TelemetryHooks(
        [
            ("traces", RaisingHooks(in_finish=True)),
            ("metrics", MetricsHooks(metrics, TelemetryConfig())),
        ],
        on_error=metrics.telemetry_error,
    )
    use_hooks(hooks)
    communicator = WebsocketCommunicator(application, "/ws/room/composite/")
    assert (await communicator.connect())[0]
    await communicator.assert_authenticated_status_ok()
    await communicator.send_json_to({"action": "ping"})
    frames = await communicator.receive_all_json()
    assert frames[0] == {"action": "pong", "payload": None}
    await communicator.disconnect()
    received = registry.get_sample_value(
        "chanx_messages_received_total",
        {"consumer": "RoomConsumer", "action": "ping", "outcome": "ok"},
    )
    assert received == 1
    errors = registry.get_sample_value(
        "chanx_telemetry_errors_total", {"signal": "traces"}
    )
    assert errors is not None
    assert errors >= 2
