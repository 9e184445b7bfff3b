"""Telemetry carriers in channel-layer payloads: text written once, read by all."""

from __future__ import annotations

from typing import Any

import pytest

from chanx.carriers import NO_CARRIER, carrier_of, carrier_text
from chanx.events import build_event_payload
from chanx.groups import build_group_payload
from tests.app.messages import NotifyEvent, NotifyPayload

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def test_a_carrier_survives_the_trip_through_a_payload() -> None:
    carrier = {**TRACE, "tracestate": "vendor=1", "sent_at": "1764400000.5"}
    assert carrier_of({"meta": carrier_text(carrier)}) == carrier


def test_payloads_hold_no_containers_but_the_event() -> None:
    # The in-memory layer copies a payload per member and queues the copy:
    # each container in it counts towards the next garbage collection.
    group = build_group_payload(
        "{}",
        action=None,
        kind="json",
        exclude_current=False,
        from_channel="sender",
        from_user_pk=None,
        meta=dict(TRACE),
    )
    assert all(isinstance(v, (str, bool, type(None))) for v in group.values())
    event = build_event_payload(NotifyEvent(payload=NotifyPayload(content="x")), TRACE)
    assert isinstance(event["meta"], str)
    assert carrier_of(group) == carrier_of(event) == TRACE


def test_without_hooks_there_is_no_meta() -> None:
    event = build_event_payload(NotifyEvent(payload=NotifyPayload(content="x")), {})
    assert "meta" not in event
    assert carrier_of(event) is NO_CARRIER


def test_every_member_gets_the_one_parsed_carrier() -> None:
    text = carrier_text({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    copy = text[:1] + text[1:]  # an equal text, as another member receives it
    assert copy is not text
    assert carrier_of({"meta": text}) is carrier_of({"meta": copy})


@pytest.mark.parametrize(
    "meta",
    [
        None,
        {"traceparent": "x"},  # an older chanx's dict
        "not json",
        "[1, 2]",
        '{"traceparent": 7, "tracestate": ["a"]}',
        "{" * 5000,
    ],
)
def test_a_malformed_carrier_reads_as_none(meta: Any) -> None:
    carrier = carrier_of({"meta": meta})
    assert dict(carrier) == {}


def test_only_string_entries_are_read() -> None:
    carrier = carrier_of({"meta": '{"traceparent": "t", "sent_at": 12}'})
    assert carrier == {"traceparent": "t"}


def test_a_carrier_cannot_be_changed_by_one_member_for_the_others() -> None:
    carrier = carrier_of({"meta": carrier_text(TRACE)})
    with pytest.raises(TypeError):
        carrier["traceparent"] = "forged"  # type: ignore[index]
