"""One span's ``Span`` message, in protobuf wire format.

:func:`encode_span` writes the body of the OTLP ``Span`` message for an SDK
span exactly as the official encoder maps it (which fields it sets, the span
and link flags, an empty ``Status`` on unset spans, no link
``trace_state``), and reuses what repeats from span to span: span and event
names, attributes with a str, bool or int value (and shared attribute sets
whole, :mod:`chanx.telemetry.shared_attributes`), and links without
attributes (chanx links each frame's span to its connection's). chanx's own
spans that nothing else wrote to take a shorter way (``_chanx_body``). The
request around the spans is :mod:`chanx.telemetry.otlp_encoding`'s.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags, Status
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode

from chanx.telemetry.chanx_span import UNSET_STATUS, ChanxSpan
from chanx.telemetry.current_span import (
    INDEXED_SPAN_CONTEXT,
    SPAN_ID,
    TRACE_ID,
    TRACE_STATE,
)
from chanx.telemetry.otlp_wire import (
    FIXED32,
    FIXED64,
    LENGTH,
    VARINT,
    append_attributes,
    field_cache,
    fixed64,
    length_prefixed,
    shared_and_one,
    string_field,
    tag,
    varint,
)
from chanx.telemetry.shared_attributes import (
    PLAIN_ATTRIBUTES,
    SharedAndOne,
    SharedAttributes,
)
from chanx.telemetry.span_fields import span_fields
from chanx.telemetry.span_starter import ValidLinks

__all__ = ["encode_span"]

_SPAN = Span.DESCRIPTOR
_TRACE_ID = tag(_SPAN, "trace_id", LENGTH) + b"\x10"
_SPAN_ID = tag(_SPAN, "span_id", LENGTH) + b"\x08"
_TRACE_STATE = tag(_SPAN, "trace_state", LENGTH)
_PARENT_ID = tag(_SPAN, "parent_span_id", LENGTH) + b"\x08"
_NAME = tag(_SPAN, "name", LENGTH)
_START = tag(_SPAN, "start_time_unix_nano", FIXED64)
_END = tag(_SPAN, "end_time_unix_nano", FIXED64)
_ATTRIBUTES = tag(_SPAN, "attributes", LENGTH)
_DROPPED_ATTRIBUTES = tag(_SPAN, "dropped_attributes_count", VARINT)
_EVENTS = tag(_SPAN, "events", LENGTH)
_DROPPED_EVENTS = tag(_SPAN, "dropped_events_count", VARINT)
_LINKS = tag(_SPAN, "links", LENGTH)
_DROPPED_LINKS = tag(_SPAN, "dropped_links_count", VARINT)
_STATUS = tag(_SPAN, "status", LENGTH)
_KINDS = {
    kind: tag(_SPAN, "kind", VARINT)
    + varint(Span.SpanKind.Value(f"SPAN_KIND_{kind.name}"))
    for kind in SpanKind
}
# Enum hashing runs in Python; the members are singletons, so look them up by id.
_KINDS_BY_ID = {id(kind): encoded for kind, encoded in _KINDS.items()}


def _flags(field_tag: bytes) -> tuple[bytes, bytes]:
    # The official encoder writes only these bits (not the trace flags).
    local = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
    remote = local | SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
    return (
        field_tag + local.to_bytes(4, "little"),
        field_tag + remote.to_bytes(4, "little"),
    )


_SPAN_LOCAL, _SPAN_REMOTE = _flags(tag(_SPAN, "flags", FIXED32))

_EVENT = Span.Event.DESCRIPTOR
_EVENT_TIME = tag(_EVENT, "time_unix_nano", FIXED64)
_EVENT_NAME = tag(_EVENT, "name", LENGTH)
_EVENT_ATTRIBUTES = tag(_EVENT, "attributes", LENGTH)
_EVENT_DROPPED = tag(_EVENT, "dropped_attributes_count", VARINT)

_LINK = Span.Link.DESCRIPTOR
_LINK_TRACE_ID = tag(_LINK, "trace_id", LENGTH) + b"\x10"
_LINK_SPAN_ID = tag(_LINK, "span_id", LENGTH) + b"\x08"
_LINK_ATTRIBUTES = tag(_LINK, "attributes", LENGTH)
_LINK_DROPPED = tag(_LINK, "dropped_attributes_count", VARINT)
_LINK_LOCAL, _LINK_REMOTE = _flags(tag(_LINK, "flags", FIXED32))

_STATUS_MESSAGE = tag(Status.DESCRIPTOR, "message", LENGTH)
_STATUS_CODE = tag(Status.DESCRIPTOR, "code", VARINT)
_UNSET_STATUS = _STATUS + b"\x00"
_UNSET = StatusCode.UNSET

# Names are bounded in chanx (templates, actions); the cap is a safety net.
_MAX_CACHED = 4096
_names: dict[str, bytes] = {}
_event_names: dict[str, bytes] = {}
# Bodies of links without attributes, by the linked context's identity.
_bare_links: dict[int, tuple[SpanContext, bytes]] = {}


def _cached_name(cache: dict[str, bytes], field_tag: bytes, name: str) -> bytes:
    encoded = cache.get(name)
    if encoded is None:
        encoded = string_field(field_tag, name)
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        cache[name] = encoded
    return encoded


def encode_span(span: ReadableSpan) -> tuple[bytes, tuple[Any, Any]]:
    """The body of the ``Span`` message for ``span``, and its resource and scope.

    Raises:
        UnsupportedValue: A value only the official encoder handles.
    """
    if span.__class__ is ChanxSpan:
        body = _chanx_body(span)
        if body is not None:
            return body, (span._resource, span._instrumentation_scope)
    (
        context,
        parent,
        name,
        kind,
        start,
        end,
        status,
        attributes,
        events,
        links,
        dropped_attributes,
        dropped_events,
        dropped_links,
        origin,
    ) = span_fields(span)
    if context is None:
        raise ValueError("span without a context")
    # The API's SpanContext is a tuple: its fields by index, without a
    # property call each.
    if context.__class__ is INDEXED_SPAN_CONTEXT:
        trace_id, span_id = context[TRACE_ID], context[SPAN_ID]
        trace_state = context[TRACE_STATE]
    else:
        trace_id, span_id = context.trace_id, context.span_id
        trace_state = context.trace_state
    parts = [
        _TRACE_ID,
        trace_id.to_bytes(16, "big"),
        _SPAN_ID,
        span_id.to_bytes(8, "big"),
    ]
    if trace_state:
        parts.append(string_field(_TRACE_STATE, _trace_state(context)))
    flags = _SPAN_LOCAL
    if parent is not None:
        parts += (_PARENT_ID, parent.span_id.to_bytes(8, "big"))
        if parent.is_remote:
            flags = _SPAN_REMOTE
    parts += (
        _names.get(name) or _cached_name(_names, _NAME, name),
        _KINDS_BY_ID.get(id(kind)) or _KINDS[kind],
    )
    if start:
        parts += (_START, fixed64(start))
    if end:
        parts += (_END, fixed64(end))
    append_attributes(parts, _ATTRIBUTES, attributes)
    if dropped_attributes:
        parts += (_DROPPED_ATTRIBUTES, varint(dropped_attributes))
    for event in events:
        body = _event(event)
        parts += (_EVENTS, varint(len(body)), body)
    if dropped_events:
        parts += (_DROPPED_EVENTS, varint(dropped_events))
    for link in links:
        body = _link(link)
        parts += (_LINKS, varint(len(body)), body)
    if dropped_links:
        parts += (_DROPPED_LINKS, varint(dropped_links))
    if status is not None:
        if status is UNSET_STATUS or (
            status.status_code is _UNSET and not status.description
        ):
            parts.append(_UNSET_STATUS)
        else:
            parts.append(_status(status))
    parts.append(flags)
    return b"".join(parts), origin


# Both ids in one call (the trace id as its two big-endian halves), and
# both times in another.
_IDS = struct.Struct(">2sQQ2sQ").pack
_TIMES = struct.Struct("<1sQ1sQ").pack
_TIME = struct.Struct("<1sQ").pack
_SPAN_FIELDS = field_cache(_ATTRIBUTES)
_EVENT_FIELDS = field_cache(_EVENT_ATTRIBUTES)
_LOW_64 = (1 << 64) - 1
# What chanx's spans keep their links in (nothing dropped from either).
_LINK_TUPLES = frozenset((tuple, ValidLinks))
# name -> (kind, then the name, kind, unset status and flags fields of a
# span with a local parent or none, and of one with a remote parent).
_tails: dict[str, tuple[SpanKind, bytes, bytes]] = {}
# The link fields of chanx's links (one tuple per connection or group
# message) by the tuple's identity: (the tuple, its fields).
_valid_links: dict[int, tuple[ValidLinks, bytes]] = {}


def _chanx_body(span: Any) -> bytes | None:
    """:func:`encode_span`'s body for a chanx span of the usual shape, else None.

    The usual shape: no trace state, an unset status, both times, and the
    containers chanx's spans start with (nothing dropped from them). The
    fields come in another order than the official encoder's: protobuf
    readers take fields in any order, and the message is the same.
    """
    context = span._context
    if (
        context.__class__ is not INDEXED_SPAN_CONTEXT
        or context[TRACE_STATE]
        or span._status is not UNSET_STATUS
    ):
        return None
    # The compact first event before the list: a reader that made the list
    # (with the event in it) cleared the compact one after setting the list.
    compact, events = span._compact_event, span._event_list
    links, attributes = span._links, span._attributes
    start, end = span._start_time, span._end_time
    if (
        (events is not None and events.__class__ is not list)
        or links.__class__ not in _LINK_TUPLES
        or attributes.__class__ not in PLAIN_ATTRIBUTES
        or not (start and end)
    ):
        return None
    trace_id = context[TRACE_ID]
    parts = [
        _IDS(_TRACE_ID, trace_id >> 64, trace_id & _LOW_64, _SPAN_ID, context[SPAN_ID]),
        _TIMES(_START, start, _END, end),
    ]
    parent = span._parent
    if parent is None:
        parts.append(_tail(span._name, span._kind)[1])
    else:
        parts += (
            _PARENT_ID,
            parent.span_id.to_bytes(8, "big"),
            _tail(span._name, span._kind)[2 if parent.is_remote else 1],
        )
    if attributes.__class__ is SharedAndOne:
        parts.append(
            shared_and_one(
                _SPAN_FIELDS,
                _ATTRIBUTES,
                attributes.shared,
                attributes.key,
                attributes.value,
            )
        )
    else:
        append_attributes(parts, _ATTRIBUTES, attributes)
    if events is not None:
        for event in events:
            body = _event(event)
            parts += (_EVENTS, varint(len(body)), body)
    elif compact is not None:
        body = _shared_and_one_event(*compact)
        parts += (_EVENTS, varint(len(body)), body)
    if links:
        parts.append(_links(links))
    return b"".join(parts)


def _links(links: Sequence[Link]) -> bytes:
    """The ``links`` fields of a span holding ``links``."""
    found = _valid_links.get(id(links))
    if found is not None and found[0] is links:
        return found[1]
    fields = b"".join([_LINKS + varint(len(body)) + body for body in map(_link, links)])
    if links.__class__ is ValidLinks:
        # Immutable, and shared by every span of a connection: kept.
        if len(_valid_links) >= _MAX_CACHED:
            _valid_links.clear()
        _valid_links[id(links)] = (links, fields)
    return fields


def _tail(name: str, kind: SpanKind) -> tuple[SpanKind, bytes, bytes]:
    tail = _tails.get(name)
    if tail is None or tail[0] is not kind:
        fields = string_field(_NAME, name) + _KINDS[kind] + _UNSET_STATUS
        tail = (kind, fields + _SPAN_LOCAL, fields + _SPAN_REMOTE)
        if len(_tails) >= _MAX_CACHED:
            _tails.clear()
        _tails[name] = tail
    return tail


def _trace_state(context: SpanContext) -> str:
    return ",".join([f"{key}={value}" for key, value in context.trace_state.items()])


def _status(status: Any) -> bytes:
    body = string_field(_STATUS_MESSAGE, status.description or "")
    if code := status.status_code.value:
        body += _STATUS_CODE + varint(code)
    return length_prefixed(_STATUS, body)


def _event(event: Event) -> bytes:
    parts: list[bytes] = []
    if type(event) is Event:  # its properties only return these fields
        timestamp, name, attributes = event._timestamp, event._name, event._attributes
        if attributes.__class__ is SharedAndOne and timestamp:
            # chanx's message_sent events, once a reader made them Events.
            return _shared_and_one_event(
                name, timestamp, attributes.shared, attributes.key, attributes.value
            )
    else:
        timestamp, name, attributes = event.timestamp, event.name, event.attributes
    if timestamp:
        parts += (_EVENT_TIME, fixed64(timestamp))
    parts.append(
        _event_names.get(name) or _cached_name(_event_names, _EVENT_NAME, name)
    )
    append_attributes(parts, _EVENT_ATTRIBUTES, attributes)
    if type(attributes) not in PLAIN_ATTRIBUTES and (count := event.dropped_attributes):
        parts += (_EVENT_DROPPED, varint(count))
    return b"".join(parts)


def _shared_and_one_event(
    name: str, timestamp: int, shared: SharedAttributes, key: str, value: Any
) -> bytes:
    """An event's fields: its time, its name, ``shared`` then ``key``: ``value``
    (a :data:`~chanx.telemetry.chanx_span.CompactEvent`'s fields, in order)."""
    return (
        _TIME(_EVENT_TIME, timestamp)
        + (_event_names.get(name) or _cached_name(_event_names, _EVENT_NAME, name))
        + shared_and_one(_EVENT_FIELDS, _EVENT_ATTRIBUTES, shared, key, value)
    )


def _link(link: Link) -> bytes:
    # Like the official encoder: no trace_state, flags from the linked context.
    plain = type(link) is Link  # its properties only return these fields
    context = link._context if plain else link.context
    if plain and not link._attributes:
        # chanx links every frame's span to its connection's: reuse that.
        entry = _bare_links.get(id(context))
        if entry is not None and entry[0] is context:
            return entry[1]
    attributes: list[bytes] = []
    append_attributes(attributes, _LINK_ATTRIBUTES, link.attributes)
    dropped = link.dropped_attributes
    parts = [
        _LINK_TRACE_ID,
        context.trace_id.to_bytes(16, "big"),
        _LINK_SPAN_ID,
        context.span_id.to_bytes(8, "big"),
        *attributes,
    ]
    if dropped:
        parts += (_LINK_DROPPED, varint(dropped))
    parts.append(_LINK_REMOTE if context.is_remote else _LINK_LOCAL)
    body = b"".join(parts)
    if plain and not attributes and not dropped:
        # Only plain links are looked up above: only they are kept.
        if len(_bare_links) >= _MAX_CACHED:
            _bare_links.clear()
        _bare_links[id(context)] = (context, body)
    return body
