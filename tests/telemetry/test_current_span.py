"""The current context and span, read as the OpenTelemetry API reads them."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext

from chanx.telemetry.current_span import attach_context, current_context, span_in


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
