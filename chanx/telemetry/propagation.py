"""Trace context in and out of chanx's carriers: handshake headers, layer payloads.

The application's global propagator does the work (W3C trace context unless
configured otherwise); this module supplies the getter and setter for
chanx's carriers and remembers what was extracted from channel-layer
carriers, which every member of a group receives identically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

__all__ = [
    "HEADERS",
    "ROOT",
    "STR_SETTER",
    "ExtractedContexts",
    "HeaderGetter",
    "StrSetter",
]

#: An empty context: the parent of spans that must start a new trace whatever
#: is current (a frame without traceparent is a new unit of work).
ROOT = Context()
# Distinct carriers remembered (a group send's receivers share one).
_MAX_CARRIERS = 256
_Headers = Sequence[tuple[bytes, bytes]]


class HeaderGetter(Getter[_Headers]):
    """Reads ASGI handshake headers: ``(name, value)`` byte pairs, names lowercase."""

    def get(self, carrier: _Headers, key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for name, value in carrier if name == wanted]
        return values or None

    def keys(self, carrier: _Headers) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier]


class StrSetter(Setter[dict[str, str]]):
    """Writes only text: the carrier crosses the channel layer as msgpack."""

    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        if isinstance(value, str):
            carrier[key] = value


#: Reads a handshake's headers.
HEADERS = HeaderGetter()
#: Writes a channel-layer carrier.
STR_SETTER = StrSetter()


class ExtractedContexts:
    """Contexts extracted from carriers, remembered by carrier content.

    Every member of a group receives the same carrier: extracting it once
    per group send instead of once per delivery saves a parse per delivery.
    Extraction depends only on the carrier and the propagator, and contexts
    are immutable, so sharing them is safe.
    """

    __slots__ = ("_contexts", "_last", "_propagator")

    def __init__(self) -> None:
        self._contexts: dict[tuple[tuple[str, str], ...], Context] = {}
        self._propagator: object = None
        # The last read-only carrier and its context, replaced as one tuple:
        # the members of a group read one shared carrier one after another.
        self._last: tuple[object, Context] = (None, ROOT)

    def __call__(self, carrier: Mapping[str, str]) -> Context:
        if not carrier:
            return ROOT
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:
            self._contexts.clear()
            self._last = (None, ROOT)
            self._propagator = propagator
        last = self._last
        if last[0] is carrier:
            return last[1]
        context = self._extract(carrier)
        # A read-only view: chanx.carriers hands out views of dicts that
        # nobody else holds. A dict may change between calls; it is looked up.
        if type(carrier) is MappingProxyType:
            self._last = (carrier, context)
        return context

    def _extract(self, carrier: Mapping[str, str]) -> Context:
        key = tuple(carrier.items())
        try:
            context = self._contexts.get(key)
        except TypeError:  # a malformed carrier (unhashable values)
            return propagate.extract(carrier, ROOT)
        if context is None:
            context = propagate.extract(carrier, ROOT)
            if len(self._contexts) >= _MAX_CARRIERS:
                self._contexts.clear()
            self._contexts[key] = context
        return context
