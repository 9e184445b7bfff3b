"""The context a server may keep for a connection's life, without the span's data.

What uvicorn schedules when it accepts a handshake (its keepalive timer)
keeps the context of that moment, and re-arms from it, until the
connection closes. Accepting happens inside the ``connect`` span, so that
context would keep the ended span and everything it recorded (attributes,
events, their locks) for every idle connection: ~2 KiB each, once it has
been exported.

:func:`lasting_context` is that context with the span swapped for a
non-recording one with the same ids: log lines written there (uvicorn's
``[accepted]``) keep their ``trace_id``/``span_id`` and log context, and a
span started there has the same parent.
"""

from __future__ import annotations

import contextvars

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan

__all__ = ["lasting_context"]


def lasting_context() -> contextvars.Context:
    """A copy of the current context whose current span records nothing.

    Returns:
        The copy; the current context is left as it is.
    """
    context = contextvars.copy_context()
    context.run(_swap_current_span)
    return context


def _swap_current_span() -> None:
    current = otel_context.get_current()
    span = trace.get_current_span(current)
    if span.is_recording():
        stand_in = NonRecordingSpan(span.get_span_context())
        # The token is not needed: the copy this runs in is never restored.
        otel_context.attach(trace.set_span_in_context(stand_in, current))
