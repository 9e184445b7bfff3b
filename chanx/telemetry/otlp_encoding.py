"""SDK spans straight to an OTLP ``ExportTraceServiceRequest``, in wire format.

The official encoder (``opentelemetry-exporter-otlp-proto-common``) builds a
protobuf object per span, attribute, event and link, then serializes them:
most of the batch processor's time under load. :func:`encode_spans` writes
the same message's bytes directly and reuses what repeats from span to span:
the ``Resource`` and ``InstrumentationScope`` blocks (once per distinct
object), span and event names, attributes with a str, bool or int value,
and links without attributes (chanx links each frame's span to its
connection's).

It maps every field exactly as the official encoder does (which fields it
sets, the span and link flags, an empty ``Status`` on unset spans, no link
``trace_state``), so the request parses to an equal message. Spans it cannot
encode raise :class:`~chanx.telemetry.otlp_wire.UnsupportedValue`, or any
other exception; the exporter then encodes the batch the official way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import (
    ResourceSpans,
    ScopeSpans,
    Span,
    SpanFlags,
    Status,
)
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode

from chanx.telemetry.chanx_span import UNSET_STATUS
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
    fixed64,
    length_prefixed,
    string_field,
    tag,
    varint,
)
from chanx.telemetry.shared_attributes import PLAIN_ATTRIBUTES
from chanx.telemetry.span_fields import span_fields

__all__ = ["PAUSE_EVERY", "encode_span", "encode_spans"]

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

_SCOPE = InstrumentationScope.DESCRIPTOR
_SCOPE_NAME = tag(_SCOPE, "name", LENGTH)
_SCOPE_VERSION = tag(_SCOPE, "version", LENGTH)
_SCOPE_ATTRIBUTES = tag(_SCOPE, "attributes", LENGTH)
_RESOURCE_ATTRIBUTES = tag(Resource.DESCRIPTOR, "attributes", LENGTH)
_SCOPE_SPANS_SCOPE = tag(ScopeSpans.DESCRIPTOR, "scope", LENGTH)
_SCOPE_SPANS_SPAN = tag(ScopeSpans.DESCRIPTOR, "spans", LENGTH)
_SCOPE_SPANS_SCHEMA = tag(ScopeSpans.DESCRIPTOR, "schema_url", LENGTH)
_RESOURCE_SPANS_RESOURCE = tag(ResourceSpans.DESCRIPTOR, "resource", LENGTH)
_RESOURCE_SPANS_SCOPES = tag(ResourceSpans.DESCRIPTOR, "scope_spans", LENGTH)
_RESOURCE_SPANS_SCHEMA = tag(ResourceSpans.DESCRIPTOR, "schema_url", LENGTH)
_REQUEST_RESOURCE_SPANS = tag(
    ExportTraceServiceRequest.DESCRIPTOR, "resource_spans", LENGTH
)

# Names are bounded in chanx (templates, actions); the cap is a safety net.
_MAX_CACHED = 4096
_names: dict[str, bytes] = {}
_event_names: dict[str, bytes] = {}
# Resource and scope blocks by object identity; the object is kept alongside
# so its id cannot be reused by another while the entry lives.
_blocks: dict[int, tuple[object, bytes]] = {}
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


def _resource_block(resource: Any) -> bytes:
    """``ResourceSpans.resource``: tag, length and ``Resource`` body."""
    parts: list[bytes] = []
    append_attributes(parts, _RESOURCE_ATTRIBUTES, resource.attributes)
    return length_prefixed(_RESOURCE_SPANS_RESOURCE, b"".join(parts))


def _scope_block(scope: Any) -> bytes:
    """``ScopeSpans.scope`` (empty for a span without a scope)."""
    if scope is None:
        return length_prefixed(_SCOPE_SPANS_SCOPE, b"")
    parts = [
        string_field(_SCOPE_NAME, scope.name or ""),
        string_field(_SCOPE_VERSION, scope.version or ""),
    ]
    append_attributes(parts, _SCOPE_ATTRIBUTES, scope.attributes)
    return length_prefixed(_SCOPE_SPANS_SCOPE, b"".join(parts))


def _cached_block(owner: Any, build: Any) -> bytes:
    entry = _blocks.get(id(owner))
    if entry is not None and entry[0] is owner:
        return entry[1]
    block: bytes = build(owner)
    if len(_blocks) >= 64:
        _blocks.clear()
    _blocks[id(owner)] = (owner, block)
    return block


_MISSING = object()


class _Canonical:
    """Maps objects to the first equal one seen, as dict keys would group them
    (same hash and ``==``), comparing each distinct object once per batch:
    hashing an SDK ``Resource`` serializes its attributes to JSON."""

    def __init__(self) -> None:
        self._by_id: dict[int, Hashable] = {}
        self._distinct: list[tuple[Hashable, int]] = []
        # Batches are mostly one resource and scope: skip the lookup then.
        self._last: object = _MISSING
        self._last_found: Hashable = None

    def __call__(self, obj: Hashable) -> Hashable:
        if obj is self._last:
            return self._last_found
        found = self._by_id.get(id(obj), _MISSING)
        if found is _MISSING:
            found = self._find(obj)
            self._by_id[id(obj)] = found
        self._last, self._last_found = obj, found
        return found

    def _find(self, obj: Hashable) -> Hashable:
        if not self._distinct:
            self._distinct.append((obj, hash(obj)))
            return obj
        obj_hash = hash(obj)
        for other, other_hash in self._distinct:
            if other_hash == obj_hash and other == obj:
                return other
        self._distinct.append((obj, obj_hash))
        return obj


_Scopes = dict[int, tuple[Any, list[bytes]]]
_Groups = dict[int, tuple[Any, _Scopes]]

#: Spans encoded between two calls of :func:`encode_spans`' ``pause`` by default.
PAUSE_EVERY = 32


def encode_spans(
    spans: Sequence[ReadableSpan | tuple[int, bytes]],
    pause: Callable[[], None] | None = None,
    pause_every: int = PAUSE_EVERY,
    origin: Callable[[int], tuple[Any, Any]] | None = None,
) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for ``spans``.

    Parses to a message equal to the official ``encode_spans(spans)``: spans
    grouped by resource, then by instrumentation scope, in order of first
    appearance.

    Args:
        spans: The batch: spans, or spans encoded when they ended as
            ``(key, body)`` pairs (:mod:`chanx.telemetry.span_records`).
        pause: Called between every ``pause_every`` spans (the exporter's
            thread may pass one that releases the GIL, so the event loop
            does not wait for a whole batch to be encoded).
        pause_every: Spans encoded between two pauses (at least 1).
        origin: The resource and scope of a pair's key (needed for pairs).

    Raises:
        UnsupportedValue: A value only the official encoder handles.
    """
    resources, scopes = _Canonical(), _Canonical()
    groups: _Groups = {}
    if pause is None:
        _group_spans(spans, resources, scopes, groups, origin)
    else:
        every = max(1, pause_every)
        for start in range(0, len(spans), every):
            if start:
                pause()
            chunk = spans[start : start + every]
            _group_spans(chunk, resources, scopes, groups, origin)
    return b"".join(
        length_prefixed(_REQUEST_RESOURCE_SPANS, _resource_spans(resource, by_scope))
        for resource, by_scope in groups.values()
    )


def _group_spans(
    spans: Sequence[ReadableSpan | tuple[int, bytes]],
    resources: _Canonical,
    scopes: _Canonical,
    groups: _Groups,
    origin_of: Callable[[int], tuple[Any, Any]] | None,
) -> None:
    """Encode ``spans`` into ``groups``, by resource and then scope."""
    for span in spans:
        if type(span) is tuple:
            if origin_of is None:
                raise TypeError("an encoded span without the origin of its key")
            key, body = span
            origin = origin_of(key)
        else:
            body, origin = encode_span(span)  # type: ignore[arg-type]
        resource = resources(origin[0])
        scope = scopes(origin[1] or None)
        entry = groups.get(id(resource))
        if entry is None:
            entry = groups[id(resource)] = (resource, {})
        by_scope = entry[1]
        scope_entry = by_scope.get(id(scope))
        if scope_entry is None:
            scope_entry = by_scope[id(scope)] = (scope, [])
        scope_entry[1].extend((_SCOPE_SPANS_SPAN, varint(len(body)), body))


def _resource_spans(resource: Any, by_scope: _Scopes) -> bytes:
    parts = [_cached_block(resource, _resource_block)]
    for scope, encoded_spans in by_scope.values():
        body = [_cached_block(scope, _scope_block), *encoded_spans]
        if scope is not None:
            body.append(string_field(_SCOPE_SPANS_SCHEMA, scope.schema_url or ""))
        parts.append(length_prefixed(_RESOURCE_SPANS_SCOPES, b"".join(body)))
    parts.append(string_field(_RESOURCE_SPANS_SCHEMA, resource.schema_url or ""))
    return b"".join(parts)
