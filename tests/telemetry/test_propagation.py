"""Trace context read from channel-layer carriers, once per distinct carrier."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chanx.carriers import carrier_of, carrier_text
from chanx.telemetry.propagation import ROOT, ExtractedContexts

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def parent_ids(context: Any) -> tuple[int, int]:
    span_context = trace.get_current_span(context).get_span_context()
    return span_context.trace_id, span_context.span_id


@pytest.fixture
def restore_propagator() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(saved)


def test_receivers_of_one_carrier_share_what_was_extracted() -> None:
    extract = ExtractedContexts()
    first = extract({"traceparent": TRACEPARENT})
    again = extract({"traceparent": TRACEPARENT})
    assert again is first
    assert parent_ids(first) == (
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
    )
    assert parent_ids(first) == parent_ids(
        propagate.extract({"traceparent": TRACEPARENT}, ROOT)
    )


def test_empty_or_odd_carriers_still_give_a_context() -> None:
    extract = ExtractedContexts()
    assert extract({}) is ROOT
    odd: Any = {"traceparent": TRACEPARENT, "junk": ["not", "hashable"]}
    assert parent_ids(extract(odd))[1] == 0xB7AD6B7169203331


def test_many_distinct_carriers_stay_correct() -> None:
    extract = ExtractedContexts()
    for index in range(1, 600):
        parent = f"00-{index:032x}-{index:016x}-01"
        assert parent_ids(extract({"traceparent": parent})) == (index, index)


def test_a_dict_carrier_changed_in_place_is_read_again() -> None:
    extract = ExtractedContexts()
    carrier = {"traceparent": f"00-{1:032x}-{1:016x}-01"}
    assert parent_ids(extract(carrier)) == (1, 1)
    carrier["traceparent"] = f"00-{2:032x}-{2:016x}-01"
    assert parent_ids(extract(carrier)) == (2, 2)


def test_interleaved_shared_carriers_each_give_their_own_context() -> None:
    extract = ExtractedContexts()
    texts = [carrier_text({"traceparent": f"00-{i:032x}-{i:016x}-01"}) for i in (1, 2)]
    first, second = (carrier_of({"meta": text}) for text in texts)
    for carrier, expected in [(first, 1), (first, 1), (second, 2), (first, 1)]:
        assert parent_ids(extract(carrier)) == (expected, expected)


@pytest.mark.usefixtures("restore_propagator")
def test_a_new_global_propagator_is_used_at_once() -> None:
    extract = ExtractedContexts()
    carrier = {"traceparent": TRACEPARENT}
    assert trace.get_current_span(extract(carrier)).get_span_context().is_valid

    class Nothing(TextMapPropagator):
        def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
            return context

        def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
            return None

        @property
        def fields(self) -> set[str]:
            return set()

    propagate.set_global_textmap(Nothing())
    assert not trace.get_current_span(extract(carrier)).get_span_context().is_valid
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    assert trace.get_current_span(extract(carrier)).get_span_context().is_valid
