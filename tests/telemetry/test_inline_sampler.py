"""Stock samplers decided inline give the SDK samplers' own decisions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from chanx.telemetry.fast_spans import sdk_starter
from chanx.telemetry.inline_sampler import inline_decider

STOCK: dict[str, Sampler] = {
    "sdk default": ParentBased(ALWAYS_ON),
    "parentbased_always_off": ParentBased(ALWAYS_OFF),
    "parentbased_traceidratio": ParentBasedTraceIdRatio(0.25),
    "ratio root": ParentBased(TraceIdRatioBased(0.5)),
    "delegates swapped": ParentBased(
        ALWAYS_ON,
        remote_parent_sampled=ALWAYS_OFF,
        remote_parent_not_sampled=ALWAYS_ON,
        local_parent_sampled=ALWAYS_OFF,
        local_parent_not_sampled=ALWAYS_ON,
    ),
}
STATE = TraceState([("vendor", "v1")])
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def parents() -> dict[str, SpanContext | None]:
    return {
        "root": None,
        "remote sampled": SpanContext(7, 8, is_remote=True, trace_flags=SAMPLED),
        "remote unsampled": SpanContext(7, 8, is_remote=True),
        "local sampled": SpanContext(
            7, 8, is_remote=False, trace_flags=SAMPLED, trace_state=STATE
        ),
        "local unsampled": SpanContext(7, 8, is_remote=False, trace_state=STATE),
    }


def sdk_decision(
    sampler: Sampler, parent: SpanContext | None, trace_id: int
) -> tuple[bool, TraceState | None]:
    context = (
        Context()
        if parent is None
        else trace.set_span_in_context(NonRecordingSpan(parent))
    )
    result = sampler.should_sample(context, trace_id, "receive ping", attributes={})
    assert result.decision is not Decision.RECORD_ONLY
    return result.decision is Decision.RECORD_AND_SAMPLE, result.trace_state


@pytest.mark.parametrize("parent_name", list(parents()))
@pytest.mark.parametrize("sampler_name", list(STOCK))
def test_each_parent_kind_is_decided_as_the_sdk_does(
    sampler_name: str, parent_name: str
) -> None:
    sampler = STOCK[sampler_name]
    parent = parents()[parent_name]
    decide = inline_decider(sampler)
    assert decide is not None
    for trace_id in (1, 2**63, 2**64 - 1, 2**127 + 5, 2**128 - 1):
        sampled, state = sdk_decision(sampler, parent, trace_id)
        assert decide(parent, trace_id) is sampled
        # The span starter gives every span its parent's trace state.
        assert (None if parent is None else parent.trace_state) == state


@given(
    rate=st.floats(min_value=0.0, max_value=1.0),
    trace_id=st.integers(min_value=1, max_value=2**128 - 1),
)
def test_ratio_roots_sample_the_same_trace_ids(rate: float, trace_id: int) -> None:
    sampler = ParentBasedTraceIdRatio(rate)
    decide = inline_decider(sampler)
    assert decide is not None
    assert decide(None, trace_id) is sdk_decision(sampler, None, trace_id)[0]


class FlaggedContext(SpanContext):
    """A span context class whose flags are not what its tuple holds."""

    @property
    def trace_flags(self) -> TraceFlags:
        return SAMPLED

    @property
    def is_remote(self) -> bool:
        return False


@pytest.mark.parametrize("sampler_name", list(STOCK))
def test_a_span_context_subclass_is_read_through_its_properties(
    sampler_name: str,
) -> None:
    # Only SpanContext itself is read by index: a subclass may override.
    parent = FlaggedContext(7, 8, is_remote=True)
    assert parent.trace_flags.sampled
    assert not parent.is_remote
    sampler = STOCK[sampler_name]
    decide = inline_decider(sampler)
    assert decide is not None
    for trace_id in (1, 2**127 + 5):
        assert decide(parent, trace_id) is sdk_decision(sampler, parent, trace_id)[0]


class Subclass(ParentBased):
    """A user's ParentBased: it may override anything."""


class RatioSubclass(TraceIdRatioBased):
    """A user's ratio sampler."""


@pytest.mark.parametrize(
    "sampler",
    [
        ALWAYS_ON,
        TraceIdRatioBased(0.5),
        Subclass(ALWAYS_ON),
        ParentBased(RatioSubclass(0.5)),
        ParentBased(ParentBased(ALWAYS_ON)),
        ParentBased(ALWAYS_ON, remote_parent_sampled=TraceIdRatioBased(0.5)),
    ],
    ids=["bare", "bare ratio", "subclass", "ratio subclass", "nested", "delegate"],
)
def test_other_samplers_are_asked_as_usual(sampler: Sampler) -> None:
    assert inline_decider(sampler) is None


class CountingIds(IdGenerator):
    """Trace ids 1, 2, 3, ... spread over the whole 128-bit range."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        return 0xABC

    def generate_trace_id(self) -> int:
        self.next += 1
        return (self.next * 0x9E3779B97F4A7C15_F39CC0605CEDC834) % 2**128 or 1

    def is_trace_id_random(self) -> bool:
        return True


def test_the_fast_path_samples_the_same_spans_as_the_sdk() -> None:
    """Same ids in the same order: the SDK and chanx keep the same spans."""
    kept: dict[str, list[bool]] = {}
    for path in ("sdk", "fast"):
        provider = TracerProvider(
            sampler=ParentBasedTraceIdRatio(0.3),
            id_generator=CountingIds(),
            shutdown_on_exit=False,
        )
        tracer = provider.get_tracer("chanx")
        start: Any = sdk_starter(tracer)
        assert start is not None
        spans = [
            tracer.start_span("receive ping", Context())
            if path == "sdk"
            else start("receive ping", Context(), trace.SpanKind.CONSUMER, {}, None)
            for _ in range(200)
        ]
        kept[path] = [span.is_recording() for span in spans]
        for span in spans:
            span.end()
        provider.shutdown()
    assert kept["fast"] == kept["sdk"]
    assert 20 < sum(kept["fast"]) < 100  # the ratio is honoured, not all or none


class Spy(Sampler):
    """Wraps the default sampler and counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        self.calls += 1
        return ParentBased(ALWAYS_ON).should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "spy"


def test_a_user_sampler_is_still_called_for_every_span() -> None:
    spy = Spy()
    provider = TracerProvider(sampler=spy, shutdown_on_exit=False)
    start: Any = sdk_starter(provider.get_tracer("chanx"))
    for _ in range(3):
        start("receive ping", Context(), trace.SpanKind.CONSUMER, {}, None).end()
    assert spy.calls == 3


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 1.0])
def test_trace_ids_at_the_ratio_bound_are_decided_alike(rate: float) -> None:
    sampler = ParentBasedTraceIdRatio(rate)
    decide = inline_decider(sampler)
    assert decide is not None
    bound = TraceIdRatioBased.get_bound_for_rate(rate)
    high = 0xFEED << 64  # the upper half is not looked at
    for low in (bound - 1, bound, bound + 1):
        if 0 <= low < 2**64:
            trace_id = high | low
            assert decide(None, trace_id) is sdk_decision(sampler, None, trace_id)[0]
