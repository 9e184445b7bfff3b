"""What the ``process`` spans of a group message's deliveries share, built once.

Every member of a group starts a ``process`` span for the same message from
the same carrier, so from the same producer context
(:class:`~chanx.telemetry.propagation.ExtractedContexts` hands out one object
per carrier): the same parent and the same link. Spans of one consumer
class, kind and action also have the same attributes. Building these per
delivery cost time, and every span waiting for export kept its own copies
(a link, its tuple, an attributes dict): allocations that drive a busy
process's garbage collections.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link
from opentelemetry.util.types import AttributeValue

from chanx.telemetry.current_span import span_in
from chanx.telemetry.span_starter import ValidLinks

__all__ = ["ProducerParents", "label_key", "process_attributes"]

_SYSTEM = "chanx"

Links = tuple[Link, ...] | None


def label_key(kind: str) -> str:
    """The attribute naming what is handled: an event's handler or an action."""
    return "chanx.handler" if kind == "event" else "chanx.action"


class ProducerParents:
    """The parent context and links of a ``process`` span, per producer context.

    With ``link``, the span starts a new trace linked to the producer's span
    (keeping anything else the carrier held, such as baggage); without, it
    is the producer span's child. The deliveries of one message come one
    after another, so the last answer is kept; contexts are immutable, and
    the producer context's identity is the key.

    Args:
        link: ``CHANX["TELEMETRY"]["PROCESS_SPAN"] == "link"``.
    """

    __slots__ = ("_last", "_link")

    def __init__(self, link: bool) -> None:
        self._link = link
        # (producer context, parent, links), replaced as one tuple.
        self._last: tuple[Context | None, Context | None, Links] = (None, None, None)

    def __call__(self, producer: Context) -> tuple[Context, Links]:
        """``(parent, links)`` for spans continuing ``producer``."""
        last = self._last
        if last[0] is producer and last[1] is not None:
            return last[1], last[2]
        parent, links = self._build(producer)
        self._last = (producer, parent, links)
        return parent, links

    def _build(self, producer: Context) -> tuple[Context, Links]:
        if not self._link:
            return producer, None
        links = ValidLinks([span_in(producer).get_span_context()]) or None
        return trace.set_span_in_context(INVALID_SPAN, producer), links


def process_attributes(key: tuple[str, str, str]) -> dict[str, AttributeValue]:
    """The attributes of ``process {name}`` spans, for ``(consumer, kind, name)``.

    Built once per key and shared by those spans
    (:class:`~chanx.telemetry.shared_attributes.AttributeSets`).
    """
    consumer, kind, name = key
    return {
        "messaging.system": _SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "chanx.kind": kind,
        "chanx.consumer": consumer,
        label_key(kind): name,
    }
