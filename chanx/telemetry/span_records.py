"""Ended spans encoded as they end: what waits in the batch queue is bytes.

The batch processor keeps every ended span until its batch is exported (512
at a time by default). A span is several container objects (the span, its
context, its events list and each event), so under load the collector
finds hundreds of waiting spans alive at each collection of the middle
generation and promotes them to the oldest one. Each full collection walks
the whole heap, and CPython starts one once promotions since the last add
up to a quarter of it: their cost grows with what is promoted.

When the exporter encodes with chanx's encoder
(:class:`~chanx.telemetry.otlp_exporter.FastOTLPSpanExporter`), chanx's
:class:`~chanx.telemetry.span_export.BoundedSpanProcessor` asks a
:class:`SpanRecords` to encode each span as it ends. The queue then holds a
``(key, bytes)`` tuple per span: the ``Span`` message's body and a small
number naming its resource and instrumentation scope. The collector
untracks such a tuple the first time it sees it, so it is never promoted;
the export thread only has to group and join the bytes, so it holds the GIL
for a fraction of the time. Measured in ``benchmarks/README.md`` (fifteenth
round).

A span the fast encoder cannot write stays a span in the queue, and the
exporter encodes it at export time as before (falling back to the official
encoder if it must). Encoding runs on the thread that ends the span; the
encoder's caches are plain dicts, safe to share between threads under the
GIL (a lost race costs a cache entry, never a wrong byte).
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from chanx.telemetry.otlp_span import encode_span

__all__ = ["MAX_ORIGINS", "SpanRecord", "SpanRecords"]

#: A span encoded as it ended: (origin key, ``Span`` message body).
SpanRecord = tuple[int, bytes]

#: Distinct (resource, scope) pairs one :class:`SpanRecords` numbers; spans
#: of any other pair wait as spans (tracers are few; this is a safety net).
MAX_ORIGINS = 256


class SpanRecords:
    """Encodes ended spans into :data:`SpanRecord` and names their origins.

    One instance belongs to one exporter: the records it makes are only
    meaningful to :meth:`origin` of the same instance. Keys are never
    reused, so a record stays valid however long it waits.

    Args:
        limit: Distinct (resource, scope) pairs to number.
    """

    __slots__ = ("_keys", "_last", "_limit", "_lock", "_origins")

    def __init__(self, limit: int = MAX_ORIGINS) -> None:
        self._limit = limit
        self._keys: dict[tuple[int, int], int] = {}
        # Each origin keeps its resource and scope alive, so their ids (the
        # keys above) cannot be taken by other objects.
        self._origins: list[tuple[Any, Any]] = []
        # Spans mostly come from one tracer: skip the lookup for the last.
        self._last: tuple[Any, Any, int] = (None, None, -1)
        # Spans end on any thread; numbering a new origin is the only write.
        self._lock = threading.Lock()

    def record(self, span: ReadableSpan) -> SpanRecord | ReadableSpan:
        """``span`` encoded, or ``span`` itself when it cannot be (never raises)."""
        try:
            body, (resource, scope) = encode_span(span)
        except Exception:
            # An attribute value of another type, a span without a context:
            # the exporter encodes it at export time, as for any other span.
            return span
        last = self._last
        if last[0] is resource and last[1] is scope:
            return (last[2], body)
        key = self._key(resource, scope)
        if key < 0:
            return span
        self._last = (resource, scope, key)
        return (key, body)

    def origin(self, key: int) -> tuple[Any, Any]:
        """The resource and instrumentation scope of records keyed ``key``."""
        return self._origins[key]

    def _key(self, resource: Any, scope: Any) -> int:
        ids = (id(resource), id(scope))
        key = self._keys.get(ids)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(ids)
            if key is not None:
                return key
            if len(self._origins) >= self._limit:
                return -1
            key = len(self._origins)
            self._origins.append((resource, scope))
            self._keys[ids] = key
            return key
