"""The span a context holds: ``trace.get_current_span()`` with a cheaper check.

The API's function checks ``isinstance(span, Span)`` on every call, an
abstract-class check that runs Python code. chanx asks for the current span
a few times per frame (the sent-frame event, a span's parent, the log
line's ids), always of the same few classes: :func:`span_in` remembers the
classes that passed the check (a class that passed always passes) and gives
the same answer as the API for every value.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, propagation

__all__ = ["span_in"]

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
        context = otel_context.get_current()
    span = context.get(_KEY)
    kind = type(span)
    if kind in _SPAN_TYPES:
        return span  # type: ignore[return-value]
    if span is None or not isinstance(span, Span):
        return INVALID_SPAN
    if len(_SPAN_TYPES) < _MAX_TYPES:
        _SPAN_TYPES.add(kind)
    return span
