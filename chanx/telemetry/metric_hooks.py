"""Hook calls -> Prometheus samples, on the metrics of :mod:`chanx.telemetry.metrics`.

Label children are cached per hooks object (``labels()`` takes a lock and
builds a key per call); durations use ``time.perf_counter``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from prometheus_client.metrics import Gauge, MetricWrapperBase

from chanx.hooks import ConnectionInfo, Observation
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.metrics import ChanxMetrics
from chanx.telemetry.recorders import CounterRecorder, HistogramRecorder

__all__ = ["MetricsHooks"]

#: The carrier key publish writes for the event delivery lag.
_SENT_AT = "sent_at"
#: ``conn.state`` key: this connection was counted in ``connections_active``.
_ACTIVE = "metrics.active"

# Besides the HTTP-like statuses: a client that left mid-handshake, or
# stopped reading (chanx.faults.dropped_reason).
_HANDSHAKE_REASONS = frozenset(
    {"401", "403", "404", "503", "client_gone", "send_timeout"}
)

_R = TypeVar("_R")
_Add = Callable[[float], None]


class _Children(Generic[_R]):
    """Caches label children (``labels()`` locks and builds a key on each
    call), each wrapped once by ``wrap`` (a recorder, or left as is)."""

    __slots__ = ("_children", "_metric", "_wrap")

    def __init__(self, metric: MetricWrapperBase, wrap: Callable[[Any], _R]) -> None:
        self._metric = metric
        self._wrap = wrap
        self._children: dict[tuple[str, ...], _R] = {}

    def __call__(self, *values: str) -> _R:
        child = self._children.get(values)
        if child is None:
            # A race builds the same child twice; labels() returns one object.
            child = self._children[values] = self._wrap(self._metric.labels(*values))
        return child


def _gauge(child: Any) -> Gauge:
    return cast(Gauge, child)


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


class _FrameSamples:
    """The samples one consumer class and action's frames update, bound once."""

    __slots__ = ("_failed", "_handling", "_ok", "size_in")

    def __init__(
        self,
        size_in: _Add,
        ok: _Add,
        handling: _Add,
        failed: Callable[[str | None], None],
    ) -> None:
        self.size_in = size_in
        self._ok = ok
        self._handling = handling
        self._failed = failed

    def done(self, elapsed: float, outcome: str, error_type: str | None) -> None:
        """Count a frame handled in ``elapsed`` seconds (a :class:`_TimedFrame` end)."""
        if outcome == "ok":
            self._ok(1)
        else:
            self._failed(error_type)
        self._handling(elapsed)


class _TimedFrame:
    """:class:`_Timed` for a frame: holds its samples, not a bound method
    (one container object less in flight per frame)."""

    __slots__ = ("_samples", "_start")

    def __init__(self, samples: _FrameSamples) -> None:
        self._samples = samples
        self._start = time.perf_counter()

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        elapsed = time.perf_counter() - self._start
        self._samples.done(elapsed, outcome, error_type)


class _Delivered:
    """Counts one consumer class's delivered group messages as they finish ok.

    A group message's delivery records no duration, so the observation holds
    nothing per delivery: one instance serves every delivery of its class
    (a fan-out makes one per member), with no timer or label lookup each.
    """

    __slots__ = ("_inc",)

    def __init__(self, inc: _Add) -> None:
        self._inc = inc

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        if outcome == "ok":
            self._inc(1)


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
        self._active = _Children(m.connections_active, _gauge)
        self._opened = _Children(m.connections_opened, CounterRecorder)
        self._rejected = _Children(m.connections_rejected, CounterRecorder)
        self._closed = _Children(m.connections_closed, CounterRecorder)
        self._conn_duration = _Children(m.connection_duration, HistogramRecorder)
        self._connect_duration = _Children(m.connect_duration, HistogramRecorder)
        self._received = _Children(m.messages_received, CounterRecorder)
        self._sent = _Children(m.messages_sent, CounterRecorder)
        self._handling = _Children(m.message_handling_duration, HistogramRecorder)
        self._msg_errors = _Children(m.message_errors, CounterRecorder)
        self._size = _Children(m.message_size, HistogramRecorder)
        self._group_sends = _Children(m.group_sends, CounterRecorder)
        self._send_duration = _Children(m.group_send_duration, HistogramRecorder)
        self._delivered = _Children(m.group_messages_delivered, CounterRecorder)
        self._layer_errors = _Children(m.channel_layer_errors, CounterRecorder)
        self._events_sent = _Children(m.events_sent, CounterRecorder)
        self._events_received = _Children(m.events_received, CounterRecorder)
        self._event_handling = _Children(m.event_handling_duration, HistogramRecorder)
        self._event_lag = _Children(m.event_delivery_lag, HistogramRecorder)
        # A frame's samples per (consumer class, action), resolved once each.
        self._frames: dict[tuple[str, str], _FrameSamples] = {}
        self._sent_frames: dict[tuple[str, str], tuple[_Add, _Add]] = {}
        self._deliveries: dict[str, _Delivered] = {}

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
            self._opened(consumer).inc(1)
            self._active(consumer).inc()
            conn.state[_ACTIVE] = True
        else:
            self._rejected(consumer, _reject_reason(outcome, error_type)).inc(1)

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        consumer = conn.consumer
        # Only connections counted as active are taken off again.
        if conn.state.pop(_ACTIVE, False):
            self._active(consumer).dec()
        self._closed(consumer, _code_class(code)).inc(1)
        duration = max(time.monotonic() - conn.opened_at, 0.0)
        self._conn_duration(consumer).observe(duration)

    # Client frames -------------------------------------------------------

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        key = (conn.consumer, action)
        frames = self._frames.get(key) or self._new_frames(key)
        frames.size_in(size)
        return _TimedFrame(frames)

    def _new_frames(self, key: tuple[str, str]) -> _FrameSamples:
        consumer, action = key
        frames = self._frames[key] = _FrameSamples(
            size_in=self._size(consumer, "in").observe,
            ok=self._received(consumer, action, "ok").inc,
            handling=self._handling(consumer, action).observe,
            failed=functools.partial(self._message_failed, consumer, action),
        )
        return frames

    def _message_failed(
        self, consumer: str, action: str, error_type: str | None
    ) -> None:
        self._received(consumer, action, "error").inc(1)
        self._msg_errors(consumer, action, error_type or "handler").inc(1)

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        key = (conn.consumer, action)
        sent = self._sent_frames.get(key) or self._new_sent(key)
        sent[0](1)
        sent[1](size)

    def _new_sent(self, key: tuple[str, str]) -> tuple[_Add, _Add]:
        consumer, action = key
        sent = self._sent_frames[key] = (
            self._sent(consumer, action).inc,
            self._size(consumer, "out").observe,
        )
        return sent

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
            self._group_sends(self.group_label(group), label).inc(1)
        self._send_duration(kind).observe(elapsed)
        if label == "error":
            self._layer_errors("group_send", error_type or "Exception").inc(1)
        elif kind == "event":
            self._events_sent(name).inc(1)

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        if kind != "event":
            consumer = conn.consumer
            return self._deliveries.get(consumer) or self._new_delivered(consumer)
        lag = _event_lag(carrier)
        if lag is not None:
            self._event_lag(name).observe(lag)
        return _Timed(self._event_done, conn.consumer, name)

    def _new_delivered(self, consumer: str) -> _Delivered:
        delivered = self._deliveries[consumer] = _Delivered(
            self._delivered(consumer).inc
        )
        return delivered

    def _event_done(
        self,
        elapsed: float,
        outcome: str,
        error_type: str | None,
        consumer: str,
        name: str,
    ) -> None:
        self._events_received(consumer, name, _outcome(outcome)).inc(1)
        self._event_handling(consumer, name).observe(elapsed)

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        self._layer_errors(operation, type(exc).__name__).inc(1)
