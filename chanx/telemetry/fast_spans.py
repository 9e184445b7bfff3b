"""Recording spans for chanx's own hooks without the SDK's generic overhead.

The OpenTelemetry SDK validates every attribute of every span and event
(``BoundedAttributes``), takes locks and copies the span for its processors
when it ends. For a span per frame that is most of telemetry's cost, and
chanx builds its attributes itself from bounded, already valid values.

:func:`sdk_starter` returns a function that starts spans for an SDK
``Tracer`` exactly as ``Tracer.start_span`` would (same sampler call, ids,
trace flags and state, processors, self-metrics and limits), except that the
span is a :class:`~chanx.telemetry.chanx_span.ChanxSpan`: an SDK ``Span``
whose chanx-built attributes and events are stored as given, and the stock
samplers are decided without being called
(:mod:`chanx.telemetry.inline_sampler`). Anything else, a user's
``span.set_attribute()`` included, goes through the SDK's own validation.
When the SDK's internals are not the ones this module was written against it
returns None, and chanx uses the SDK's ``start_span``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import (
    SpanProcessor,
    SynchronousMultiSpanProcessor,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import (
    INVALID_SPAN,
    INVALID_SPAN_CONTEXT,
    Link,
    SpanContext,
    SpanKind,
    TraceFlags,
)
from opentelemetry.trace.span import DEFAULT_TRACE_STATE
from opentelemetry.util.types import AttributeValue

from chanx.telemetry.chanx_span import CLASS_FIELDS, FEW_EVENTS, ChanxSpan
from chanx.telemetry.current_span import (
    INDEXED_SPAN_CONTEXT,
    IS_VALID,
    TRACE_FLAGS,
    TRACE_ID,
    TUPLE_SPAN_CONTEXT,
    span_in,
)
from chanx.telemetry.inline_sampler import ask_sampler, inline_decider
from chanx.telemetry.span_starter import StartSpan, ValidLinks, valid_links

__all__ = ["ChanxSpan", "sdk_starter"]


_SAMPLED = Decision.RECORD_AND_SAMPLE
_DROPPED = Decision.DROP
_RANDOM: int = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
# (sampled, random trace id) -> flags: shared, since every span (and every
# connection's kept connect-span context) would otherwise hold its own.
_FLAGS = {
    (sampled, random_id): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (_RANDOM if random_id else 0)
    )
    for sampled in (False, True)
    for random_id in (False, True)
}


_new_object = object.__new__
_new_tuple = tuple.__new__
_DEFAULT_STATE = DEFAULT_TRACE_STATE


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
    wanted = {
        "max_span_attributes": 16,
        "max_event_attributes": 4,
        "max_events": FEW_EVENTS,
        "max_links": 1,
    }
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
    # Some fields are class attributes (one lock for every chanx span).
    return _sdk_fields() <= set(vars(probe)) | CLASS_FIELDS


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
    # The SDK's self-metrics when they are off: a call that returns a no-op.
    quiet_metrics = type(metrics).__name__ == "NoOpTracerMetrics"
    enabled = sdk._is_enabled
    random_ids = bool(ids.is_trace_id_random())
    # The SDK's default generator draws from the random module (looked up
    # per draw, as it does): draw here, without its two method calls, when
    # span contexts are plain tuples.
    stock_ids = type(ids) is RandomIdGenerator and TUPLE_SPAN_CONTEXT
    # The stock samplers' decision without asking them (same result).
    decide = inline_decider(sampler)
    quiet = _QuietProcessors()

    def start(
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue],
        links: Sequence[Link] | None,
    ) -> trace_api.Span:
        holder = span_in(context)
        current: Any
        # Two common cases without a method call: a root frame, a chanx span.
        if holder is INVALID_SPAN:
            current = INVALID_SPAN_CONTEXT
        elif holder.__class__ is ChanxSpan:
            current = holder._context
        else:
            current = holder.get_span_context()
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
            trace_id = random.getrandbits(128) if stock_ids else 0
            if not trace_id:  # (or a zero draw) the generator's own loop
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
        span_id = random.getrandbits(64) if stock_ids else 0
        if stock_ids and span_id:
            # The SpanContext the constructor builds: both ids drawn non-zero
            # within range (or the parent's), so valid.
            span_context = _new_tuple(
                SpanContext,
                (
                    trace_id,
                    span_id,
                    False,
                    _FLAGS[sampled, random_trace_id],
                    _DEFAULT_STATE if trace_state is None else trace_state,
                    True,
                ),
            )
        else:
            span_context = SpanContext(
                trace_id,
                span_id or ids.generate_span_id(),
                is_remote=False,
                trace_flags=_FLAGS[sampled, random_trace_id],
                trace_state=trace_state,
            )
        end_metrics = None if quiet_metrics else metrics.start_span(parent, decision)
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        if links.__class__ is not ValidLinks:
            links = valid_links(links)
        # The SDK's Span.__new__ only refuses its own class: skip that call.
        span: ChanxSpan = _new_object(ChanxSpan)
        ChanxSpan.__init__(
            span,
            name,
            span_context,
            parent,
            sdk,
            kind,
            span_attributes,
            links or (),
            end_metrics,
        )
        quiet_processors = quiet(processor)
        if quiet_processors is not None:
            span._quiet = quiet_processors
        else:
            processor.on_start(span, parent_context=context)
        return span

    return start


# The SDK processors' own on_start and _on_ending, which do nothing.
_NOOP_STARTS = frozenset((SpanProcessor.on_start, BatchSpanProcessor.on_start))
_NOOP_ENDINGS = frozenset((SpanProcessor._on_ending, BatchSpanProcessor._on_ending))


class _QuietProcessors:
    """A provider's processors tuple when they all keep the SDK's no-op
    ``on_start`` and ``_on_ending`` (a batch processor does), else None:
    chanx's spans then skip the two calls through the multi-processor. A
    span keeps the tuple; adding a processor replaces it, which the span's
    end notices."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        # (the processors tuple checked, it again if all quiet, else None)
        self._state: tuple[object, object] = (None, None)

    def __call__(self, multi: Any) -> object:
        if multi.__class__ is not SynchronousMultiSpanProcessor:
            return None
        processors = multi._span_processors
        state = self._state
        if state[0] is not processors:
            quiet = processors if _all_quiet(processors) else None
            state = self._state = (processors, quiet)
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
