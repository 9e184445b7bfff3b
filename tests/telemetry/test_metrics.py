"""Prometheus metrics recorded while real consumers run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from prometheus_client import CollectorRegistry

from chanx.hooks import ConnectionInfo, ConsumerHooks
from chanx.messages.incoming import PingMessage
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.metric_hooks import MetricsHooks
from chanx.telemetry.metrics import ChanxMetrics, get_metrics
from chanx.testing import WebsocketCommunicator
from tests.app.consumers import RoomConsumer
from tests.app.helpers import Factory, make_user, open_rejected, open_ws, token_header
from tests.app.messages import (
    BroadcastMessage,
    BroadcastPayload,
    FailEvent,
    NotifyEvent,
    NotifyPayload,
)
from tests.app.routing import router

ROOM = {"consumer": "RoomConsumer"}


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ChanxMetrics:
    return get_metrics(registry)


@pytest.fixture
def hooks(
    metrics: ChanxMetrics, use_hooks: Callable[[ConsumerHooks], None]
) -> MetricsHooks:
    installed = MetricsHooks(metrics, TelemetryConfig())
    use_hooks(installed)
    return installed


@pytest.fixture
def value(registry: CollectorRegistry) -> Callable[..., float]:
    """``value(name, **labels)``: a sample's value, 0 when it does not exist."""

    def read(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    return read


def label_values(registry: CollectorRegistry, sample: str, label: str) -> set[str]:
    return {
        s.labels[label]
        for family in registry.collect()
        for s in family.samples
        if s.name == sample
    }


async def settle(ws: WebsocketCommunicator) -> None:
    """Wait until the consumer has finished everything it was doing."""
    await ws.send_message(PingMessage())
    assert await ws.receive_all_json() == [{"action": "pong", "payload": None}]


def conn(consumer: str = "DirectConsumer") -> ConnectionInfo:
    return ConnectionInfo("c1", consumer, "/ws/x/1/", "/ws/x/<pk>/")


# Connections ------------------------------------------------------------------


@pytest.mark.usefixtures("hooks")
async def test_accepted_connections_are_active_until_closed(
    chanx_communicator_factory: Factory, value: Callable[..., float]
) -> None:
    first = await open_ws(chanx_communicator_factory, "/ws/room/m-conn/")
    second = await open_ws(chanx_communicator_factory, "/ws/room/m-conn/")
    await settle(first)
    await settle(second)
    assert value("chanx_connections_opened_total", **ROOM) == 2
    assert value("chanx_connections_active", **ROOM) == 2
    assert value("chanx_connect_duration_seconds_count", **ROOM) == 2

    await first.disconnect(code=1001)
    assert value("chanx_connections_active", **ROOM) == 1
    await second.disconnect(code=4000)
    assert value("chanx_connections_active", **ROOM) == 0
    assert value("chanx_connections_closed_total", **ROOM, code_class="1xxx") == 1
    assert value("chanx_connections_closed_total", **ROOM, code_class="4xxx") == 1
    assert value("chanx_connection_duration_seconds_count", **ROOM) == 2
    assert value("chanx_connections_rejected_total", **ROOM, reason="error") == 0


@pytest.mark.usefixtures("hooks")
@pytest.mark.parametrize(
    ("path", "consumer", "reason", "code"),
    [
        ("/ws/token/m/", "TokenOnlyConsumer", "401", 4401),
        ("/ws/session/m/", "SessionOnlyConsumer", "403", 4403),
        ("/ws/broken-auth/m/", "BrokenAuthConsumer", "error", 4500),
    ],
)
async def test_rejected_handshakes_are_counted_by_reason_and_never_active(
    chanx_communicator_factory: Factory,
    value: Callable[..., float],
    path: str,
    consumer: str,
    reason: str,
    code: int,
) -> None:
    ws, _ = await open_rejected(chanx_communicator_factory, path)
    await ws.assert_closed(code=code)
    # What a server does after the close: report the disconnect.
    await ws.disconnect(code=code)
    labels = {"consumer": consumer}
    assert value("chanx_connections_rejected_total", **labels, reason=reason) == 1
    assert value("chanx_connections_opened_total", **labels) == 0
    assert value("chanx_connections_active", **labels) == 0
    assert value("chanx_connections_closed_total", **labels, code_class="4xxx") == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hooks")
async def test_missing_object_is_rejected_as_404(
    chanx_communicator_factory: Factory, value: Callable[..., float]
) -> None:
    _, key = await make_user("metrics-404")
    path = "/ws/users/999999/"
    ws, frame = await open_rejected(chanx_communicator_factory, path, token_header(key))
    assert frame["payload"]["status_code"] == 404
    await ws.assert_closed(code=4404)
    labels = {"consumer": "UserObjectConsumer", "reason": "404"}
    assert value("chanx_connections_rejected_total", **labels) == 1


@pytest.mark.parametrize("reason", ["client_gone", "send_timeout"])
def test_a_client_dropped_mid_handshake_is_counted_as_such(
    hooks: MetricsHooks, value: Callable[..., float], reason: str
) -> None:
    info = conn()
    hooks.connection_started(info, {}).finish("rejected", reason)
    labels = {"consumer": "DirectConsumer"}
    assert value("chanx_connections_rejected_total", **labels, reason=reason) == 1
    assert value("chanx_connections_rejected_total", **labels, reason="error") == 0


def test_connect_raising_is_an_error_rejection(
    hooks: MetricsHooks, value: Callable[..., float]
) -> None:
    info = conn()
    hooks.connection_started(info, {}).finish("error", "RuntimeError", RuntimeError())
    hooks.connection_closed(info, 1011)
    labels = {"consumer": "DirectConsumer"}
    assert value("chanx_connections_rejected_total", **labels, reason="error") == 1
    assert value("chanx_connections_active", **labels) == 0
    assert value("chanx_connections_closed_total", **labels, code_class="1xxx") == 1


@pytest.mark.parametrize(
    ("code", "code_class"),
    [(999, "0xxx"), (3000, "3xxx"), (-1, "0xxx"), (20000, "9xxx")],
)
def test_close_code_classes_are_clamped(
    hooks: MetricsHooks, value: Callable[..., float], code: int, code_class: str
) -> None:
    hooks.connection_closed(conn(), code)
    labels = {"consumer": "DirectConsumer", "code_class": code_class}
    assert value("chanx_connections_closed_total", **labels) == 1


# Client frames ----------------------------------------------------------------


@pytest.mark.usefixtures("hooks")
@pytest.mark.parametrize(
    ("text", "action", "error_type"),
    [
        ('{"action": "ping"}', "ping", None),
        ("{not json", "unknown", "decode"),
        ('{"action": "add", "payload": {"a": "x", "b": 1}}', "add", "validation"),
        ('{"action": "fail"}', "fail", "handler"),
    ],
)
async def test_client_frames_are_counted_timed_and_sized(
    chanx_communicator_factory: Factory,
    value: Callable[..., float],
    text: str,
    action: str,
    error_type: str | None,
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/m-msg/")
    await ws.send_to(text_data=text)
    await ws.receive_all_json()
    labels = {**ROOM, "action": action}
    outcome = "ok" if error_type is None else "error"
    assert value("chanx_messages_received_total", **labels, outcome=outcome) == 1
    assert value("chanx_message_handling_duration_seconds_count", **labels) == 1
    assert value("chanx_message_size_bytes_sum", **ROOM, direction="in") == len(text)
    errors = value("chanx_message_errors_total", **labels, error_type=error_type or "")
    assert errors == (0 if error_type is None else 1)


@pytest.mark.usefixtures("hooks")
async def test_sent_frames_are_counted_by_action(
    chanx_communicator_factory: Factory, value: Callable[..., float]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/m-sent/")
    await settle(ws)
    await settle(ws)
    assert value("chanx_messages_sent_total", **ROOM, action="pong") == 2
    assert value("chanx_messages_sent_total", **ROOM, action="authentication") == 1
    # authentication + 2 x (pong + complete)
    assert value("chanx_message_size_bytes_count", **ROOM, direction="out") == 5


# Groups and events -------------------------------------------------------------


@pytest.mark.usefixtures("hooks")
async def test_group_message_is_sent_and_delivered(
    chanx_communicator_factory: Factory, value: Callable[..., float]
) -> None:
    sender = await open_ws(chanx_communicator_factory, "/ws/room/g7/")
    receiver = await open_ws(chanx_communicator_factory, "/ws/room/g7/")
    await sender.send_message(BroadcastMessage(payload=BroadcastPayload(text="hi")))
    await sender.receive_all_json()
    [frame] = await receiver.receive_all_json(wait_group=True)
    assert frame["payload"] == "hi"
    await settle(receiver)
    sends = {"group_template": "room_{id}", "outcome": "ok"}
    assert value("chanx_group_sends_total", **sends) == 1
    assert value("chanx_group_send_duration_seconds_count", kind="group_message") == 1
    # exclude_current: only the receiver got it.
    assert value("chanx_group_messages_delivered_total", **ROOM) == 1
    assert value("chanx_events_sent_total", handler="chat_group") == 0


def test_only_group_messages_handled_ok_count_as_delivered(
    hooks: MetricsHooks, value: Callable[..., float]
) -> None:
    first = ConnectionInfo("c1", "RoomConsumer", "/ws/room/a/", "/ws/room/<id>/")
    second = ConnectionInfo("c2", "RoomConsumer", "/ws/room/b/", "/ws/room/<id>/")
    # Two members of a group, both open before either finishes.
    one = hooks.deliver(first, "group_message", "chat", {})
    two = hooks.deliver(second, "group_message", "chat", {})
    one.finish("ok")
    two.finish("error", "handler", RuntimeError("boom"))
    hooks.deliver(first, "group_message", "chat", {}).finish("ok")
    assert value("chanx_group_messages_delivered_total", **ROOM) == 2
    # A group message is not an event: no event samples.
    assert (
        value("chanx_events_received_total", **ROOM, handler="chat", outcome="ok") == 0
    )


@pytest.mark.usefixtures("hooks")
async def test_channel_event_is_sent_received_and_lag_measured(
    chanx_communicator_factory: Factory, value: Callable[..., float]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/ev9/")
    before = time.time()
    event = NotifyEvent(payload=NotifyPayload(content="c"))
    await RoomConsumer.asend_channel_event("room_ev9", event)
    [frame] = await ws.receive_all_json()
    elapsed = time.time() - before
    assert frame["action"] == "event_received"
    assert value("chanx_events_sent_total", handler="notify") == 1
    assert value("chanx_group_send_duration_seconds_count", kind="event") == 1
    sends = {"group_template": "room_{id}", "outcome": "ok"}
    assert value("chanx_group_sends_total", **sends) == 1
    received = {**ROOM, "handler": "notify"}
    assert value("chanx_events_received_total", **received, outcome="ok") == 1
    assert value("chanx_event_handling_duration_seconds_count", **received) == 1
    assert value("chanx_event_delivery_lag_seconds_count", handler="notify") == 1
    lag = value("chanx_event_delivery_lag_seconds_sum", handler="notify")
    assert 0 <= lag <= elapsed


@pytest.mark.usefixtures("hooks")
async def test_failing_event_handler_is_an_error_outcome(
    chanx_communicator_factory: Factory, value: Callable[..., float]
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/evf1/")
    await RoomConsumer.asend_channel_event("room_evf1", FailEvent())
    await ws.receive_all_json()
    received = {**ROOM, "handler": "fail_event"}
    assert value("chanx_events_received_total", **received, outcome="error") == 1
    assert value("chanx_events_received_total", **received, outcome="ok") == 0


@pytest.mark.parametrize(
    ("sent_at", "observed"),
    [
        (lambda: str(time.time() - 3), (3.0, 4.0)),
        (lambda: str(time.time() + 60), (0.0, 0.0)),  # producer clock ahead
        (lambda: "garbled", None),
        (lambda: "nan", None),
        (None, None),
    ],
)
def test_event_lag_uses_the_producer_timestamp(
    hooks: MetricsHooks,
    value: Callable[..., float],
    sent_at: Callable[[], str] | None,
    observed: tuple[float, float] | None,
) -> None:
    carrier = {} if sent_at is None else {"sent_at": sent_at()}
    hooks.deliver(conn(), "event", "notify", carrier).finish("ok")
    count = value("chanx_event_delivery_lag_seconds_count", handler="notify")
    if observed is None:
        assert count == 0
        return
    assert count == 1
    low, high = observed
    assert (
        low <= value("chanx_event_delivery_lag_seconds_sum", handler="notify") <= high
    )


def test_publish_writes_sent_at_for_events_only(hooks: MetricsHooks) -> None:
    event_carrier: dict[str, str] = {}
    hooks.publish(None, "event", "notify", ["g"], event_carrier).finish("ok")
    assert abs(float(event_carrier["sent_at"]) - time.time()) < 5
    message_carrier: dict[str, str] = {}
    hooks.publish(None, "group_message", "chat", ["g"], message_carrier).finish("ok")
    assert message_carrier == {}


# Channel-layer failures ----------------------------------------------------------


@pytest.fixture
def layer() -> Iterator[Any]:
    channel_layer = get_channel_layer()
    assert channel_layer is not None
    yield channel_layer
    # Undo instance attributes set by a test; the class methods come back.
    for name in ("group_add", "group_send"):
        channel_layer.__dict__.pop(name, None)


@pytest.mark.usefixtures("hooks")
async def test_full_channel_on_group_send_is_a_layer_error(
    chanx_communicator_factory: Factory, value: Callable[..., float], layer: Any
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/full1/")

    async def full(group: str, message: dict[str, Any]) -> None:
        raise ChannelFull()

    layer.group_send = full
    await ws.send_message(BroadcastMessage(payload=BroadcastPayload(text="x")))
    [error] = await ws.receive_all_json()
    assert error["action"] == "error"
    errors = {"operation": "group_send", "error_type": "ChannelFull"}
    assert value("chanx_channel_layer_errors_total", **errors) == 1
    sends = {"group_template": "room_{id}", "outcome": "error"}
    assert value("chanx_group_sends_total", **sends) == 1
    # The sender is told its group send failed (chanx.faults.GroupSendError).
    assert error["payload"][0]["type"] == "group_send_failed"
    failed = {**ROOM, "action": "broadcast", "error_type": "group_send_failed"}
    assert value("chanx_message_errors_total", **failed) == 1


@pytest.mark.usefixtures("hooks")
async def test_failed_group_join_is_a_layer_error_and_a_rejection(
    chanx_communicator_factory: Factory, value: Callable[..., float], layer: Any
) -> None:
    async def down(group: str, channel: str) -> None:
        raise ConnectionError("layer down")

    layer.group_add = down
    ws, frame = await open_rejected(chanx_communicator_factory, "/ws/room/down1/")
    assert frame["payload"]["status_code"] == 500
    await ws.assert_closed(code=4500)
    await ws.disconnect(code=4500)
    errors = {"operation": "group_add", "error_type": "ConnectionError"}
    assert value("chanx_channel_layer_errors_total", **errors) == 1
    assert value("chanx_connections_rejected_total", **ROOM, reason="error") == 1


# Label bounds -----------------------------------------------------------------


def letters(number: int) -> str:
    """A digit-free name per number, so the default template keeps it whole."""
    return "".join(chr(ord("a") + int(digit)) for digit in str(number))


@pytest.mark.usefixtures("hooks")
async def test_group_labels_are_templates(
    chanx_communicator_factory: Factory, registry: CollectorRegistry
) -> None:
    ws = await open_ws(chanx_communicator_factory, "/ws/room/tpl/")
    groups = [f"chat_{n}" for n in range(150)]
    payload = BroadcastPayload(text="x", groups=groups)
    await ws.send_message(BroadcastMessage(payload=payload))
    await ws.receive_all_json()
    seen = label_values(registry, "chanx_group_sends_total", "group_template")
    assert seen == {"chat_{id}"}
    sends = {"group_template": "chat_{id}", "outcome": "ok"}
    assert registry.get_sample_value("chanx_group_sends_total", sends) == 150


async def test_free_form_group_names_are_capped(
    chanx_communicator_factory: Factory,
    registry: CollectorRegistry,
    metrics: ChanxMetrics,
    use_hooks: Callable[[ConsumerHooks], None],
) -> None:
    # A template that lets raw names through: the cap still holds.
    use_hooks(MetricsHooks(metrics, TelemetryConfig(group_template=str)))
    ws = await open_ws(chanx_communicator_factory, "/ws/room/cap/")
    groups = [f"lobby-{letters(n)}" for n in range(150)]
    payload = BroadcastPayload(text="x", groups=groups)
    await ws.send_message(BroadcastMessage(payload=payload))
    await ws.receive_all_json()
    seen = label_values(registry, "chanx_group_sends_total", "group_template")
    assert len(seen) == 101
    assert "other" in seen
    assert seen - {"other"} <= set(groups)
    sends = {"group_template": "other", "outcome": "ok"}
    assert registry.get_sample_value("chanx_group_sends_total", sends) == 50


# Registry -----------------------------------------------------------------------


def test_metrics_are_created_once_per_registry(registry: CollectorRegistry) -> None:
    metrics = get_metrics(registry)
    assert get_metrics(registry) is metrics
    # Two hooks on one registry share the metrics instead of failing.
    MetricsHooks(get_metrics(registry), TelemetryConfig())
    MetricsHooks(get_metrics(registry), TelemetryConfig())
    assert get_metrics(CollectorRegistry()) is not metrics


def test_build_info_names_version_and_channel_layer(
    metrics: ChanxMetrics, value: Callable[..., float], settings: Any
) -> None:
    from importlib.metadata import version

    metrics.set_build_info()
    labels = {"version": version("chanx"), "channel_layer": "InMemoryChannelLayer"}
    assert value("chanx_build_info", **labels) == 1
    settings.CHANNEL_LAYERS = {}
    metrics.set_build_info()
    assert value("chanx_build_info", **labels) == 0
    assert (
        value("chanx_build_info", version=labels["version"], channel_layer="none") == 1
    )


def test_telemetry_errors_are_counted_by_signal(
    metrics: ChanxMetrics, value: Callable[..., float]
) -> None:
    metrics.telemetry_error("traces")
    metrics.telemetry_error("traces")
    metrics.telemetry_error("export")
    assert value("chanx_telemetry_errors_total", signal="traces") == 2
    assert value("chanx_telemetry_errors_total", signal="export") == 1
