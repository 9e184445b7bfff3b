"""An ended span's fields as ``ReadableSpan``'s properties return them,
without their calls and copies: what the OTLP encoder reads of every span."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from chanx.telemetry.shared_attributes import PLAIN_ATTRIBUTES

__all__ = ["span_fields"]


# ReadableSpan's properties span_fields() reads around, when a class keeps them.
_PROPERTIES = (
    "context",
    "parent",
    "name",
    "kind",
    "start_time",
    "end_time",
    "status",
    "attributes",
    "events",
    "links",
    "dropped_attributes",
    "dropped_events",
    "dropped_links",
    "resource",
    "instrumentation_scope",
)
_plain_types: dict[type, bool] = {}


def _is_plain(kind: type) -> bool:
    plain = _plain_types.get(kind)
    if plain is None:
        plain = _plain_types[kind] = all(
            getattr(kind, name, None) is getattr(ReadableSpan, name)
            for name in _PROPERTIES
        )
    return plain


def span_fields(span: ReadableSpan) -> tuple[Any, ...]:
    """Context, parent, name, kind, start, end, status, attributes, events,
    links, the dropped attribute, event and link counts, and (resource,
    instrumentation scope).

    The SDK's properties are a Python call each, copy the containers (a
    read-only proxy, tuples built under a lock) and count what was dropped
    through abstract-class checks: for a span whose class keeps
    ``ReadableSpan``'s properties, read what they read (no longer written
    to once the span ended). Only the SDK's bounded containers drop
    anything; chanx's spans keep a plain dict, list and tuple.
    """
    if not _is_plain(type(span)):
        context = span.get_span_context()
        return (
            *(context, span.parent, span.name, span.kind, span.start_time),
            *(span.end_time, span.status, span.attributes, span.events, span.links),
            *(span.dropped_attributes, span.dropped_events, span.dropped_links),
            (span.resource, span.instrumentation_scope),
        )
    plain: Any = span
    attributes, events, links = plain._attributes, plain._events, plain._links
    # One flat tuple display: no intermediate tuples spliced together.
    return (
        plain._context,
        plain._parent,
        plain._name,
        plain._kind,
        plain._start_time,
        plain._end_time,
        plain._status,
        attributes,
        events if type(events) is list else _elements(events),
        links if type(links) is tuple else _elements(links),
        0 if type(attributes) in PLAIN_ATTRIBUTES else span.dropped_attributes,
        0 if type(events) is list else span.dropped_events,
        0 if isinstance(links, tuple) else span.dropped_links,
        (plain._resource, plain._instrumentation_scope),
    )


def _elements(items: Any) -> Iterable[Any]:
    # The SDK's BoundedList copies its deque under a lock to iterate.
    raw = getattr(items, "_dq", None)
    return raw if type(raw) is deque else items
