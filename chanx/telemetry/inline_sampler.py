"""The SDK's stock samplers decided without a ``SamplingResult`` per span.

``ParentBased(ALWAYS_ON)`` (the SDK's default) and ``ParentBasedTraceIdRatio``
(``OTEL_TRACES_SAMPLER=parentbased_traceidratio``) decide a span from its
parent's flags or its trace id alone. Asking them costs a ``SamplingResult``
with a read-only copy of the attributes and two more lookups of the parent
span in the context, on every frame. :func:`inline_decider` returns a
function that takes the same decision from what the span starter already
has; for any other sampler (a subclass, a user's delegate, a sampler that
may add attributes or change the trace state) it returns None, and
:func:`ask_sampler` asks the sampler and applies its answer as the SDK does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.util.types import AttributeValue

from chanx.telemetry.current_span import (
    INDEXED_SPAN_CONTEXT,
    IS_REMOTE,
    SAMPLED,
    TRACE_FLAGS,
)

__all__ = ["Decide", "ask_sampler", "inline_decider"]

#: ``decide(parent, trace_id) -> sampled``; ``parent`` is a valid span
#: context or None. Sampled spans record, others do not (these samplers
#: never answer ``RECORD_ONLY``) and every span keeps its parent's trace state.
Decide = Callable[[SpanContext | None, int], bool]

# ParentBased's delegates, in the order of _DELEGATE_FIELDS.
_DELEGATE_FIELDS = (
    "_remote_parent_sampled",
    "_remote_parent_not_sampled",
    "_local_parent_sampled",
    "_local_parent_not_sampled",
)


def _static(sampler: Any) -> bool | None:
    """True for ``ALWAYS_ON``, False for ``ALWAYS_OFF``, None for anything else."""
    if sampler is ALWAYS_ON:
        return True
    if sampler is ALWAYS_OFF:
        return False
    return None


def _root(sampler: Any) -> Callable[[int], bool] | None:
    """The root delegate as ``sampled(trace_id)``, if it is a stock one."""
    static = _static(sampler)
    if static is not None:
        return lambda trace_id: static
    if type(sampler) is TraceIdRatioBased:
        bound = sampler.bound
        limit = TraceIdRatioBased.TRACE_ID_LIMIT
        # What TraceIdRatioBased.should_sample compares.
        return lambda trace_id: trace_id & limit < bound
    return None


def inline_decider(sampler: Any) -> Decide | None:
    """A function deciding as ``sampler`` does, or None if it is not a stock one.

    Args:
        sampler: A tracer's sampler.

    Returns:
        ``decide(parent, trace_id)`` for a ``ParentBased`` (or
        ``ParentBasedTraceIdRatio``) whose delegates are ``ALWAYS_ON`` and
        ``ALWAYS_OFF`` and whose root is one of those or a
        ``TraceIdRatioBased``; None otherwise.
    """
    if type(sampler) not in (ParentBased, ParentBasedTraceIdRatio):
        return None
    delegates = [_static(getattr(sampler, name, None)) for name in _DELEGATE_FIELDS]
    root = _root(getattr(sampler, "_root", None))
    if root is None or None in delegates:
        return None
    remote_sampled, remote_unsampled, local_sampled, local_unsampled = (
        bool(delegate) for delegate in delegates
    )

    def decide(parent: SpanContext | None, trace_id: int) -> bool:
        if parent is None:
            return root(trace_id)
        if parent.__class__ is INDEXED_SPAN_CONTEXT:
            remote, sampled = parent[IS_REMOTE], parent[TRACE_FLAGS] & SAMPLED
        else:
            remote, sampled = parent.is_remote, parent.trace_flags.sampled
        if remote:
            return remote_sampled if sampled else remote_unsampled
        return local_sampled if sampled else local_unsampled

    return decide


def ask_sampler(
    tracer: Any,
    context: Context | None,
    trace_id: int,
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, AttributeValue],
    links: Sequence[Link] | None,
) -> tuple[Decision, Any, bool, bool, Any]:
    """What a sampler :func:`inline_decider` does not know decides, as the
    SDK applies it: the decision, trace state, sampled, recording and the
    span's attributes."""
    result = tracer.sampler.should_sample(
        context, trace_id, name, kind, attributes, links
    )
    decision: Decision = result.decision
    sampled, recording = _sampled_and_recording(decision)
    span_attributes = _span_attributes(
        result.attributes, attributes, tracer._span_limits
    )
    return decision, result.trace_state, sampled, recording, span_attributes


def _sampled_and_recording(decision: Decision) -> tuple[bool, bool]:
    # Decision.is_sampled() and is_recording(), which are untyped.
    sampled = decision is Decision.RECORD_AND_SAMPLE
    return sampled, sampled or decision is Decision.RECORD_ONLY


def _span_attributes(
    sampled: Mapping[str, Any], ours: Mapping[str, AttributeValue], limits: Any
) -> Mapping[str, AttributeValue] | BoundedAttributes:
    # The SDK gives the span the sampler's attributes. The stock samplers
    # pass chanx's through unchanged (and fast_spans checked that they fit);
    # anything else is validated as usual.
    if sampled == ours:
        return ours
    return BoundedAttributes(
        limits.max_span_attributes,
        sampled,
        immutable=False,
        max_value_len=limits.max_span_attribute_length,
    )
