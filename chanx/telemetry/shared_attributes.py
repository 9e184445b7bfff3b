"""Attribute sets that many spans share, built and encoded once.

Every ``receive`` span of one consumer, route and action has the same six
attributes, and only the frame's size differs (so do the ``message_sent``
events of one action); every ``process`` span of one consumer, kind and
name has the same attributes altogether. Building them per frame costs
time, and so does encoding each of them again for export. Here they are
built once per distinct set (:class:`AttributeSets`) as a
:class:`SharedAttributes`, which nothing writes into, and a span or event
with one attribute of its own gets a :class:`SharedAndOne`: the set and
that attribute, without a copy of the set. The OTLP encoder then writes
the shared part from bytes it keeps per set, and the set with its own
attribute whole for the values of that attribute it meets first
(:func:`chanx.telemetry.otlp_wire.shared_and_one`).

chanx's spans copy either kind into a plain dict before any change
(:class:`~chanx.telemetry.chanx_span.ChanxSpan`), so neither is ever
written into after it is built; the SDK copies what it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TypeVar

from opentelemetry.util.types import AttributeValue

__all__ = [
    "MAX_SETS",
    "PLAIN_ATTRIBUTES",
    "AttributeSets",
    "SharedAndOne",
    "SharedAttributes",
]

K = TypeVar("K", bound=Hashable)

#: Distinct sets one :class:`AttributeSets` keeps; at the limit it starts over.
MAX_SETS = 1024


class SharedAttributes(dict[str, AttributeValue]):
    """Attributes that many spans share: never written into once built."""

    __slots__ = ()


class SharedAndOne(Mapping[str, AttributeValue]):
    """A shared set and one attribute after it, read-only, without a copy.

    What chanx's ``receive`` spans and ``message_sent`` events hold: the
    set every frame of a consumer, route and action (or every frame sent
    with an action) shares, and the frame's size. Copying a set of six per
    frame cost a dict; this holds three references. A span that changes its
    attributes copies them into a dict first
    (:class:`~chanx.telemetry.chanx_span.ChanxSpan`).

    Args:
        shared: The set (``key`` is not one of its keys).
        key: The attribute of the span's own.
        value: Its value.
    """

    __slots__ = ("key", "shared", "value")

    def __init__(
        self, shared: SharedAttributes, key: str, value: AttributeValue
    ) -> None:
        self.shared = shared
        self.key = key
        self.value = value

    def __getitem__(self, key: str) -> AttributeValue:
        if key == self.key:
            return self.value
        return self.shared[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.shared
        yield self.key

    def __len__(self) -> int:
        return len(self.shared) + 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_dict()!r})"

    def as_dict(self) -> dict[str, AttributeValue]:
        """A plain dict of the same attributes, in order (for code that copies
        them anyway, such as the SDK: a dict copies faster than a mapping)."""
        return {**self.shared, self.key: self.value}


#: The attribute containers chanx's spans and events hold as given (a dict
#: of their own or the kinds above), before any becomes the SDK's
#: ``BoundedAttributes``: none has dropped an attribute.
PLAIN_ATTRIBUTES = frozenset((dict, SharedAttributes, SharedAndOne))


class AttributeSets(dict[K, SharedAttributes]):
    """``sets[key]``: the :class:`SharedAttributes` ``build(key)`` makes, once.

    A dict, so that finding a set built before is one lookup in C.

    Args:
        build: Makes the attributes of ``key`` (called once per distinct key).
        limit: Distinct keys kept; past it the sets are built anew (keys are
            bounded in practice: consumers, routes, actions).
    """

    def __init__(
        self, build: Callable[[K], dict[str, AttributeValue]], limit: int = MAX_SETS
    ) -> None:
        super().__init__()
        self._build = build
        self._limit = limit

    def __missing__(self, key: K) -> SharedAttributes:
        found = SharedAttributes(self._build(key))
        if len(self) >= self._limit:
            self.clear()
        self[key] = found
        return found
