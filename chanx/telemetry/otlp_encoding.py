"""SDK spans straight to an OTLP ``ExportTraceServiceRequest``, in wire format.

The official encoder (``opentelemetry-exporter-otlp-proto-common``) builds a
protobuf object per span, attribute, event and link, then serializes them:
most of the batch processor's time under load. :func:`encode_spans` writes
the same message's bytes directly: each span's ``Span`` message comes from
:func:`chanx.telemetry.otlp_span.encode_span` (or was made by it when the
span ended, :mod:`chanx.telemetry.span_records`), and the ``Resource`` and
``InstrumentationScope`` blocks around them are encoded once per distinct
object.

The request parses to a message equal to the official encoder's. Spans it
cannot encode raise :class:`~chanx.telemetry.otlp_wire.UnsupportedValue`,
or any other exception; the exporter then encodes the batch the official
way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.sdk.trace import ReadableSpan

from chanx.telemetry.otlp_span import encode_span
from chanx.telemetry.otlp_wire import (
    LENGTH,
    append_attributes,
    length_prefixed,
    string_field,
    tag,
    varint,
)

__all__ = ["PAUSE_EVERY", "encode_spans"]

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

# Resource and scope blocks by object identity; the object is kept alongside
# so its id cannot be reused by another while the entry lives.
_blocks: dict[int, tuple[object, bytes]] = {}


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
