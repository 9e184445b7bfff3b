"""Protobuf wire-format pieces for :mod:`chanx.telemetry.otlp_span` and
:mod:`chanx.telemetry.otlp_encoding`.

Field tags are derived at import from the ``opentelemetry-proto`` descriptors
(number and wire type), so a renumbered field can never be written under an
old number: a field whose type no longer matches what this module writes
makes the import fail, and the exporter then keeps the official encoder.

Attribute values are encoded the way the official encoder maps them to
``AnyValue``; anything else raises :class:`UnsupportedValue`, and the caller
encodes the batch with the official encoder instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import (  # type: ignore[import-untyped]
    FieldDescriptor,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from chanx.telemetry.shared_attributes import SharedAndOne, SharedAttributes

__all__ = [
    "FIXED32",
    "FIXED64",
    "LENGTH",
    "VARINT",
    "UnsupportedValue",
    "any_value",
    "append_attributes",
    "field_cache",
    "fixed64",
    "length_prefixed",
    "shared_and_one",
    "string_field",
    "tag",
    "varint",
]

#: Wire types, as :func:`tag` expects them.
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_WIRE_TYPES = {
    FieldDescriptor.TYPE_FIXED64: FIXED64,
    FieldDescriptor.TYPE_SFIXED64: FIXED64,
    FieldDescriptor.TYPE_DOUBLE: FIXED64,
    FieldDescriptor.TYPE_FIXED32: FIXED32,
    FieldDescriptor.TYPE_SFIXED32: FIXED32,
    FieldDescriptor.TYPE_FLOAT: FIXED32,
    FieldDescriptor.TYPE_STRING: LENGTH,
    FieldDescriptor.TYPE_BYTES: LENGTH,
    FieldDescriptor.TYPE_MESSAGE: LENGTH,
}
_INT64_MIN, _INT64_LIMIT = -(1 << 63), 1 << 63
# Single-byte varints: lengths and counts are nearly always below 128.
_SMALL = tuple(bytes((n,)) for n in range(128))
fixed64: Callable[[int], bytes] = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
# Repeated (key, value) pairs cost a dict lookup instead of an encoding; the
# cap keeps high-cardinality values (ids) from growing it without bound.
_MAX_CACHED = 4096


class UnsupportedValue(Exception):
    """A value the fast encoder does not write (the official encoder decides)."""


def varint(value: int) -> bytes:
    """``value`` (0 <= value < 2**64) as a base-128 varint."""
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(message: Any, field: str, wire_type: int) -> bytes:
    """The encoded tag of field ``field`` of the message descriptor ``message``.

    Raises:
        TypeError: The field's declared type does not use ``wire_type``
            (the field changed: what the caller writes would be misread).
    """
    descriptor = message.fields_by_name[field]
    actual = _WIRE_TYPES.get(descriptor.type, VARINT)
    if actual != wire_type:
        raise TypeError(f"{message.full_name}.{field} has wire type {actual}")
    return varint(descriptor.number << 3 | actual)


def length_prefixed(field_tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, length, body."""
    return field_tag + varint(len(body)) + body


def string_field(field_tag: bytes, text: str) -> bytes:
    """A string field, or nothing for an empty string (proto3 default)."""
    return length_prefixed(field_tag, text.encode()) if text else b""


_ANY = AnyValue.DESCRIPTOR
_STRING = tag(_ANY, "string_value", LENGTH)
_BOOL_TRUE = tag(_ANY, "bool_value", VARINT) + b"\x01"
_BOOL_FALSE = tag(_ANY, "bool_value", VARINT) + b"\x00"
_INT = tag(_ANY, "int_value", VARINT)
_DOUBLE = tag(_ANY, "double_value", FIXED64)
_ARRAY = tag(_ANY, "array_value", LENGTH)
_KVLIST = tag(_ANY, "kvlist_value", LENGTH)
_BYTES = tag(_ANY, "bytes_value", LENGTH)
# ArrayValue.values and KeyValueList.values are both field 1, length-delimited.
_VALUES = b"\x0a"
_KEY = tag(KeyValue.DESCRIPTOR, "key", LENGTH)
_VALUE = tag(KeyValue.DESCRIPTOR, "value", LENGTH)


def any_value(value: Any) -> bytes:
    """The body of an ``AnyValue`` holding ``value``, mapped as the official
    encoder maps it (None is an empty ``AnyValue``).

    Raises:
        UnsupportedValue: An int outside int64 or a type with no mapping.
    """
    # Same order of checks as the official encoder: bool before int, str and
    # bytes before Sequence.
    if value is None:
        return b""
    if isinstance(value, bool):
        return _BOOL_TRUE if value else _BOOL_FALSE
    if isinstance(value, str):
        return length_prefixed(_STRING, value.encode())
    if isinstance(value, int):
        if not _INT64_MIN <= value < _INT64_LIMIT:
            raise UnsupportedValue("int outside int64")
        return _INT + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return _DOUBLE + _double(value)
    if isinstance(value, bytes):
        return length_prefixed(_BYTES, value)
    if isinstance(value, Sequence):
        return length_prefixed(_ARRAY, _repeated(any_value(v) for v in value))
    if isinstance(value, Mapping):
        pairs = (_key_value(str(k), v) for k, v in value.items())
        return length_prefixed(_KVLIST, _repeated(pairs))
    raise UnsupportedValue(f"attribute value of type {type(value).__name__}")


def _repeated(bodies: Iterable[bytes]) -> bytes:
    return b"".join(_VALUES + varint(len(body)) + body for body in bodies)


def _key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` body."""
    if not isinstance(key, str):
        raise UnsupportedValue(f"attribute key of type {type(key).__name__}")
    body = any_value(value)
    return length_prefixed(_KEY, key.encode()) + _VALUE + varint(len(body)) + body


# Values whose equality implies identical bytes. Not float: -0.0 == 0.0 and
# NaN != NaN. Equal values of two of these types (True == 1) share a slot,
# which holds the type of the one cached.
_CACHEABLE = frozenset((str, bool, int))
# Attributes whose values never repeat: one entry per connection would only
# grow the cache (~200 bytes each) until it is emptied, useful entries too.
_NEVER_REPEATED = frozenset(("chanx.connection_id",))
# Values kept per key: the first ones seen of a key with more are kept, the
# rest encoded each time.
_MAX_PER_KEY = 256
_Extension = tuple[SharedAttributes, str, bytes, dict[Any, tuple[type, bytes]]]


class _FieldCache:
    """Encoded (tag, length, ``KeyValue``) fields of one field tag, by key
    and then value: two lookups of hashes the strings already hold, no
    tuple built and hashed per attribute. Emptied at :data:`_MAX_CACHED`."""

    __slots__ = ("blocks", "by_key", "extended", "keys", "size")

    def __init__(self) -> None:
        self.by_key: dict[str, dict[Any, tuple[type, bytes]]] = {}
        self.size = 0
        # Encoded key fields and value tag, for int values encoded each time.
        self.keys: dict[str, bytes] = {}
        # Shared attribute sets, encoded whole: id -> (the set, its fields).
        self.blocks: dict[int, tuple[SharedAttributes, bytes]] = {}
        # Sets extended by one attribute: id of the shared set -> (the set,
        # the key, the set's fields, value -> (its type, all the fields)).
        self.extended: dict[int, _Extension] = {}

    def add_block(self, attributes: SharedAttributes, fields: bytes) -> None:
        """Keep ``fields``, the encoding of ``attributes`` (never changed)."""
        if len(self.blocks) >= _MAX_CACHED:
            self.blocks.clear()
        self.blocks[id(attributes)] = (attributes, fields)

    def add(self, field_tag: bytes, key: str, value: Any, kind: type) -> bytes:
        """The field for ``key`` and ``value`` (of type ``kind``), now cached."""
        if kind is int:
            encoded = self.int_field(field_tag, key, value)
        else:
            encoded = _field(field_tag, key, value)
        if key in _NEVER_REPEATED:
            return encoded
        by_value = self.by_key.get(key)
        if by_value is not None and len(by_value) >= _MAX_PER_KEY:
            # Many values (frame sizes, say): more would crowd out the
            # repeating attributes and empty the cache ever more often.
            return encoded
        if self.size >= _MAX_CACHED:
            self.by_key.clear()
            self.size = 0
            by_value = None
        if by_value is None:
            by_value = self.by_key[key] = {}
        by_value[value] = (kind, encoded)
        self.size += 1
        return encoded

    def int_field(self, field_tag: bytes, key: str, value: int) -> bytes:
        """The field of ``key`` and an int ``value``, from the key's encoded half."""
        # Sizes and counts vary, and this runs for each new one.
        if not _INT64_MIN <= value < _INT64_LIMIT:
            raise UnsupportedValue("int outside int64")
        head = self.keys.get(key)
        if head is None:
            if not isinstance(key, str):
                raise UnsupportedValue(f"attribute key of type {type(key).__name__}")
            if len(self.keys) >= _MAX_CACHED:
                self.keys.clear()
            head = self.keys[key] = length_prefixed(_KEY, key.encode()) + _VALUE
        number = _INT + varint(value & 0xFFFFFFFFFFFFFFFF)
        # An AnyValue of an int is at most 11 bytes: its length is one byte.
        size = len(head) + 1 + len(number)
        return field_tag + varint(size) + head + _SMALL[len(number)] + number

    def extension(
        self, field_tag: bytes, shared: SharedAttributes, key: str
    ) -> _Extension:
        """Where ``shared`` extended by ``key`` keeps its encodings (new)."""
        if len(self.extended) >= _MAX_CACHED:
            self.extended.clear()
        block = _block(self, field_tag, shared)
        extension = self.extended[id(shared)] = (shared, key, block, {})
        return extension


# One cache per field tag (span, event, link, resource, scope attributes).
_caches: dict[bytes, _FieldCache] = {}


def _items(attributes: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    # The SDK's BoundedAttributes iterates through the Mapping ABC, in Python;
    # its dict (read-only once the span ended) iterates in C.
    if type(attributes) is dict:
        return attributes.items()
    raw = getattr(attributes, "_dict", None)
    if type(raw) is dict:
        return raw.items()
    return attributes.items()


def field_cache(field_tag: bytes) -> _FieldCache:
    """The cache of encoded attribute fields of ``field_tag`` (one per tag)."""
    cache = _caches.get(field_tag)
    if cache is None:
        cache = _caches.setdefault(field_tag, _FieldCache())
    return cache


def append_attributes(
    parts: list[bytes], field_tag: bytes, attributes: Mapping[str, Any] | None
) -> None:
    """Append each attribute as a ``KeyValue`` field ``field_tag`` to ``parts``.

    A :class:`~chanx.telemetry.shared_attributes.SharedAttributes` set is
    encoded once and its bytes kept; a ``SharedAndOne`` writes its shared
    set's bytes and its own attribute (see :func:`shared_and_one`).

    Raises:
        UnsupportedValue: A key or value the official encoder would have to
            handle (it logs and skips what it cannot encode).
    """
    if attributes is None:
        return
    cache = _caches.get(field_tag) or field_cache(field_tag)
    kind = attributes.__class__
    if kind is SharedAndOne:
        one: Any = attributes
        parts.append(shared_and_one(cache, field_tag, one.shared, one.key, one.value))
    elif kind is SharedAttributes:
        parts.append(_block(cache, field_tag, attributes))
    else:
        _append_fields(parts, cache, field_tag, _items(attributes))


def _block(cache: _FieldCache, field_tag: bytes, shared: Any) -> bytes:
    """The fields of ``shared`` (a ``SharedAttributes``), encoded once."""
    block = cache.blocks.get(id(shared))
    # The set is kept with its bytes, so its id cannot be another's.
    if block is not None and block[0] is shared:
        return block[1]
    fields: list[bytes] = []
    _append_fields(fields, cache, field_tag, shared.items())
    encoded = b"".join(fields)
    cache.add_block(shared, encoded)
    return encoded


def shared_and_one(
    cache: _FieldCache, field_tag: bytes, shared: SharedAttributes, key: str, value: Any
) -> bytes:
    """The fields of ``shared`` and then ``key``: ``value`` (not a key of ``shared``).

    Args:
        cache: :func:`field_cache` of ``field_tag``.
        value: Of any attribute type.
    """
    extension = cache.extended.get(id(shared))
    if extension is None or extension[0] is not shared or extension[1] != key:
        extension = cache.extension(field_tag, shared, key)
    kind = value.__class__
    if kind not in _CACHEABLE:
        return extension[2] + _field(field_tag, key, value)
    values = extension[3]
    found = values.get(value)
    if found is not None and found[0] is kind:
        return found[1]
    if kind is int:
        encoded = extension[2] + cache.int_field(field_tag, key, value)
    else:
        encoded = extension[2] + _field(field_tag, key, value)
    # The first values met are kept (sizes repeat), the rest encoded anew.
    if len(values) < _MAX_PER_KEY:
        values[value] = (kind, encoded)
    return encoded


def _field(field_tag: bytes, key: str, value: Any) -> bytes:
    body = _key_value(key, value)
    return field_tag + varint(len(body)) + body


def _append_fields(
    parts: list[bytes],
    cache: _FieldCache,
    field_tag: bytes,
    items: Iterable[tuple[str, Any]],
) -> None:
    by_key, cacheable = cache.by_key, _CACHEABLE
    for key, value in items:
        kind = type(value)
        if kind in cacheable:
            by_value = by_key.get(key)
            found = None if by_value is None else by_value.get(value)
            if found is not None and found[0] is kind:
                parts.append(found[1])
            else:
                parts.append(cache.add(field_tag, key, value, kind))
        else:
            parts.append(_field(field_tag, key, value))
