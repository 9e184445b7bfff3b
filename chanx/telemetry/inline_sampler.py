"""The SDK's stock samplers decided without a ``SamplingResult`` per span.

``ParentBased(ALWAYS_ON)`` (the SDK's default) and ``ParentBasedTraceIdRatio``
(``OTEL_TRACES_SAMPLER=parentbased_traceidratio``) decide a span from its
parent's flags or its trace id alone. Asking them costs a ``SamplingResult``
with a read-only copy of the attributes and two more lookups of the parent
span in the context, on every frame. :func:`inline_decider` returns a
function that takes the same decision from what the span starter already
has; for any other sampler (a subclass, a user's delegate, a sampler that
may add attributes or change the trace state) it returns None, and the
sampler is asked as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanContext

from chanx.telemetry.current_span import (
    INDEXED_SPAN_CONTEXT,
    IS_REMOTE,
    SAMPLED,
    TRACE_FLAGS,
)

__all__ = ["Decide", "inline_decider"]

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
