"""Which function starts chanx's spans: the SDK fast path, or any tracer's own.

:class:`SpanStarter` follows the tracer provider (the global one by default,
so an SDK set up after Django starts is still used) and, for an SDK provider,
starts spans through :func:`chanx.telemetry.fast_spans.sdk_starter`. This
module uses the OpenTelemetry API only; the SDK is imported when a provider
from it is seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    SpanKind,
    Tracer,
    TracerProvider,
)
from opentelemetry.util.types import AttributeValue

from chanx import __version__
from chanx.telemetry.shared_attributes import SharedAndOne

__all__ = ["SpanStarter", "StartSpan", "ValidLinks", "valid_links"]

_log = structlog.get_logger("chanx.telemetry")

#: ``start(name, parent_context, kind, attributes, links) -> span``.
StartSpan = Callable[
    [
        str,
        Context | None,
        SpanKind,
        Mapping[str, AttributeValue],
        Sequence[Link] | None,
    ],
    Span,
]


class ValidLinks(tuple[Link, ...]):
    """Links without attributes to valid span contexts, checked once.

    chanx builds one per connection (every frame links to ``connect``) and
    one per group message (every delivery links to ``send``); a starter may
    keep them as they are instead of re-checking each link per span.
    Invalid contexts are left out, as the SDK drops their links.
    """

    __slots__ = ()

    def __new__(cls, contexts: Iterable[SpanContext]) -> ValidLinks:
        return super().__new__(cls, (Link(c) for c in contexts if c.is_valid))


def valid_links(links: Sequence[Link] | None) -> Sequence[Link]:
    """``links`` without those to invalid contexts, as the SDK keeps them.

    chanx's own (:class:`ValidLinks`, checked when built: one per connection
    or group message) are shared by their spans as they are (a span's
    ``add_link()`` copies first).
    """
    if not links:
        return ()
    if links.__class__ is ValidLinks:
        return links
    if type(links) is tuple and len(links) == 1 and links[0].context.is_valid:
        return links
    return tuple(link for link in links if link.context.is_valid)


def _generic(tracer: Tracer) -> StartSpan:
    def start(
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue],
        links: Sequence[Link] | None,
    ) -> Span:
        if attributes.__class__ is SharedAndOne:
            # The tracer copies them (the SDK into BoundedAttributes): a
            # dict copies faster than a mapping.
            attributes = attributes.as_dict()
        return tracer.start_span(
            name, context, kind=kind, attributes=attributes, links=links
        )

    return start


def _fast(tracer: Tracer) -> StartSpan | None:
    try:
        from chanx.telemetry.fast_spans import sdk_starter
    except ImportError:  # no SDK installed: the provider is not an SDK one
        return None
    try:
        return sdk_starter(tracer)
    except Exception:
        # An SDK this module does not know in some new way: its own
        # start_span still records every span.
        _log.warning("fast_spans_unavailable", exc_info=True)
        return None


class SpanStarter:
    """Starts chanx's spans on a tracer provider, by the cheapest correct path.

    Args:
        tracer_provider: The provider; by default the global one, looked up
            at each span so that one set later is picked up.
        fast: Use :mod:`chanx.telemetry.fast_spans` for SDK providers
            (``CHANX["TELEMETRY"]["FAST_SPANS"]``); False always uses the
            tracer's own ``start_span``.
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, fast: bool = True
    ) -> None:
        self._fixed = tracer_provider
        self._fast = fast
        self._provider: TracerProvider | None = None
        self._start: StartSpan = _generic(trace.NoOpTracer())
        self._start_is_fast = False

    @property
    def fast(self) -> bool:
        """Whether the last provider seen got the SDK fast path."""
        return self._start_is_fast

    def start(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue],
        links: Sequence[Link] | None = None,
    ) -> Span:
        """Start (not activate) a span, as ``Tracer.start_span`` does."""
        provider = self._fixed or trace.get_tracer_provider()
        if provider is not self._provider:
            self._bind(provider)
        return self._start(name, context, kind, attributes, links)

    def _bind(self, provider: TracerProvider) -> None:
        tracer = provider.get_tracer("chanx", __version__)
        fast = _fast(tracer) if self._fast else None
        self._start_is_fast = fast is not None
        self._start = fast or _generic(tracer)
        self._provider = provider
