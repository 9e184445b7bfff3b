"""OpenTelemetry spans for chanx consumers, through the API only.

:class:`TracingHooks` turns each hook call into a span (or a span event)
named and attributed after the OpenTelemetry messaging conventions, with
``messaging.system = "chanx"``:

==========================  ========  =====================================
span                        kind      parent
==========================  ========  =====================================
``connect {route}``         SERVER    the ASGI server's span, else the
                                      handshake's ``traceparent`` header
``receive {action}``        CONSUMER  the frame's ``traceparent`` (else a root,
                                      linked to the ``connect`` span)
``send {group template}``   PRODUCER  the current span (a ``receive`` span,
                                      a Django request span...)
``process {action}``        CONSUMER  the ``send`` span; with
                                      ``PROCESS_SPAN = "link"`` a root linked
                                      to it
==========================  ========  =====================================

Frames sent to the client, closes and channel-layer failures are span events
on the current span. Names are bounded: routes are templates
(``/ws/room/<room>/``), never raw paths; groups appear only as their
``GROUP_TEMPLATE`` (``chat_42`` -> ``chat_{id}``), capped at 100 distinct
templates (then ``other``).

Context travels through the application's global propagator (W3C trace
context unless configured otherwise). No SDK is imported here: without one
every span is a no-op, and an SDK set up after Django starts is still used.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    SpanKind,
    StatusCode,
    TracerProvider,
)
from opentelemetry.util.types import AttributeValue

from chanx.hooks import ConnectionInfo, Observation
from chanx.telemetry.chanx_span import ChanxSpan
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.current_span import attach_context, span_in, with_span
from chanx.telemetry.naming import BoundedNames
from chanx.telemetry.process_spans import (
    ProducerParents,
    label_key,
    process_attributes,
)
from chanx.telemetry.propagation import HEADERS, STR_SETTER, ExtractedContexts
from chanx.telemetry.shared_attributes import AttributeSets, SharedAndOne
from chanx.telemetry.span_starter import SpanStarter, ValidLinks

__all__ = ["CONNECT_SPAN_KEY", "MULTIPLE_DESTINATIONS", "TracingHooks"]

#: ``ConnectionInfo.state`` key holding the ``connect`` span's ``SpanContext``.
CONNECT_SPAN_KEY = "trace.connect"

# ``ConnectionInfo.state`` key caching the receive spans' link to ``connect``.
_LINKS_KEY = "trace.connect_links"

#: The destination template of a publish to groups with different templates.
MULTIPLE_DESTINATIONS = "multiple"

_SYSTEM = "chanx"
_BODY_SIZE = "messaging.message.body.size"
# Span names are "<operation> <label>" over bounded labels; the caches keep
# them from being rebuilt per call, and the cap is only a safety net.
_MAX_NAMES = 1000


class _Names(dict[str, str]):
    """``names[label]`` -> ``"<operation> <label>"``, built once per label."""

    def __init__(self, operation: str) -> None:
        super().__init__()
        self._prefix = operation + " "

    def __missing__(self, label: str) -> str:
        name = self._prefix + label
        if len(self) < _MAX_NAMES:
            self[label] = name
        return name


def _detach(token: Token[Context]) -> None:
    # Finished in another context (ValueError) or reset already (RuntimeError):
    # that context is not ours to restore. (The API's detach would log these
    # with a traceback.) A try costs nothing here; suppress() is an object
    # per call, and this runs per frame.
    try:  # noqa: SIM105
        token.var.reset(token)
    except (ValueError, RuntimeError):
        pass


def _add_event(span: Span, name: str, attributes: Mapping[str, AttributeValue]) -> None:
    # chanx's own event attributes are valid by construction: spans from the
    # SDK fast path store them without re-validating.
    add = getattr(span, "add_trusted_event", None)
    if add is None:
        span.add_event(name, attributes)
    else:
        add(name, attributes)


def _set_attribute(span: Span, key: str, value: AttributeValue) -> None:
    set_trusted = getattr(span, "set_trusted_attribute", None)
    if set_trusted is None:
        span.set_attribute(key, value)
    else:
        set_trusted(key, value)


def _mark_error(span: Span, error_type: str | None, exc: BaseException | None) -> None:
    # No status description: error.type carries the class, the exception
    # event the message.
    span.set_status(StatusCode.ERROR)
    if error_type:
        _set_attribute(span, "error.type", error_type)
    if exc is not None:
        span.record_exception(exc)


class _SpanObservation:
    """A started span, current until :meth:`finish` ends it (once)."""

    __slots__ = ("_span", "_token")
    # Whether the class adds attributes in _annotate (saves a call per frame).
    _annotates = False

    def __init__(self, span: Span, current: Context) -> None:
        self._span = span
        self._token: Token[Context] | None = attach_context(current)

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        _detach(token)
        span = self._span
        if self._annotates:
            self._annotate(span, outcome, error_type)
        if outcome == "error":
            _mark_error(span, error_type, exc)
        span.end()

    def _annotate(self, span: Span, outcome: str, error_type: str | None) -> None:
        """Add outcome attributes before the span ends (none by default)."""


class _ConnectObservation(_SpanObservation):
    __slots__ = ("_conn",)
    _annotates = True

    def __init__(self, span: Span, current: Context, conn: ConnectionInfo) -> None:
        super().__init__(span, current)
        self._conn = conn

    def _annotate(self, span: Span, outcome: str, error_type: str | None) -> None:
        if not span.is_recording():
            return
        _set_attribute(span, "chanx.connect.result", outcome)
        status_code = self._conn.status_code
        if status_code is not None:
            _set_attribute(span, "chanx.auth.status_code", status_code)
        if outcome == "rejected" and error_type:
            # An expected authentication outcome: labelled, not an error status.
            _set_attribute(span, "error.type", error_type)


def _connect_links(conn: ConnectionInfo) -> tuple[Link, ...] | None:
    """The link to the ``connect`` span, built on the connection's first frame.

    Every ``receive`` span carries the same link; one immutable ``Link`` per
    connection saves building it per frame (idle connections never build it).
    """
    links: tuple[Link, ...] | None = conn.state.get(_LINKS_KEY)
    if links is None and _LINKS_KEY not in conn.state:
        connect: SpanContext | None = conn.state.get(CONNECT_SPAN_KEY)
        links = None if connect is None else (ValidLinks([connect]) or None)
        conn.state[_LINKS_KEY] = links
    return links


def _receive_attributes(key: tuple[str, str, str]) -> dict[str, AttributeValue]:
    # A receive span's attributes but its frame's size, shared by its spans.
    action, consumer, route = key
    return {
        "messaging.system": _SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "receive",
        "chanx.action": action,
        "chanx.consumer": consumer,
        "http.route": route,
    }


def _sent_attributes(action: str) -> dict[str, AttributeValue]:
    # A message_sent event's attributes but the frame's size.
    return {"chanx.action": action}


class TracingHooks:
    """:class:`~chanx.hooks.ConsumerHooks` that record OpenTelemetry spans.

    Args:
        config: The telemetry settings (group templates, ``PROCESS_SPAN``).
        tracer_provider: The provider to use; by default the global one,
            resolved at each span so one set up later is still picked up.

    Example:
        >>> from chanx.hooks import install_hooks
        >>> install_hooks(TracingHooks(telemetry_config()))
    """

    def __init__(
        self, config: TelemetryConfig, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.spans = SpanStarter(tracer_provider, fast=config.fast_spans)
        self._start = self.spans.start
        self._extract = ExtractedContexts()
        self._producer = ProducerParents(config.process_span == "link")
        self._process_attributes = AttributeSets(process_attributes)
        self._receive_attributes = AttributeSets(_receive_attributes)
        self._sent_attributes = AttributeSets(_sent_attributes)
        # Raw group names repeat (one per room): cache their templates, and
        # cap distinct templates in case GROUP_TEMPLATE lets free text through.
        self._template = functools.lru_cache(maxsize=1024)(config.group_template)
        self._bounded = BoundedNames(limit=100)
        self._connect = _Names("connect")
        self._receive = _Names("receive")
        self._send = _Names("send")
        self._process = _Names("process")

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        """Start ``connect {route}``, current until authentication has an outcome.

        Its parent is the current span (a server span from ASGI
        instrumentation) or else the handshake's ``traceparent`` header.
        """
        parent = otel_context.get_current()
        if not span_in(parent).get_span_context().is_valid:
            # No server span (ASGI instrumentation would have continued the
            # header's trace already): continue it here.
            parent = propagate.extract(scope.get("headers") or (), parent, HEADERS)
        span = self._start(
            self._connect[conn.route],
            parent,
            SpanKind.SERVER,
            {
                "http.route": conn.route,
                "chanx.consumer": conn.consumer,
                "chanx.connection_id": conn.connection_id,
            },
        )
        conn.state[CONNECT_SPAN_KEY] = span.get_span_context()
        return _ConnectObservation(span, trace.set_span_in_context(span, parent), conn)

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        """Add a ``connection_closed`` event to the current span."""
        span = span_in()
        if span.is_recording():
            _add_event(span, "connection_closed", {"chanx.close_code": code})

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        """Start ``receive {action}``, current while the frame is handled."""
        parent = self._extract(carrier)
        # The size is not a key of the shared set: it comes after them.
        attributes = SharedAndOne(
            self._receive_attributes[action, conn.consumer, conn.route],
            _BODY_SIZE,
            size,
        )
        span = self._start(
            self._receive[action],
            parent,
            SpanKind.CONSUMER,
            attributes,
            _connect_links(conn),
        )
        return _SpanObservation(span, with_span(span, parent))

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        """Add a ``message_sent`` event to the current span."""
        span = span_in()
        if span.__class__ is ChanxSpan:
            # The span keeps it compact (see ChanxSpan.add_extended_event).
            span.add_extended_event(
                "message_sent", self._sent_attributes[action], _BODY_SIZE, size
            )
        elif span.is_recording():
            shared = self._sent_attributes[action]
            # Not chanx's span: the SDK copies the attributes, a dict fastest.
            _add_event(span, "message_sent", {**shared, _BODY_SIZE: size})

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        """Start ``send {template}`` under the current span; inject it into ``carrier``."""
        attributes: dict[str, AttributeValue] = {
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "chanx.kind": kind,
            label_key(kind): name,
        }
        template = self._destination(groups)
        if template is None:
            span_name = "send"
        else:
            span_name = self._send[template]
            attributes["messaging.destination.template"] = template
        if len(groups) > 1:
            attributes["messaging.batch.message_count"] = len(groups)
        if conn is not None:
            attributes["chanx.consumer"] = conn.consumer
        span = self._start(span_name, None, SpanKind.PRODUCER, attributes)
        current = trace.set_span_in_context(span)
        propagate.inject(carrier, current, STR_SETTER)
        return _SpanObservation(span, current)

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        """Start ``process {name}`` for the producer context in ``carrier``."""
        parent, links = self._producer(self._extract(carrier))
        span = self._start(
            self._process[name],
            parent,
            SpanKind.CONSUMER,
            self._process_attributes[conn.consumer, kind, name],
            links,
        )
        return _SpanObservation(span, with_span(span, parent))

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        """Add a ``channel_layer_error`` event to the current span."""
        span = span_in()
        if span.is_recording():
            _add_event(
                span,
                "channel_layer_error",
                {"chanx.operation": operation, "error.type": type(exc).__name__},
            )

    def _destination(self, groups: Sequence[str]) -> str | None:
        """The groups' shared template, ``"multiple"``, or None without groups."""
        if not groups:
            return None
        template = self._template(groups[0])
        for index in range(1, len(groups)):
            if self._template(groups[index]) != template:
                return MULTIPLE_DESTINATIONS
        return self._bounded(template)
