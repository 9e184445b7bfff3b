"""Prometheus metrics for chanx consumers.

:class:`ChanxMetrics` defines every ``chanx_*`` metric once on a registry;
:func:`get_metrics` hands out one instance per registry, so building the hooks
twice never registers a metric twice. :class:`MetricsHooks` turns hook calls
into samples. Every label value is bounded: consumer class names, declared
actions and handlers, small fixed sets, and group names reduced to templates.

Gauges use live multiprocess modes, so under ``PROMETHEUS_MULTIPROC_DIR`` a
dead worker's open connections drop out once it is marked dead (see
:mod:`chanx.telemetry.exposition`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from chanx.hooks import ConnectionInfo, Observation
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.naming import BoundedNames

__all__ = ["ChanxMetrics", "MetricsHooks", "get_metrics"]

#: The carrier key publish writes for the event delivery lag.
_SENT_AT = "sent_at"
#: ``conn.state`` key: this connection was counted in ``connections_active``.
_ACTIVE = "metrics.active"

_HANDSHAKE_REASONS = frozenset({"401", "403", "404"})
# Histogram buckets: seconds (fast operations, lags, connection lifetimes), bytes.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LONG = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
_BYTES = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)

# Label names.
_C = ("consumer",)
_CA = ("consumer", "action")
_CH = ("consumer", "handler")
_H = ("handler",)
_C_REASON = ("consumer", "reason")
_C_CODE = ("consumer", "code_class")
_C_DIRECTION = ("consumer", "direction")
_CA_OUTCOME = ("consumer", "action", "outcome")
_CA_ERROR = ("consumer", "action", "error_type")
_CH_OUTCOME = ("consumer", "handler", "outcome")
_GROUP_OUTCOME = ("group_template", "outcome")
_OPERATION_ERROR = ("operation", "error_type")

_M = TypeVar("_M", bound=MetricWrapperBase)


class ChanxMetrics:
    """All chanx metrics, registered once on ``registry``.

    Use :func:`get_metrics` rather than building this twice on one registry
    (prometheus_client refuses duplicate names).

    Args:
        registry: Where the metrics live (default: prometheus_client's global
            ``REGISTRY``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        # Raw group names hold ids; templates are capped per registry, so two
        # hooks on one registry share the cap.
        self.group_names = BoundedNames(100)
        self._define_connections()
        self._define_messages()
        self._define_channel_layer()
        self.build_info = Gauge(
            "chanx_build_info",
            "Always 1; the chanx version and channel layer class as labels.",
            ["version", "channel_layer"],
            registry=self.registry,
            # One value per label set across workers, and none for dead ones.
            multiprocess_mode="livemax",
        )
        self.telemetry_errors = self._counter(
            "chanx_telemetry_errors", "Failures inside chanx telemetry.", ["signal"]
        )

    def _counter(self, name: str, doc: str, labels: Sequence[str]) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _histogram(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(name, doc, labels, registry=self.registry, buckets=buckets)

    def _define_connections(self) -> None:
        counter, histogram = self._counter, self._histogram
        self.connections_active = Gauge(
            "chanx_connections_active",
            "Open connections whose handshake was accepted.",
            _C,
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.connections_opened = counter(
            "chanx_connections_opened", "Handshakes accepted.", _C
        )
        self.connections_rejected = counter(
            "chanx_connections_rejected", "Handshakes refused or failed.", _C_REASON
        )
        self.connections_closed = counter(
            "chanx_connections_closed", "Sockets closed, by close code class.", _C_CODE
        )
        self.connection_duration = histogram(
            "chanx_connection_duration_seconds", "Handshake to close.", _C, _LONG
        )
        self.connect_duration = histogram(
            "chanx_connect_duration_seconds", "Handshake duration.", _C, _FAST
        )

    def _define_messages(self) -> None:
        counter, histogram = self._counter, self._histogram
        self.messages_received = counter(
            "chanx_messages_received", "Client frames handled.", _CA_OUTCOME
        )
        self.messages_sent = counter("chanx_messages_sent", "Frames sent.", _CA)
        self.message_handling_duration = histogram(
            "chanx_message_handling_duration_seconds", "Frame handling.", _CA, _FAST
        )
        self.message_errors = counter(
            "chanx_message_errors", "Client frames that failed.", _CA_ERROR
        )
        self.message_size = histogram(
            "chanx_message_size_bytes", "Frame size (UTF-8).", _C_DIRECTION, _BYTES
        )

    def _define_channel_layer(self) -> None:
        counter, histogram = self._counter, self._histogram
        self.group_sends = counter(
            "chanx_group_sends", "Group sends, one per target group.", _GROUP_OUTCOME
        )
        self.group_send_duration = histogram(
            "chanx_group_send_duration_seconds", "Whole publish.", ("kind",), _FAST
        )
        self.group_messages_delivered = counter(
            "chanx_group_messages_delivered", "Group messages relayed.", _C
        )
        self.channel_layer_errors = counter(
            "chanx_channel_layer_errors", "Failed layer operations.", _OPERATION_ERROR
        )
        self.events_sent = counter("chanx_events_sent", "Events published.", _H)
        self.events_received = counter(
            "chanx_events_received", "Events handled.", _CH_OUTCOME
        )
        self.event_handling_duration = histogram(
            "chanx_event_handling_duration_seconds", "Event handling.", _CH, _FAST
        )
        self.event_delivery_lag = histogram(
            "chanx_event_delivery_lag_seconds", "Publish to arrival.", _H, _LAG
        )

    def set_build_info(self) -> None:
        """Set ``chanx_build_info`` from the installed package and Django settings.

        Separate from ``__init__`` so metrics can exist before Django is set up;
        calling it again replaces the previous labels.
        """
        self.build_info.clear()
        self.build_info.labels(_chanx_version(), _channel_layer_name()).set(1)

    def telemetry_error(self, signal: str) -> None:
        """Count a telemetry failure; ``signal`` is traces, metrics, logs or export."""
        self.telemetry_errors.labels(signal).inc()


def _chanx_version() -> str:
    try:
        return version("chanx")
    except PackageNotFoundError:
        return "unknown"


def _channel_layer_name() -> str:
    from django.conf import settings

    try:
        backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    except Exception:
        # No CHANNEL_LAYERS, no default alias, or settings not configured.
        return "none"
    return str(backend).rsplit(".", 1)[-1]


_instances: dict[CollectorRegistry, ChanxMetrics] = {}
_instances_lock = threading.Lock()


def get_metrics(registry: CollectorRegistry | None = None) -> ChanxMetrics:
    """The :class:`ChanxMetrics` of ``registry``, created on first use.

    Args:
        registry: Default: prometheus_client's global ``REGISTRY``.
    """
    reg = REGISTRY if registry is None else registry
    with _instances_lock:
        metrics = _instances.get(reg)
        if metrics is None:
            metrics = _instances[reg] = ChanxMetrics(reg)
        return metrics


class _Children(Generic[_M]):
    """Caches label children: ``labels()`` locks and builds a key on each call."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            # A race builds the same child twice; labels() returns one object.
            child = self._children[values] = self._metric.labels(*values)
        return child


class _Timed:
    """An observation that reports its elapsed time to ``done`` on finish."""

    __slots__ = ("_args", "_done", "_start")

    def __init__(self, done: Callable[..., None], *args: Any) -> None:
        self._done = done
        self._args = args
        self._start = time.perf_counter()

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        elapsed = time.perf_counter() - self._start
        self._done(elapsed, outcome, error_type, *self._args)


def _outcome(outcome: str) -> str:
    return "ok" if outcome == "ok" else "error"


def _code_class(code: int) -> str:
    """``1000`` -> ``"1xxx"``, ``4401`` -> ``"4xxx"``; out of range is clamped."""
    return f"{min(max(code // 1000, 0), 9)}xxx"


def _reject_reason(outcome: str, error_type: str | None) -> str:
    """The ``reason`` label of a handshake that was not accepted."""
    if outcome == "rejected" and error_type in _HANDSHAKE_REASONS:
        return error_type
    return "error"


def _event_lag(carrier: Mapping[str, str]) -> float | None:
    """Seconds since the producer's ``sent_at``, or ``None`` if absent or garbled."""
    try:
        sent_at = float(carrier[_SENT_AT])
    except (KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(sent_at):
        return None
    # Clocks of producer and consumer hosts may differ slightly.
    return max(time.time() - sent_at, 0.0)


class MetricsHooks:
    """:class:`chanx.hooks.ConsumerHooks` that record Prometheus metrics.

    Args:
        metrics: Usually ``get_metrics(registry)``.
        config: For ``group_template``.
    """

    def __init__(self, metrics: ChanxMetrics, config: TelemetryConfig) -> None:
        self.metrics = metrics
        self.config = config
        m = metrics
        self._active = _Children(m.connections_active)
        self._opened = _Children(m.connections_opened)
        self._rejected = _Children(m.connections_rejected)
        self._closed = _Children(m.connections_closed)
        self._conn_duration = _Children(m.connection_duration)
        self._connect_duration = _Children(m.connect_duration)
        self._received = _Children(m.messages_received)
        self._sent = _Children(m.messages_sent)
        self._handling = _Children(m.message_handling_duration)
        self._msg_errors = _Children(m.message_errors)
        self._size = _Children(m.message_size)
        self._group_sends = _Children(m.group_sends)
        self._send_duration = _Children(m.group_send_duration)
        self._delivered = _Children(m.group_messages_delivered)
        self._layer_errors = _Children(m.channel_layer_errors)
        self._events_sent = _Children(m.events_sent)
        self._events_received = _Children(m.events_received)
        self._event_handling = _Children(m.event_handling_duration)
        self._event_lag = _Children(m.event_delivery_lag)

    def group_label(self, group: str) -> str:
        """The bounded ``group_template`` label of a raw group name."""
        return self.metrics.group_names(self.config.group_template(group))

    # Connections ---------------------------------------------------------

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        return _Timed(self._handshake_done, conn)

    def _handshake_done(
        self, elapsed: float, outcome: str, error_type: str | None, conn: ConnectionInfo
    ) -> None:
        consumer = conn.consumer
        self._connect_duration(consumer).observe(elapsed)
        if outcome == "accepted":
            self._opened(consumer).inc()
            self._active(consumer).inc()
            conn.state[_ACTIVE] = True
        else:
            self._rejected(consumer, _reject_reason(outcome, error_type)).inc()

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        consumer = conn.consumer
        # Only connections counted as active are taken off again.
        if conn.state.pop(_ACTIVE, False):
            self._active(consumer).dec()
        self._closed(consumer, _code_class(code)).inc()
        duration = max(time.monotonic() - conn.opened_at, 0.0)
        self._conn_duration(consumer).observe(duration)

    # Client frames -------------------------------------------------------

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        self._size(conn.consumer, "in").observe(size)
        return _Timed(self._message_done, conn.consumer, action)

    def _message_done(
        self,
        elapsed: float,
        outcome: str,
        error_type: str | None,
        consumer: str,
        action: str,
    ) -> None:
        label = _outcome(outcome)
        self._received(consumer, action, label).inc()
        self._handling(consumer, action).observe(elapsed)
        if label == "error":
            self._msg_errors(consumer, action, error_type or "handler").inc()

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        self._sent(conn.consumer, action).inc()
        self._size(conn.consumer, "out").observe(size)

    # Channel layer -------------------------------------------------------

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        if kind == "event":
            carrier[_SENT_AT] = repr(time.time())
        return _Timed(self._publish_done, kind, name, tuple(groups))

    def _publish_done(
        self,
        elapsed: float,
        outcome: str,
        error_type: str | None,
        kind: str,
        name: str,
        groups: tuple[str, ...],
    ) -> None:
        label = _outcome(outcome)
        for group in groups:
            self._group_sends(self.group_label(group), label).inc()
        self._send_duration(kind).observe(elapsed)
        if label == "error":
            self._layer_errors("group_send", error_type or "Exception").inc()
        elif kind == "event":
            self._events_sent(name).inc()

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        if kind == "event":
            lag = _event_lag(carrier)
            if lag is not None:
                self._event_lag(name).observe(lag)
        return _Timed(self._deliver_done, conn.consumer, kind, name)

    def _deliver_done(
        self,
        elapsed: float,
        outcome: str,
        error_type: str | None,
        consumer: str,
        kind: str,
        name: str,
    ) -> None:
        if kind == "event":
            self._events_received(consumer, name, _outcome(outcome)).inc()
            self._event_handling(consumer, name).observe(elapsed)
        elif outcome == "ok":
            self._delivered(consumer).inc()

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        self._layer_errors(operation, type(exc).__name__).inc()
