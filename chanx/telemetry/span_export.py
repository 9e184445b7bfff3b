"""The span export pipeline's two wrappers around the SDK's parts.

:class:`FailsafeExporter` wraps an exporter so a failed export is logged and
counted, never raised; :class:`BoundedSpanProcessor` is the SDK's batch
processor counting what its full queue drops, with a bounded shutdown.
:func:`chanx.telemetry.sdk.create_tracer_provider` puts them together.
"""

from __future__ import annotations

import collections
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from chanx.telemetry.chanx_span import ChanxSpan
from chanx.telemetry.current_span import INDEXED_SPAN_CONTEXT, SAMPLED, TRACE_FLAGS

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "BoundedSpanProcessor", "FailsafeExporter"]

_log = structlog.get_logger("chanx.telemetry")

#: Seconds a shutdown may take when neither argument nor environment says.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0


def _call_failsafe(callback: Callable[[], None] | None, failure_event: str) -> None:
    # A counting callback that raises must not fail the export or the span.
    if callback is None:
        return
    try:
        callback()
    except Exception:
        _log.error(failure_event, exc_info=True)


class FailsafeExporter(SpanExporter):
    """Wraps an exporter so a failed export is counted and logged, never raised."""

    def __init__(
        self, inner: SpanExporter, on_failure: Callable[[], None] | None
    ) -> None:
        self._inner = inner
        self._on_failure = on_failure

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # spans may hold records the inner exporter made (see span_records).
        try:
            result = self._inner.export(spans)
        except Exception as exc:
            self._failed(type(exc).__name__, len(spans))
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._failed("export_failure", len(spans))
        return result

    def _failed(self, error_type: str, spans: int) -> None:
        _log.warning(
            "span_export_failed",
            error_type=error_type,
            spans=spans,
            exporter=type(self._inner).__name__,
        )
        _call_failsafe(self._on_failure, "export_failure_callback_failed")

    def shutdown(self, timeout_millis: float | None = None) -> None:
        # The batch processor passes its remaining time when shutdown takes
        # one; forward it to exporters that do (gRPC), so exit is not delayed.
        try:
            takes_timeout = (
                "timeout_millis" in inspect.signature(self._inner.shutdown).parameters
            )
            if timeout_millis is not None and takes_timeout:
                self._inner.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
            else:
                self._inner.shutdown()
        except Exception:
            _log.warning("span_exporter_shutdown_failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return self._inner.force_flush(timeout_millis)
        except Exception:
            _log.warning("span_exporter_flush_failed", exc_info=True)
            return False


class BoundedSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans its full queue drops and
    giving up on shutdown after ``shutdown_timeout`` seconds.

    The SDK drops a span ended while ``max_queue_size`` spans wait (a
    collector that is slow or down) with one log line and no count; this
    counts each one through ``on_drop``. Its ``shutdown()`` waits up to 30 s
    whatever the exporter does; this one waits ``shutdown_timeout``.

    With ``record``, what waits in the queue is ``record(span)``, made as the
    span ends: the exporter's own encoding of it
    (:mod:`chanx.telemetry.span_records`), which it must accept in ``export``.
    ``record`` must not raise; it returns the span itself when it cannot
    encode it.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        on_drop: Callable[[], None] | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        record: Callable[[ReadableSpan], object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(exporter, **kwargs)
        self._on_drop = on_drop
        self._record = record
        self.shutdown_timeout = shutdown_timeout
        # The SDK keeps the queue in its (private) BatchProcessor.
        inner = self._batch_processor
        self.max_queue_size: int = inner._max_queue_size
        # Takes a span, or what record() made of it.
        self._enqueue: Callable[[Any], None] = (
            self._enqueue_directly if _queues_as_expected(inner) else inner.emit
        )

    def on_end(self, span: ReadableSpan) -> None:
        # BatchSpanProcessor.on_end, with the count: runs once per frame.
        # chanx's spans: the field, without the property's call.
        context = span._context if span.__class__ is ChanxSpan else span.context
        sampled: Any
        if context.__class__ is INDEXED_SPAN_CONTEXT:
            sampled = context[TRACE_FLAGS] & SAMPLED
        else:
            sampled = context and context.trace_flags.sampled
        if not sampled:
            return
        if len(self._batch_processor._queue) >= self.max_queue_size:
            self._dropped()
        record = self._record
        self._enqueue(span if record is None else record(span))

    def _enqueue_directly(self, span: Any) -> None:
        # BatchProcessor.emit without its fork check, a getpid() system call
        # per span: the SDK re-creates the queue and worker in a forked
        # child through os.register_at_fork already. Anything but a plain
        # append (shut down, queue full) goes through emit().
        batch = self._batch_processor
        queue = batch._queue
        if batch._shutdown or len(queue) >= batch._max_queue_size:
            batch.emit(span)
            return
        queue.appendleft(span)
        if len(queue) >= batch._max_export_batch_size:
            awaken = batch._worker_awaken
            if not awaken.is_set():
                awaken.set()

    def _dropped(self) -> None:
        _call_failsafe(self._on_drop, "span_drop_callback_failed")

    def shutdown(self) -> None:
        millis = math.ceil(self.shutdown_timeout * 1000)
        self._batch_processor.shutdown(timeout_millis=millis)


# What BoundedSpanProcessor._enqueue_directly uses of the SDK's BatchProcessor.
_QUEUE_INTERNALS = (
    "_queue",
    "_shutdown",
    "_max_queue_size",
    "_max_export_batch_size",
    "_worker_awaken",
    "_at_fork_reinit",
)


def _queues_as_expected(batch: Any) -> bool:
    """Whether ``batch`` is the BatchProcessor the direct enqueue was written for."""
    return all(hasattr(batch, name) for name in _QUEUE_INTERNALS) and isinstance(
        batch._queue, collections.deque
    )
