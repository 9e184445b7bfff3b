"""The current context and span, read as the OpenTelemetry API reads them."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext, TraceFlags

from chanx.telemetry.current_span import (
    IS_REMOTE,
    IS_VALID,
    TRACE_FLAGS,
    TRACE_ID,
    TUPLE_SPAN_CONTEXT,
    attach_context,
    current_context,
    span_in,
    with_span,
)


class NotASpan:
    def is_recording(self) -> bool:
        return True


def test_span_in_answers_as_the_api_does(provider: TracerProvider) -> None:
    recording = provider.get_tracer("t").start_span("s")
    remote = NonRecordingSpan(SpanContext(1, 2, is_remote=True))
    contexts: list[Context | None] = [
        Context(),
        trace.set_span_in_context(recording),
        trace.set_span_in_context(remote),
        trace.set_span_in_context(NotASpan()),  # type: ignore[arg-type]
        trace.set_span_in_context(INVALID_SPAN),
    ]
    for context in contexts * 2:  # the second time, the classes are known
        assert span_in(context) is trace.get_current_span(context)
    token = otel_context.attach(trace.set_span_in_context(recording))
    try:
        assert span_in() is recording
    finally:
        otel_context.detach(token)
    assert span_in() is trace.get_current_span()
    assert span_in(trace.set_span_in_context(NotASpan())) is INVALID_SPAN  # type: ignore[arg-type]
    recording.end()


def test_attach_and_current_context_are_the_apis(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s")
    ours = trace.set_span_in_context(span)
    token = attach_context(ours)
    try:
        assert otel_context.get_current() is ours
        assert current_context() is ours
        assert trace.get_current_span() is span
        theirs = trace.set_span_in_context(INVALID_SPAN, ours)
        api_token = otel_context.attach(theirs)
        assert current_context() is theirs
        otel_context.detach(api_token)
        assert current_context() is ours
    finally:
        otel_context.detach(token)
    assert current_context() is otel_context.get_current()
    assert current_context() is not ours
    span.end()


def test_with_span_is_set_span_in_context(provider: TracerProvider) -> None:
    span = provider.get_tracer("t").start_span("s")
    base = otel_context.set_value("other", 1, Context())
    ours = with_span(span, base)
    assert ours == trace.set_span_in_context(span, base)
    assert type(ours) is Context
    assert trace.get_current_span(ours) is span
    assert otel_context.get_value("other", ours) == 1
    # A new context: the one it was given is left as it was.
    assert trace.get_current_span(base) is INVALID_SPAN
    replaced = with_span(INVALID_SPAN, ours)
    assert trace.get_current_span(replaced) is INVALID_SPAN
    span.end()


def test_span_context_fields_read_by_index_are_its_properties() -> None:
    assert TUPLE_SPAN_CONTEXT
    flags = [TraceFlags(value) for value in (0, 1, 2, 3)]
    for remote in (True, False):
        for flag in flags:
            for trace_id, span_id in ((7, 8), (0, 8), (2**128 - 1, 2**64 - 1)):
                context = SpanContext(
                    trace_id, span_id, is_remote=remote, trace_flags=flag
                )
                assert context[TRACE_ID] == context.trace_id
                assert context[IS_REMOTE] is context.is_remote
                assert context[TRACE_FLAGS] == context.trace_flags
                assert context[IS_VALID] is context.is_valid
