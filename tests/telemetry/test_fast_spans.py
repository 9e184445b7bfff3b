"""chanx's SDK fast path records the same spans as the SDK's own start_span."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator, Sequence
from time import time_ns
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import AttributeValue
from structlog.testing import capture_logs

from chanx.telemetry import fast_spans
from chanx.telemetry.fast_spans import ChanxSpan, sdk_starter
from chanx.telemetry.span_starter import SpanStarter, StartSpan, ValidLinks

ATTRIBUTES: dict[str, AttributeValue] = {
    "messaging.system": "chanx",
    "chanx.action": "ping",
    "messaging.message.body.size": 20,
}
REMOTE = SpanContext(
    0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
)


class Recorder(SpanProcessor):
    """Keeps what a processor is told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self.calls.append(("start", span, parent_context))

    def _on_ending(self, span: Any) -> None:
        self.calls.append(("ending", span, span.end_time))

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("end", span, span.end_time))


class TaggingSampler(Sampler):
    """Samples everything and adds attributes of its own (one not a plain value)."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        attributes = dict(kwargs.get("attributes") or args[4] or {})
        attributes["sampler.tag"] = "t"
        attributes["sampler.bad"] = {"a": "dict"}
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "tagging"


def make_provider(**kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(shutdown_on_exit=False, **kwargs)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def pair() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider, exporter = make_provider()
    yield provider, exporter
    provider.shutdown()


def both(
    provider: TracerProvider,
    parent: Context | None,
    kind: SpanKind = SpanKind.CONSUMER,
    links: Sequence[Link] | None = None,
) -> tuple[Span, Span]:
    """The same span started by the SDK and by the fast path."""
    tracer = provider.get_tracer("chanx", "1")
    start = sdk_starter(tracer)
    assert start is not None
    slow = tracer.start_span(
        "receive ping", parent, kind=kind, attributes=dict(ATTRIBUTES), links=links
    )
    fast = start("receive ping", parent, kind, dict(ATTRIBUTES), links)
    return slow, fast


def chanx_starter(provider: TracerProvider) -> StartSpan:
    """The fast path for ``provider``'s tracer of chanx."""
    start = sdk_starter(provider.get_tracer("chanx", "1"))
    assert start is not None
    return start


def shape(span: ReadableSpan) -> dict[str, Any]:
    """Everything an exporter sees, with ids and times reduced to their shape."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": span.parent,
        "flags": context.trace_flags,
        "state": context.trace_state,
        "attributes": dict(span.attributes or {}),
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource,
        "scope": span.instrumentation_scope,
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "timed": span.start_time is not None and span.end_time is not None,
    }


def otlp(span: ReadableSpan) -> Any:
    """The OTLP message for ``span``, ids and times zeroed."""
    request = encode_spans([span])
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for item in scope.spans:
                item.trace_id = item.span_id = b""
                item.start_time_unix_nano = item.end_time_unix_nano = 0
                for event in item.events:
                    event.time_unix_nano = 0
    return request


def finish_alike(slow: Span, fast: Span) -> None:
    for span in (slow, fast):
        if isinstance(fast, ChanxSpan) and span is fast:
            fast.add_trusted_event("message_sent", {"chanx.action": "pong"})
        else:
            span.add_event("message_sent", {"chanx.action": "pong"})
        span.end()


def finished(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ReadableSpan]:
    slow, fast = exporter.get_finished_spans()
    return slow, fast


@pytest.mark.parametrize(
    "parent",
    [
        Context(),
        trace.set_span_in_context(NonRecordingSpan(REMOTE)),
        trace.set_span_in_context(
            NonRecordingSpan(
                SpanContext(
                    0x1234,
                    0x99,
                    is_remote=True,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED),
                    trace_state=TraceState([("vendor", "v1")]),
                )
            )
        ),
        None,
    ],
    ids=["root", "remote-parent", "trace-state", "current-context"],
)
def test_recorded_spans_match_the_sdk(
    pair: tuple[TracerProvider, InMemorySpanExporter], parent: Context | None
) -> None:
    provider, exporter = pair
    slow, fast = both(provider, parent, links=[Link(REMOTE)])
    assert isinstance(fast, ChanxSpan)
    finish_alike(slow, fast)
    slow_done, fast_done = finished(exporter)
    assert shape(fast_done) == shape(slow_done)
    assert otlp(fast_done) == otlp(slow_done)
    if (
        parent is not None
        and trace.get_current_span(parent).get_span_context().is_valid
    ):
        assert fast.get_span_context().trace_id == REMOTE.trace_id


def test_a_connections_link_is_shared_by_its_frames_and_never_changed(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = pair
    start = chanx_starter(provider)
    links = ValidLinks([REMOTE, INVALID_SPAN_CONTEXT])  # what chanx passes
    first = start("receive a", Context(), SpanKind.CONSUMER, {}, links)
    second = start("receive b", Context(), SpanKind.CONSUMER, {}, links)
    invalid = start(
        "receive c", Context(), SpanKind.CONSUMER, {}, (Link(INVALID_SPAN_CONTEXT),)
    )
    first.add_link(SpanContext(0x5, 0x6, is_remote=False), {"extra": 1})
    for span in (first, second, invalid):
        span.end()
    done = {span.name: span for span in exporter.get_finished_spans()}
    assert [link.context for link in done["receive b"].links] == [REMOTE]
    assert len(done["receive a"].links) == 2
    assert done["receive c"].links == ()
    assert [link.context for link in links] == [REMOTE]  # left as it was


def test_plain_link_sequences_are_checked_per_span(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = pair
    start = chanx_starter(provider)
    mixed = [Link(REMOTE), Link(INVALID_SPAN_CONTEXT)]
    start("receive a", Context(), SpanKind.CONSUMER, {}, mixed).end()
    start("receive b", Context(), SpanKind.CONSUMER, {}, tuple(mixed)).end()
    for span in exporter.get_finished_spans():
        assert [link.context for link in span.links] == [REMOTE]


def test_unsampled_parent_gives_the_same_non_recording_span(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = pair
    unsampled = SpanContext(0x77, 0x88, is_remote=True)
    slow, fast = both(provider, trace.set_span_in_context(NonRecordingSpan(unsampled)))
    assert type(fast) is type(slow) is NonRecordingSpan
    assert fast.get_span_context().trace_id == slow.get_span_context().trace_id
    assert fast.get_span_context().trace_flags == slow.get_span_context().trace_flags
    assert not fast.is_recording()
    fast.end()
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, ParentBased(TraceIdRatioBased(0))])
def test_samplers_that_drop_are_obeyed(sampler: Sampler) -> None:
    provider, _exporter = make_provider(sampler=sampler)
    slow, fast = both(provider, Context())
    assert not slow.is_recording()
    assert not fast.is_recording()
    assert fast.get_span_context().is_valid
    assert not fast.get_span_context().trace_flags.sampled


def test_a_sampler_that_adds_attributes_is_validated_as_in_the_sdk() -> None:
    provider, exporter = make_provider(sampler=TaggingSampler())
    slow, fast = both(provider, Context())
    finish_alike(slow, fast)
    slow_done, fast_done = finished(exporter)
    assert dict(fast_done.attributes or {}) == dict(slow_done.attributes or {})
    assert "sampler.tag" in (fast_done.attributes or {})


class RecordOnlySampler(Sampler):
    """Records every span but samples none (not exported by batch processors)."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record-only"


def test_a_record_only_sampler_records_unsampled_spans_as_in_the_sdk() -> None:
    provider, exporter = make_provider(sampler=RecordOnlySampler())
    slow, fast = both(provider, Context())
    assert isinstance(fast, ChanxSpan)
    assert slow.is_recording()
    assert fast.is_recording()
    flags = [s.get_span_context().trace_flags for s in (slow, fast)]
    assert flags[0] == flags[1]
    assert not flags[1].sampled
    finish_alike(slow, fast)
    assert exporter.get_finished_spans() == ()  # unsampled: not exported
    assert shape(fast) == shape(slow)  # type: ignore[arg-type]


def test_user_calls_are_validated_and_limited_as_in_the_sdk() -> None:
    provider, exporter = make_provider(span_limits=SpanLimits(max_events=3))
    slow, fast = both(provider, Context())
    for span in (slow, fast):
        span.set_attribute("user.ok", 3)
        span.set_attribute("user.bad", {"not": "allowed"})
        span.set_attributes({"user.list": [1, 2], "user.mixed": [1, "a"]})
        span.add_event("user", {"k": [1, 2], "bad": object()})  # type: ignore[dict-item]
        span.add_link(REMOTE, {"why": "because"})
        span.record_exception(ValueError("boom"))
        span.update_name("renamed")
        span.set_status(trace.StatusCode.ERROR, "bad")
        for index in range(3):
            if isinstance(span, ChanxSpan):
                span.add_trusted_event("message_sent", {"n": index})
            else:
                span.add_event("message_sent", {"n": index})
        span.end()
        span.set_attribute("after.end", 1)
        span.end()  # a second end is ignored, as the SDK does
    slow_done, fast_done = finished(exporter)
    fast_shape = shape(fast_done)
    assert fast_shape == shape(slow_done)
    # 5 events (user, exception, 3 sent frames) over a limit of 3.
    assert fast_shape["dropped"] == (0, 2, 0)
    assert [name for name, _ in fast_shape["events"]] == ["message_sent"] * 3
    assert "after.end" not in fast_shape["attributes"]


def test_processors_see_start_ending_and_end_in_order() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    recorder = Recorder()
    provider.add_span_processor(recorder)
    start = sdk_starter(provider.get_tracer("chanx"))
    assert start is not None
    parent = trace.set_span_in_context(NonRecordingSpan(REMOTE))
    span = start("receive ping", parent, SpanKind.CONSUMER, dict(ATTRIBUTES), None)
    span.end()
    [(started, s1, context), (ending, s2, _), (ended, s3, end_time)] = recorder.calls
    assert (started, ending, ended) == ("start", "ending", "end")
    assert s1 is s2 is s3 is span
    assert context is parent
    assert end_time is not None


def test_a_processor_added_later_sees_start_and_ending_of_later_spans() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))  # no-op hooks
    start = sdk_starter(provider.get_tracer("chanx"))
    assert start is not None
    start("receive a", Context(), SpanKind.CONSUMER, {}, None).end()
    recorder = Recorder()
    provider.add_span_processor(recorder)
    span = start("receive b", Context(), SpanKind.CONSUMER, {}, None)
    span.end()
    assert [(call, seen) for call, seen, _ in recorder.calls] == [
        ("start", span),
        ("ending", span),
        ("end", span),
    ]
    provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["receive a", "receive b"]
    provider.shutdown()


def test_tight_limits_or_other_tracers_get_the_sdk_path() -> None:
    provider, _ = make_provider(span_limits=SpanLimits(max_attribute_length=4))
    assert sdk_starter(provider.get_tracer("chanx")) is None
    provider, _ = make_provider(span_limits=SpanLimits(max_events=0))
    assert sdk_starter(provider.get_tracer("chanx")) is None
    assert sdk_starter(trace.NoOpTracer()) is None


def test_starter_follows_the_provider_and_the_setting(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _exporter = pair
    fast = SpanStarter(provider)
    span = fast.start("a", Context(), SpanKind.INTERNAL, {"k": "v"})
    assert isinstance(span, ChanxSpan)
    assert fast.fast
    sdk = SpanStarter(provider, fast=False)
    span = sdk.start("b", Context(), SpanKind.INTERNAL, {"k": "v"})
    assert span.is_recording()
    assert not isinstance(span, ChanxSpan)
    assert not sdk.fast


def test_disabled_tracer_records_nothing() -> None:
    provider, _exporter = make_provider()
    configure: Any = getattr(provider, "_set_tracer_configurator", None)
    if configure is None:
        pytest.skip("this SDK has no tracer configurator")
    from opentelemetry.sdk.trace import _disable_tracer_configurator

    configure(tracer_configurator=_disable_tracer_configurator)
    slow, fast = both(provider, Context())
    assert type(fast) is type(slow) is NonRecordingSpan


def test_a_fast_path_that_fails_to_build_falls_back_to_the_sdk(
    pair: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(tracer: Any) -> None:
        raise AttributeError("an SDK with other internals")

    monkeypatch.setattr(fast_spans, "sdk_starter", broken)
    provider, exporter = pair
    starter = SpanStarter(provider)
    with capture_logs() as logs:
        span = starter.start("a", Context(), SpanKind.INTERNAL, {"k": "v"})
    span.end()
    assert not starter.fast
    assert [s.name for s in exporter.get_finished_spans()] == ["a"]
    assert [entry["event"] for entry in logs] == ["fast_spans_unavailable"]


def test_trusted_events_are_the_sdks_events(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = pair
    span = chanx_starter(provider)("receive ping", Context(), SpanKind.CONSUMER, {}, ())
    assert isinstance(span, ChanxSpan)
    before = time_ns()
    span.add_trusted_event("message_sent", {"chanx.action": "pong"})
    after = time_ns()
    (event,) = span.events
    assert type(event) is Event
    assert event.name == "message_sent"
    assert event.attributes == {"chanx.action": "pong"}
    assert before <= event.timestamp <= after
    assert vars(event) == vars(Event(event.name, event.attributes, event.timestamp))
    span.end()


def test_spans_updated_from_many_threads_lose_nothing(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    # chanx's spans share one lock; a user's sync code may write from threads.
    provider, exporter = pair
    start = chanx_starter(provider)
    spans = [
        start(f"receive {i}", Context(), SpanKind.CONSUMER, {}, ()) for i in range(3)
    ]
    assert all(isinstance(span, ChanxSpan) for span in spans)

    def write(worker: int) -> None:
        for index in range(20):
            for span in spans:
                span.set_attribute(f"w{worker}.{index}", index)
                assert isinstance(span, ChanxSpan)
                span.add_trusted_event("tick", {"worker": worker})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for span in spans:
        span.end()
    for done in exporter.get_finished_spans():
        assert len(done.attributes or {}) == 80
        assert len(done.events) == 80


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_child_forked_while_the_span_lock_is_held_can_still_write(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = pair
    span = chanx_starter(provider)("receive ping", Context(), SpanKind.CONSUMER, {}, ())
    assert isinstance(span, ChanxSpan)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ChanxSpan._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the holder thread does not exist here
            code = 0 if ChanxSpan._lock.acquire(timeout=5) else 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
    span.end()


def test_ids_are_drawn_as_the_sdk_draws_them(
    pair: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Same random state, same ids: the fast path draws the trace id, then
    the span id, from the random module as the SDK's generator does."""
    provider, _ = pair
    tracer = provider.get_tracer("chanx", "1")
    start = sdk_starter(tracer)
    assert start is not None
    state = random.getstate()
    fast = start("receive ping", Context(), SpanKind.CONSUMER, dict(ATTRIBUTES), None)
    random.setstate(state)
    slow = tracer.start_span("receive ping", Context(), kind=SpanKind.CONSUMER)
    assert fast.get_span_context() == slow.get_span_context()
    assert fast.get_span_context().is_valid
    child = start(
        "receive pong",
        trace.set_span_in_context(fast),
        SpanKind.CONSUMER,
        dict(ATTRIBUTES),
        None,
    )
    assert child.parent == fast.get_span_context()  # type: ignore[attr-defined]
    assert child.get_span_context().trace_id == fast.get_span_context().trace_id
    for span in (fast, slow, child):
        span.end()


def test_a_zero_draw_is_drawn_again_as_the_sdk_does(
    pair: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, _ = pair
    start = sdk_starter(provider.get_tracer("chanx", "1"))
    assert start is not None
    draws = iter([0, 0, 0x5, 0, 0x7])
    monkeypatch.setattr(random, "getrandbits", lambda bits: next(draws))
    span = start("receive ping", Context(), SpanKind.CONSUMER, {}, None)
    context = span.get_span_context()
    assert (context.trace_id, context.span_id, context.is_valid) == (5, 7, True)
    span.end()


def test_a_processor_added_while_a_span_is_open_sees_its_end_as_in_the_sdk() -> None:
    """The processors are read when the span ends, as the SDK's multi-processor
    reads them: one added meanwhile gets ``_on_ending`` and ``on_end``."""
    seen: dict[str, list[str]] = {}
    for path in ("sdk", "fast"):
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
        tracer = provider.get_tracer("chanx")
        start = sdk_starter(tracer)
        assert start is not None
        if path == "sdk":
            span = tracer.start_span("receive a", Context())
        else:
            span = start("receive a", Context(), SpanKind.CONSUMER, {}, None)
        recorder = Recorder()
        provider.add_span_processor(recorder)
        span.end()
        seen[path] = [call for call, _, _ in recorder.calls]
        provider.shutdown()
    assert seen["fast"] == seen["sdk"] == ["ending", "end"]
