"""Recording spans for chanx's own hooks without the SDK's generic overhead.

The OpenTelemetry SDK validates every attribute of every span and event
(``BoundedAttributes``), takes locks and copies the span for its processors
when it ends. For a span per frame that is most of telemetry's cost, and
chanx builds its attributes itself from bounded, already valid values.

:func:`sdk_starter` returns a function that starts spans for an SDK
``Tracer`` exactly as ``Tracer.start_span`` would (same sampler call, ids,
trace flags and state, processors, self-metrics and limits), except that the
span is a :class:`ChanxSpan`: an SDK ``Span`` whose chanx-built attributes
and events are stored as given, and the stock samplers are decided without
being called (:mod:`chanx.telemetry.inline_sampler`). Anything else, a user's
``span.set_attribute()`` included, goes through the SDK's own validation.
When the SDK's internals are not the ones this module was written against it
returns None, and chanx uses the SDK's ``start_span``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import Event, EventBase, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from chanx.telemetry.current_span import (
    INDEXED_SPAN_CONTEXT,
    IS_VALID,
    TRACE_FLAGS,
    TRACE_ID,
    span_in,
)
from chanx.telemetry.inline_sampler import ask_sampler, inline_decider
from chanx.telemetry.span_starter import StartSpan, valid_links

__all__ = ["ChanxSpan", "sdk_starter"]

_log = logging.getLogger(__name__)


_UNSET = Status(StatusCode.UNSET)
_SAMPLED = Decision.RECORD_AND_SAMPLE
_DROPPED = Decision.DROP
_RANDOM: int = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
# (sampled, random trace id) -> flags: shared, since every span (and every
# connection's kept connect-span context) would otherwise hold its own.
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (_RANDOM if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}


class ChanxSpan(sdk_trace.Span):
    """An SDK span started by chanx; chanx's own attributes skip re-validation.

    Attributes stay a plain ``dict`` while only chanx writes them, and are
    never written in place (spans may share the dict they start with: chanx
    gives every ``process`` span of a consumer and action the same one);
    the first ``set_attribute``/``set_attributes`` turns them into the SDK's
    ``BoundedAttributes``. ``add_event``, ``record_exception`` and
    ``add_link`` validate as the SDK does, and events and links are kept
    under the span limits, so user code sees the SDK's behaviour.
    Processors get the span itself when it ends (it refuses changes then).
    """

    # One reentrant lock for all of chanx's spans instead of a lock per span:
    # every span allocated one, a container the garbage collector then
    # tracked until the span was exported. Nothing holding a span's lock
    # takes another span's (the SDK only updates that span's own fields), so
    # sharing it costs at most a short wait between threads.
    _lock = threading.RLock()  # type: ignore[assignment]  # the SDK's is a Lock

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        tracer: sdk_trace.Tracer,
        kind: SpanKind,
        attributes: dict[str, AttributeValue] | BoundedAttributes,
        links: Sequence[Link],
        record_end_metrics: Callable[[], None] | None,
    ) -> None:
        # Deliberately no super().__init__(): it is what this class avoids.
        # ``sdk_starter`` checks that these are all the fields the SDK sets.
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._parent = parent
        self._start_time: int | None = time_ns()
        self._end_time: int | None = None
        self._attributes: Any = attributes
        self._events: Any = []
        self._links: Any = links
        self._resource = tracer.resource
        self._status = _UNSET
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = True
        self._set_status_on_exception = True
        self._span_processor = tracer.span_processor
        self._limits = tracer._span_limits
        # No lock of its own: see _lock above.
        self._record_end_metrics = record_end_metrics
        # Set by the starter when every processor's on_start and _on_ending
        # are the SDK's no-ops (see _QuietProcessors).
        self._quiet = False

    def add_trusted_event(
        self, name: str, attributes: dict[str, AttributeValue]
    ) -> None:
        """Add an event whose attributes chanx built (valid, under the limits)."""
        with self._lock:
            if self._end_time is None:
                self._append_event(_event(name, attributes))

    def set_trusted_attribute(self, key: str, value: AttributeValue) -> None:
        """Set an attribute chanx built (a valid key and value)."""
        with self._lock:
            if self._end_time is None:
                attributes = self._attributes
                if type(attributes) is dict:
                    # Spans may share the dict they started with: copy it.
                    self._attributes = {**attributes, key: value}
                else:
                    attributes[key] = value

    def set_attribute(self, key: str, value: Any) -> None:
        self._bound_attributes()
        super().set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._bound_attributes()
        super().set_attributes(attributes)

    def _add_event(self, event: EventBase) -> None:
        # The SDK's add_event() and record_exception() end here.
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                self._append_event(event)
        if ended:
            _log.warning("Tried calling _add_event on an ended span.")

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        with self._lock:
            if not isinstance(self._links, BoundedList):
                self._links = BoundedList.from_seq(self._limits.max_links, self._links)
        super().add_link(context, attributes)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._end_time is not None:
                _log.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            if isinstance(self._attributes, BoundedAttributes):
                self._attributes._immutable = True
        if self._record_end_metrics is not None:
            self._record_end_metrics()
        processor = self._span_processor
        if not self._quiet:
            processor._on_ending(self)
        # The SDK hands processors a copy sharing these same containers;
        # the span itself is that view (it refuses changes once ended).
        processor.on_end(self)

    def _append_event(self, event: EventBase) -> None:
        events = self._events
        limit = self._limits.max_events
        if type(events) is list and limit is not None and len(events) >= limit:
            events = self._events = BoundedList.from_seq(limit, events)
        events.append(event)

    def _bound_attributes(self) -> None:
        with self._lock:
            if self._end_time is None and type(self._attributes) is dict:
                limits = self._limits
                self._attributes = BoundedAttributes(
                    limits.max_span_attributes,
                    self._attributes,
                    immutable=False,
                    max_value_len=limits.max_span_attribute_length,
                )


def _renew_lock() -> None:
    # A child forked while another thread held the shared lock would find it
    # held for good: every span of the child would hang on its first write.
    ChanxSpan._lock = threading.RLock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_renew_lock)


def _event_fields() -> bool:
    """Whether an SDK ``Event`` holds exactly a name, timestamp and attributes."""
    event = Event("probe", {"key": 1}, timestamp=7)
    fields = vars(event)
    return fields == {"_name": "probe", "_timestamp": 7, "_attributes": {"key": 1}}


_new_object = object.__new__


def _built_event(name: str, attributes: dict[str, AttributeValue]) -> Event:
    # Event(name, attributes) without its two __init__ calls: the same fields.
    event: Event = _new_object(Event)
    event._name = name
    event._timestamp = time_ns()
    event._attributes = attributes
    return event


def _sdk_event(name: str, attributes: dict[str, AttributeValue]) -> Event:
    return Event(name, attributes)


#: ``Event(name, attributes)``, built directly when the SDK's fields are known.
_event = _built_event if _event_fields() else _sdk_event


def _sdk_fields() -> set[str]:
    """The instance fields of an SDK span, to compare with :class:`ChanxSpan`'s."""
    context = SpanContext(1, 1, is_remote=False)
    return set(vars(sdk_trace._Span("probe", context)))


def _roomy(limits: Any) -> bool:
    """Whether chanx's own attributes, events and link fit ``limits`` as they are."""
    if limits.max_span_attribute_length is not None:
        return False
    if limits.max_attribute_length is not None:
        return False
    wanted = {"max_span_attributes": 16, "max_event_attributes": 4, "max_links": 1}
    return all(
        getattr(limits, name) is None or getattr(limits, name) >= least
        for name, least in wanted.items()
    )


def _compatible(tracer: Any) -> bool:
    if type(tracer) is not sdk_trace.Tracer or not _RANDOM:
        return False
    needed = (
        "_tracer_metrics",
        "_is_enabled",
        "_span_limits",
        "_instrumentation_scope",
    )
    if not all(hasattr(tracer, name) for name in needed):
        return False
    if not hasattr(tracer.span_processor, "_on_ending") or not _roomy(
        tracer._span_limits
    ):
        return False
    probe = ChanxSpan(
        "probe", SpanContext(1, 1, False), None, tracer, SpanKind.INTERNAL, {}, (), None
    )
    # _lock is a class attribute (one lock for every chanx span).
    return _sdk_fields() <= set(vars(probe)) | {"_lock"}


def sdk_starter(tracer: trace_api.Tracer) -> StartSpan | None:
    """A span starter for an SDK ``Tracer``, or None when its internals differ.

    Args:
        tracer: A tracer from an SDK ``TracerProvider``.

    Returns:
        ``start(name, parent_context, kind, attributes, links)``, which starts
        and returns a span as ``tracer.start_span()`` would, or None for any
        other tracer, or an SDK version whose ``Span`` has fields this module
        does not set.
    """
    if not _compatible(tracer):
        return None
    sdk: Any = tracer
    sampler = sdk.sampler
    ids = sdk.id_generator
    processor = sdk.span_processor
    metrics = sdk._tracer_metrics
    enabled = sdk._is_enabled
    random_ids = bool(ids.is_trace_id_random())
    # The stock samplers' decision without asking them (same result).
    decide = inline_decider(sampler)
    quiet = _QuietProcessors()

    def start(
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        links: Sequence[Link] | None,
    ) -> trace_api.Span:
        current = span_in(context).get_span_context()
        if not enabled():
            return trace_api.NonRecordingSpan(current)
        parent: SpanContext | None = None
        if current.__class__ is INDEXED_SPAN_CONTEXT:
            valid = current[IS_VALID]
            trace_id, flags = current[TRACE_ID], current[TRACE_FLAGS]
        elif current is not None and current.is_valid:
            valid, trace_id, flags = True, current.trace_id, current.trace_flags
        else:
            valid = False
        if valid:
            parent = current
            random_trace_id = bool(flags & _RANDOM)
        else:
            trace_id = ids.generate_trace_id()
            random_trace_id = random_ids
        if decide is not None:
            sampled = recording = decide(parent, trace_id)
            decision = _SAMPLED if sampled else _DROPPED
            trace_state = None if parent is None else parent.trace_state
            span_attributes: Any = attributes
        else:
            asked = ask_sampler(sdk, context, trace_id, name, kind, attributes, links)
            decision, trace_state, sampled, recording, span_attributes = asked
        span_context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[sampled, random_trace_id],
            trace_state=trace_state,
        )
        end_metrics = metrics.start_span(parent, decision)
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        span = ChanxSpan(
            name,
            span_context,
            parent,
            sdk,
            kind,
            span_attributes,
            valid_links(links),
            end_metrics,
        )
        if quiet(processor):
            span._quiet = True
        else:
            processor.on_start(span, parent_context=context)
        return span

    return start


# The SDK processors' own on_start and _on_ending, which do nothing.
_NOOP_STARTS = frozenset((SpanProcessor.on_start, BatchSpanProcessor.on_start))
_NOOP_ENDINGS = frozenset((SpanProcessor._on_ending, BatchSpanProcessor._on_ending))


class _QuietProcessors:
    """Whether a provider's processors all keep the SDK's no-op ``on_start``
    and ``_on_ending`` (a batch processor does): chanx's spans then skip the
    two calls through the multi-processor each. Checked again whenever the
    provider's processors change (adding one replaces its tuple)."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        # (the processors tuple checked, whether they are all quiet)
        self._state: tuple[object, bool] = (None, False)

    def __call__(self, multi: Any) -> bool:
        processors = getattr(multi, "_span_processors", None)
        state = self._state
        if state[0] is not processors:
            state = self._state = (processors, _all_quiet(processors))
        return state[1]


def _all_quiet(processors: Any) -> bool:
    if type(processors) is not tuple:
        return False
    return all(
        type(p).on_start in _NOOP_STARTS
        and type(p)._on_ending in _NOOP_ENDINGS
        and not {"on_start", "_on_ending"} & set(getattr(p, "__dict__", ()))
        for p in processors
    )
