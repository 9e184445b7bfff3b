"""Prometheus metrics for chanx consumers.

:class:`ChanxMetrics` defines every ``chanx_*`` metric once on a registry;
:func:`get_metrics` hands out one instance per registry, so building the hooks
twice never registers a metric twice. :class:`chanx.telemetry.metric_hooks.MetricsHooks`
turns hook calls into samples. Every label value is bounded: consumer class names, declared
actions and handlers, small fixed sets, and group names reduced to templates.

Gauges use live multiprocess modes, so under ``PROMETHEUS_MULTIPROC_DIR`` a
dead worker's open connections drop out once it is marked dead (see
:mod:`chanx.telemetry.exposition`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from chanx.telemetry.naming import BoundedNames

__all__ = ["ChanxMetrics", "get_metrics"]

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
        self.readiness_checks = self._counter(
            "chanx_readiness_checks", "/readyz results, by outcome.", ["outcome"]
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
