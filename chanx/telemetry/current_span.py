"""The current OpenTelemetry context and span, read with fewer calls.

chanx reads them a few times per frame (the sent-frame event, a span's
parent, the log line's ids) and makes a span's context current once:

- :func:`current_context` and :func:`attach_context` are the API's
  ``context.get_current()`` and ``context.attach()``; with the stock
  runtime context (a ``ContextVar``) they are that variable's own ``get``
  and ``set``, one C call instead of two Python ones. Another runtime
  context (``OTEL_PYTHON_CONTEXT``) gets the API's functions.
- :func:`span_in` is ``trace.get_current_span()``, whose
  ``isinstance(span, Span)`` is an abstract-class check that runs Python
  code: it remembers the classes that passed (a class that passed always
  passes) and gives the same answer as the API for every value.
- :func:`with_span` is ``trace.set_span_in_context(span, context)``: one
  call instead of three.
- :data:`TUPLE_SPAN_CONTEXT` says whether a ``SpanContext`` is the tuple
  the API builds (``trace_id, span_id, is_remote, trace_flags, trace_state,
  is_valid``): a span's hot path then reads its fields by index instead of
  through a property call each, for that exact class only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import (
    INVALID_SPAN,
    Span,
    SpanContext,
    TraceFlags,
    TraceState,
    propagation,
)

__all__ = [
    "INDEXED_SPAN_CONTEXT",
    "IS_REMOTE",
    "IS_VALID",
    "SAMPLED",
    "TRACE_FLAGS",
    "TRACE_ID",
    "TUPLE_SPAN_CONTEXT",
    "attach_context",
    "current_context",
    "span_in",
    "with_span",
]


def _runtime_variable() -> ContextVar[Context] | None:
    # The runtime context is chosen once, when the API is imported.
    runtime: Any = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime) is not ContextVarsRuntimeContext:
        return None
    variable = getattr(runtime, "_current_context", None)
    return variable if isinstance(variable, ContextVar) else None


_VARIABLE = _runtime_variable()
#: ``opentelemetry.context.get_current``.
current_context: Callable[[], Context] = (
    otel_context.get_current if _VARIABLE is None else _VARIABLE.get
)
#: ``opentelemetry.context.attach``: make a context current; returns its token.
attach_context: Callable[[Context], Token[Context]] = (
    otel_context.attach if _VARIABLE is None else _VARIABLE.set
)

# The API's (private) context key for the current span; None in a version
# without it, and then span_in() is the API's function.
_KEY: str | None = getattr(propagation, "_SPAN_KEY", None)
# Classes of values that passed isinstance(value, Span). Bounded in practice
# (the SDK's span classes, INVALID_SPAN's); the cap is only a safety net.
_SPAN_TYPES: set[type] = set()
_MAX_TYPES = 64


def span_in(context: Context | None = None) -> Span:
    """The span ``context`` (default: the current context) holds, else ``INVALID_SPAN``.

    Returns what ``opentelemetry.trace.get_current_span(context)`` returns.
    """
    if _KEY is None:
        return trace.get_current_span(context)
    if context is None:
        context = current_context()
    span = context.get(_KEY)
    kind = type(span)
    if kind in _SPAN_TYPES:
        return span  # type: ignore[return-value]
    if span is None or not isinstance(span, Span):
        return INVALID_SPAN
    if len(_SPAN_TYPES) < _MAX_TYPES:
        _SPAN_TYPES.add(kind)
    return span


def with_span(span: Span, context: Context) -> Context:
    """``context`` with ``span`` as its current span (a new context).

    Returns what ``opentelemetry.trace.set_span_in_context(span, context)``
    returns.
    """
    if _KEY is None:
        return trace.set_span_in_context(span, context)
    # Context is a dict subclass without __init__: this is set_value's copy.
    return Context({**context, _KEY: span})


# Indexes of SpanContext's fields in the tuple the API builds.
TRACE_ID: Final = 0
SPAN_ID: Final = 1
IS_REMOTE: Final = 2
TRACE_FLAGS: Final = 3
TRACE_STATE: Final = 4
IS_VALID: Final = 5


def _tuple_layout() -> bool:
    state = TraceState([("k", "v")])
    probe = SpanContext(
        0x1234,
        0x56,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=state,
    )
    try:
        fields = (
            probe[TRACE_ID],
            probe[SPAN_ID],
            probe[IS_REMOTE],
            probe[TRACE_FLAGS],
            probe[TRACE_STATE],
            probe[IS_VALID],
        )
    except (IndexError, TypeError):
        return False
    expected = (
        *(probe.trace_id, probe.span_id, probe.is_remote),
        *(probe.trace_flags, probe.trace_state, probe.is_valid),
    )
    return isinstance(probe, tuple) and fields == expected and fields[5] is True


#: Whether ``type(ctx) is SpanContext`` may be read by index (see above).
TUPLE_SPAN_CONTEXT = _tuple_layout()
#: The class whose instances hot paths read by index (``ctx.__class__ is
#: INDEXED_SPAN_CONTEXT``), or None when the API's is not the expected tuple.
INDEXED_SPAN_CONTEXT: type[SpanContext] | None = (
    SpanContext if TUPLE_SPAN_CONTEXT else None
)
#: The sampled bit of ``ctx[TRACE_FLAGS]``.
SAMPLED: Final = TraceFlags.SAMPLED
